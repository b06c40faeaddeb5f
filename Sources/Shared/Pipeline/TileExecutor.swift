import Foundation

/// What came back for a tile.
public enum TileOutcome: Sendable {
    case result(TileResult, worker: Int)
    case failure(TileFailure, worker: Int)
}

/// Runs tiles somewhere: in this process, or on MPI tile workers.
public protocol TileExecutor: AnyObject {
    /// Worker identities (MPI ranks; 0 for the in-process worker).
    var workerRanks: [Int] { get }
    /// A short description per worker for logs and summaries.
    func describe(worker: Int) -> String
    /// Sends tiles to be computed together in one forward pass.
    func send(_ batch: [TileRequest], to worker: Int) throws
    /// Outcomes available now, waiting up to `timeout` seconds for the first one.
    func poll(timeout: Double) throws -> [TileOutcome]
}

/// The world-size-1 worker: a background thread running the model, fed through a queue, so that
/// reading and stitching on the caller's thread overlap the compute as with MPI workers.
public final class InProcessExecutor: TileExecutor, @unchecked Sendable {
    /// State shared with the compute thread (which must not hold the executor itself).
    private final class Channel: @unchecked Sendable {
        let condition = NSCondition()
        var queue: [[TileRequest]] = []
        var outcomes: [TileOutcome] = []
        var stopping = false
    }

    private let channel = Channel()

    public init(computer: TileComputer) {
        let channel = self.channel
        let box = UncheckedBox(computer)
        let thread = Thread { Self.run(channel, box.value) }
        thread.name = "in-process tile worker"
        thread.stackSize = 8 << 20
        thread.start()
    }

    public var workerRanks: [Int] { [0] }
    public func describe(worker: Int) -> String { "in-process worker (\(BLAS.threads) BLAS threads)" }

    public func send(_ batch: [TileRequest], to worker: Int) throws {
        channel.condition.lock()
        channel.queue.append(batch)
        channel.condition.broadcast()
        channel.condition.unlock()
    }

    public func poll(timeout: Double) throws -> [TileOutcome] {
        channel.condition.lock()
        defer { channel.condition.unlock() }
        let deadline = Date().addingTimeInterval(timeout)
        while channel.outcomes.isEmpty, channel.condition.wait(until: deadline) {}
        let ready = channel.outcomes
        channel.outcomes.removeAll()
        return ready
    }

    private static func run(_ channel: Channel, _ computer: TileComputer) {
        while true {
            channel.condition.lock()
            while channel.queue.isEmpty && !channel.stopping { channel.condition.wait() }
            if channel.stopping { channel.condition.unlock(); return }
            let batch = channel.queue.removeFirst()
            channel.condition.unlock()
            let outcomes = computer.outcomes(of: batch, context: "in-process worker").map { result in
                switch result {
                case .success(let tile): return TileOutcome.result(tile, worker: 0)
                case .failure(let failure): return TileOutcome.failure(failure, worker: 0)
                }
            }
            channel.condition.lock()
            channel.outcomes.append(contentsOf: outcomes)
            channel.condition.broadcast()
            channel.condition.unlock()
        }
    }

    deinit {
        channel.condition.lock()
        channel.stopping = true
        channel.queue.removeAll()
        channel.condition.broadcast()
        channel.condition.unlock()
    }
}

/// Carries a non-Sendable value into a thread that becomes its only user.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
