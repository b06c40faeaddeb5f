import Foundation
import Support
import Tensor

/// What came back from a worker.
public enum TileOutcome: Sendable {
    case result(TileResult, worker: Int)
    case failure(TileFailure, worker: Int)
    /// The answer to `openScene`: nil when the worker reads the job's tiles itself from now on.
    case sceneOpened(job: UInt64, worker: Int, error: String?)
}

/// Runs tiles somewhere: in this process, or on MPI tile workers. Used from one thread.
public protocol TileExecutor: AnyObject {
    /// Worker identities (MPI ranks; 0 for the in-process worker).
    var workerRanks: [Int] { get }
    /// A short description per worker for logs and summaries.
    func describe(worker: Int) -> String
    /// Asks a worker to open a job's scene so that it can be sent tiles without pixels.
    func openScene(_ opening: SceneOpening, on worker: Int) throws
    func closeScene(job: UInt64, on worker: Int) throws
    /// Sends tiles to be computed together in one forward pass.
    func send(_ batch: [TileRequest], to worker: Int) throws
    /// Outcomes available now; never waits.
    func poll() throws -> [TileOutcome]
    /// `wake` is called, from any thread, when outcomes become available — by executors that can
    /// tell; those that cannot (MPI) return true from `needsPolling` and are polled instead.
    func setWakeHandler(_ wake: @escaping @Sendable () -> Void)
    var needsPolling: Bool { get }
    /// Whether the workers share this process (then reading tiles here overlaps their compute).
    var isInProcess: Bool { get }
    /// Bytes of tile traffic so far: sent to workers, received from them (0 in-process).
    var traffic: (sent: Int, received: Int) { get }
}

/// The world-size-1 worker: a background thread with a `TileProcessor`, fed through a queue, so
/// that the coordinator's own work overlaps the compute as with MPI workers.
public final class InProcessExecutor: TileExecutor, @unchecked Sendable {
    /// State shared with the compute thread (which must not hold the executor itself). Every
    /// field is read and written under `condition`'s lock.
    private final class Channel: @unchecked Sendable {
        enum Command { case tiles([TileRequest]), open(SceneOpening), close(UInt64) }
        let condition = NSCondition()
        var queue: [Command] = []
        var outcomes: [TileOutcome] = []
        var wake: (@Sendable () -> Void)?
        var stopping = false
    }

    private let channel = Channel()

    public init(computer: TileComputer) {
        let channel = self.channel
        let box = UncheckedBox(TileProcessor(computer: computer, context: "in-process worker"))
        let thread = Thread { Self.run(channel, box.value) }
        thread.name = "in-process tile worker"
        thread.stackSize = 8 << 20
        thread.start()
    }

    public var workerRanks: [Int] { [0] }
    public func describe(worker: Int) -> String { "in-process worker (\(BLAS.threads) BLAS threads)" }
    public var needsPolling: Bool { false }
    public var isInProcess: Bool { true }
    public var traffic: (sent: Int, received: Int) { (0, 0) }

    public func setWakeHandler(_ wake: @escaping @Sendable () -> Void) {
        channel.condition.withLock { channel.wake = wake }
    }

    private func enqueue(_ command: Channel.Command) {
        channel.condition.lock()
        channel.queue.append(command)
        channel.condition.broadcast()
        channel.condition.unlock()
    }

    public func openScene(_ opening: SceneOpening, on worker: Int) throws { enqueue(.open(opening)) }
    public func closeScene(job: UInt64, on worker: Int) throws { enqueue(.close(job)) }
    public func send(_ batch: [TileRequest], to worker: Int) throws { enqueue(.tiles(batch)) }

    public func poll() throws -> [TileOutcome] {
        channel.condition.lock()
        defer { channel.condition.unlock() }
        let ready = channel.outcomes
        channel.outcomes.removeAll()
        return ready
    }

    private static func run(_ channel: Channel, _ processor: TileProcessor) {
        while true {
            channel.condition.lock()
            while channel.queue.isEmpty && !channel.stopping { channel.condition.wait() }
            if channel.stopping { channel.condition.unlock(); return }
            let command = channel.queue.removeFirst()
            channel.condition.unlock()
            var outcomes: [TileOutcome] = []
            switch command {
            case .tiles(let batch):
                outcomes = processor.process(batch).map { result in
                    switch result {
                    case .success(let tile): return TileOutcome.result(tile, worker: 0)
                    case .failure(let failure): return TileOutcome.failure(failure, worker: 0)
                    }
                }
            case .open(let opening):
                outcomes = [.sceneOpened(job: opening.job, worker: 0, error: processor.openScene(opening))]
            case .close(let job):
                processor.closeScene(job: job)
            }
            guard !outcomes.isEmpty else { continue }
            channel.condition.lock()
            channel.outcomes.append(contentsOf: outcomes)
            let wake = channel.wake
            channel.condition.broadcast()
            channel.condition.unlock()
            wake?()
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
