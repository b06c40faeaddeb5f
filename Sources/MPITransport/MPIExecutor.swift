import Foundation
import Logging
import Pipeline
import Support

/// Tile workers on other MPI ranks. All MPI traffic of the coordinator goes through here, on one
/// thread: sends are non-blocking (a busy worker never stalls the coordinator), and waiting is
/// probing with short sleeps, never a blocking MPI call.
public final class MPIExecutor: TileExecutor {
    public let world: MPIWorld
    public private(set) var workers: [WorkerInfo]
    private var sends: [MPISendRequest] = []
    public private(set) var traffic: (sent: Int, received: Int) = (0, 0)
    private let logger: Logger

    public init(world: MPIWorld, workers: [WorkerInfo], logger: Logger) {
        self.world = world
        self.workers = workers
        self.logger = logger
    }

    public var workerRanks: [Int] { workers.map(\.rank) }

    public func describe(worker: Int) -> String {
        guard let info = workers.first(where: { $0.rank == worker }) else { return "rank \(worker)" }
        return "rank \(info.rank) on \(info.host) (pid \(info.pid), \(info.threads) BLAS threads)"
    }

    /// BLAS threads for each worker when none are asked for: the cores a worker's host reported
    /// (its OpenBLAS default) shared among the workers on that host, at least one.
    public static func defaultThreads(for workers: [WorkerInfo]) -> [Int: Int] {
        let perHost = Dictionary(grouping: workers, by: \.host).mapValues(\.count)
        return Dictionary(uniqueKeysWithValues: workers.map { ($0.rank, max(1, $0.threads / perHost[$0.host]!)) })
    }

    /// Sends the model to every worker and waits until all have loaded it; one error lists every
    /// worker that could not. `blasThreads` nil shares each host's cores among its workers.
    public func setup(modelDirectory: String, blasThreads: Int?, timeout: Double = 600) throws -> [Int: WorkerReady] {
        let threads = Self.defaultThreads(for: workers)
        for worker in workers {
            let setup = WorkerSetup(modelDirectory: modelDirectory, blasThreads: Int32(blasThreads ?? threads[worker.rank]!))
            try world.send(.setup(setup), to: worker.rank, timeout: 60)
        }
        var ready: [Int: WorkerReady] = [:]
        let deadline = monotonicSeconds() + timeout
        while ready.count < workers.count {
            guard let (source, message) = try world.receiveMessage(timeout: max(0, deadline - monotonicSeconds())) else {
                let missing = workers.filter { ready[$0.rank] == nil }.map { describe(worker: $0.rank) }
                throw MPIError("no answer to model setup within \(Int(timeout)) s from \(missing.joined(separator: ", "))")
            }
            guard case .ready(let answer) = message else {
                logger.warning("ignoring message with tag \(message.tag) from rank \(source) during setup")
                continue
            }
            ready[source] = answer
        }
        let failures = ready.sorted { $0.key < $1.key }.compactMap { rank, answer in answer.error.map { "\(describe(worker: rank)): \($0)" } }
        guard failures.isEmpty else { throw MPIError("workers could not load the model:\n  " + failures.joined(separator: "\n  ")) }
        for index in workers.indices { workers[index].threads = Int(ready[workers[index].rank]!.threads) }
        return ready
    }

    public var needsPolling: Bool { true }
    public var isInProcess: Bool { false }
    public func setWakeHandler(_ wake: @escaping @Sendable () -> Void) {}

    public func openScene(_ opening: SceneOpening, on worker: Int) throws { try start(.openScene(opening), to: worker) }
    public func closeScene(job: UInt64, on worker: Int) throws { try start(.closeScene(job: job), to: worker) }
    public func send(_ batch: [TileRequest], to worker: Int) throws { try start(.tiles(batch), to: worker) }

    private func start(_ message: WireMessage, to worker: Int) throws {
        let bytes = message.encoded()
        traffic.sent += bytes.count
        sends.append(try world.startSend(bytes, to: worker, tag: message.tag))
    }

    public func poll() throws -> [TileOutcome] {
        sends = try sends.filter { try !$0.test() }
        var outcomes: [TileOutcome] = []
        while let (envelope, bytes) = try world.receiveIfAvailable() {
            traffic.received += bytes.count
            let source = envelope.source
            let message = try WireMessage.decode(tag: envelope.tag, bytes: bytes)
            switch message {
            case .result(let result): outcomes.append(.result(result, worker: source))
            case .failure(let failure): outcomes.append(.failure(failure, worker: source))
            case .sceneOpened(let job, let error): outcomes.append(.sceneOpened(job: job, worker: source, error: error))
            default: logger.warning("ignoring message with tag \(message.tag) from rank \(source)")
            }
        }
        return outcomes
    }
}
