import Foundation
import Model
import Pipeline
import Serving
import Support
import TestSupport
import Testing

/// The admission state machine without a server, and its async driver with real tasks.
struct AdmissionTests {
    let limits = AdmissionQueue.Limits(maxBytes: 100, maxConcurrent: 2, maxWaiting: 2)

    @Test func jobsRunWhileTheyFitThenWaitThenAreRefused() {
        var queue = AdmissionQueue(limits: limits)
        #expect(queue.request(1, bytes: 60) == .admitted)
        #expect(queue.request(2, bytes: 50) == .waiting, "over the byte budget")
        #expect(queue.request(3, bytes: 10) == .waiting, "first in, first out: nobody overtakes a waiter")
        #expect(queue.request(4, bytes: 10) == .busy, "the queue holds two")
        #expect(queue.request(5, bytes: 101) == .tooLarge, "more than the whole budget never runs")
        #expect(queue.release(1) == [2, 3])
        #expect(queue.bytesInUse == 60 && queue.running.count == 2)
        #expect(queue.request(6, bytes: 1) == .waiting, "two running is the concurrency limit")
        #expect(queue.release(6) == [], "a waiter that gives up just leaves")
        #expect(queue.waiting.isEmpty)
        #expect(queue.release(2) == [] && queue.release(3) == [] && queue.bytesInUse == 0)
    }

    @Test func aLargeJobAtTheHeadIsNotStarvedBySmallOnes() {
        var queue = AdmissionQueue(limits: .init(maxBytes: 100, maxConcurrent: 10, maxWaiting: 10))
        #expect(queue.request(1, bytes: 50) == .admitted)
        #expect(queue.request(2, bytes: 90) == .waiting)
        #expect(queue.request(3, bytes: 10) == .waiting, "it would fit beside job 1, but job 2 came first")
        #expect(queue.release(1) == [2, 3], "the large one goes first, the small one fits beside it")
    }

    @Test func theDriverLetsWaitersInInOrderAndWaitersCanLeave() async throws {
        let admission = Admission(limits: .init(maxBytes: 100, maxConcurrent: 1, maxWaiting: 2))
        let first = try await admission.admit(bytes: 10, deadline: nil)
        let order = OrderLog()
        let second = Task { let t = try await admission.admit(bytes: 10, deadline: nil); order.add(2); return t }
        while admission.state.waiting < 1 { try await Task.sleep(nanoseconds: 1_000_000) }
        let cancelled = Task { try await admission.admit(bytes: 10, deadline: nil) }
        while admission.state.waiting < 2 { try await Task.sleep(nanoseconds: 1_000_000) }
        do {
            _ = try await admission.admit(bytes: 10, deadline: nil)
            Issue.record("a full queue admitted a third waiter")
        } catch let error as APIError {
            #expect(error.status == 503 && error.retryAfter != nil && error.headers.contains { $0.0 == "Retry-After" })
        }
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { _ = try await cancelled.value }
        #expect(admission.state.waiting == 1)
        first.release()
        let ticket = try await second.value
        #expect(order.entries == [2] && admission.state.running == 1)
        ticket.release()
        ticket.release()
        #expect(admission.state.running == 0 && admission.state.bytes == 0, "a ticket gives its room back once")
    }

    @Test func aWaiterPastItsDeadlineGets504() async throws {
        let admission = Admission(limits: .init(maxBytes: 100, maxConcurrent: 1, maxWaiting: 2))
        let first = try await admission.admit(bytes: 10, deadline: nil)
        do {
            _ = try await admission.admit(bytes: 10, deadline: monotonicSeconds() + 0.05)
            Issue.record("admitted past its deadline")
        } catch let error as APIError {
            #expect(error.status == 504 && error.type == "TimeoutError")
        }
        #expect(admission.state.waiting == 0)
        first.release()
        let tooLarge = await #expect(throws: APIError.self) { _ = try await admission.admit(bytes: 101, deadline: nil) }
        #expect(tooLarge?.status == 413 && tooLarge?.message.contains("--max-memory") == true)
    }

    @Test func byteCountsTakeBinarySuffixes() {
        #expect(ByteCount("1024")?.bytes == 1024)
        #expect(ByteCount("512K")?.bytes == 512 << 10)
        #expect(ByteCount("64M")?.bytes == 64 << 20 && ByteCount("64MiB")?.bytes == 64 << 20 && ByteCount("64mb")?.bytes == 64 << 20)
        #expect(ByteCount("1.5G")?.bytes == 3 << 29)
        for bad in ["", "G", "-1M", "12X", "1e30T", "nan"] { #expect(ByteCount(bad) == nil, "\(bad)") }
        #expect(ByteCount.describe(3 << 29) == "1.5 GiB" && ByteCount.describe(100) == "100 B")
    }

    @Test func theMemoryEstimateGrowsWithTheSceneWidthAndTheAnswer() throws {
        let dir = TemporaryDirectory("admission")
        _ = try ModelFactory.create(.small, in: dir.path)
        let config = try ModelConfig.load(directory: dir.path)
        var options = SegmentOptions()
        let narrow = JobMemory.estimate(width: 1000, height: 100_000, config: config, options: options)
        let wide = JobMemory.estimate(width: 100_000, height: 1000, config: config, options: options)
        // The stitcher keeps one tile window of rows: 13 B a pixel for two classes, plus the strip.
        #expect(wide - JobMemory.perJob >= 13 * 100_000 * 224 && wide > 50 * narrow / 10)
        let inline = JobMemory.estimate(width: 1000, height: 1000, config: config, options: options, payloadBytes: 1 << 20, answerInMemory: true)
        #expect(inline > JobMemory.estimate(width: 1000, height: 1000, config: config, options: options) + (1 << 20) + 4_000_000)
        options.tiling = .vllm
        #expect(JobMemory.estimate(width: 100_000, height: 1000, config: config, options: options) < wide)
    }
}

final class OrderLog: @unchecked Sendable {  // `entries` is guarded by `lock`
    private let lock = NSLock()
    private var list: [Int] = []
    func add(_ value: Int) { lock.withLock { list.append(value) } }
    var entries: [Int] { lock.withLock { list } }
}

/// Blocking lanes: fixed threads, a bounded queue, and one lane's stall never reaches another.
struct BlockingLaneTests {
    @Test func aFullLaneRefusesWith503AndOtherLanesGoOn() async throws {
        let slow = BlockingLane(name: "slow test", threads: 2, maxQueued: 2)
        let other = BlockingLane(name: "other test", threads: 1, maxQueued: 1)
        let gate = DispatchSemaphore(value: 0)
        let entered = DispatchSemaphore(value: 0)
        // Two jobs hold both threads (each says so once it runs), then two wait in the queue.
        var held = (0..<2).map { _ in Task { try await slow.run { entered.signal(); gate.wait(); return 1 } } }
        for _ in 0..<2 { await withCheckedContinuation { done in DispatchQueue.global().async { entered.wait(); done.resume() } } }
        held += (0..<2).map { _ in Task { try await slow.run { gate.wait(); return 1 } } }
        while slow.queued < 2 { try await Task.sleep(nanoseconds: 1_000_000) }
        do {
            _ = try await slow.run { 0 }
            Issue.record("a full lane took another job")
        } catch let error as APIError {
            #expect(error.status == 503 && error.retryAfter != nil && error.message.contains("slow test"))
        }
        #expect(try await other.run { 7 } == 7, "another lane is not held up")
        for _ in 0..<4 { gate.signal() }
        var done = 0
        for task in held { done += try await task.value }
        #expect(done == 4)
    }
}
