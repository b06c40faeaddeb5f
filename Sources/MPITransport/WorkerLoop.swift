import Foundation
import Logging
import Pipeline
import Support
import Tensor

/// Worker side of the protocol: hello, then setup → ready, openScene → sceneOpened,
/// tiles → results, until shutdown.
///
/// Tiles that arrive while a tile is computing queue up locally, so the next tile's pixels are
/// already here when the current one finishes. A result is sent and completed before the next
/// compute starts: MPI only progresses inside MPI calls, and a result left half-sent during a
/// second-long compute would stall the coordinator's receive of it.
public final class WorkerLoop {
    private let world: MPIWorld
    private let logger: Logger
    private let load: (WorkerSetup) throws -> TileComputer
    private var processor: TileProcessor?
    private var queue: [[TileRequest]] = []

    public init(world: MPIWorld, logger: Logger, load: @escaping (WorkerSetup) throws -> TileComputer) {
        self.world = world
        self.logger = logger
        self.load = load
    }

    /// Returns when the coordinator says shutdown.
    public func run() throws {
        let hello = WorkerHello(rank: Int32(world.rank), host: world.processorName, pid: getpid(), threads: Int32(BLAS.threads))
        try world.send(.hello(hello), to: 0)
        var backoff = Backoff()
        while true {
            // Drain everything waiting, then compute one tile.
            while let (source, message) = try world.receiveMessageIfAvailable(from: 0) {
                backoff.reset()
                if try !handle(message, from: source) { return }
            }
            if !queue.isEmpty {
                for outcome in computeNext() {
                    switch outcome {
                    case .success(let result): try world.send(.result(result), to: 0)
                    case .failure(let failure): try world.send(.failure(failure), to: 0)
                    }
                }
                continue
            }
            backoff.wait()
        }
    }

    /// Handles one control message; false means stop.
    private func handle(_ message: WireMessage, from source: Int) throws -> Bool {
        switch message {
        case .shutdown(let reason):
            logger.debug("shutdown: \(reason)")
            // Acknowledge, so the coordinator knows no result of ours is still on its way.
            try world.send(.shutdown(reason: "done"), to: source, timeout: 10)
            return false
        case .setup(let setup):
            let start = monotonicSeconds()
            do {
                if setup.blasThreads > 0 { BLAS.threads = Int(setup.blasThreads) }
                let loaded = try load(setup)
                processor = TileProcessor(computer: loaded, context: "rank \(world.rank) on \(world.processorName)")
                try world.send(.ready(WorkerReady(error: nil, loadSeconds: monotonicSeconds() - start, summary: loaded.summary,
                                                  threads: Int32(BLAS.threads))), to: 0)
            } catch {
                processor = nil
                try world.send(.ready(WorkerReady(error: "\(error)", loadSeconds: monotonicSeconds() - start, summary: "",
                                                  threads: Int32(BLAS.threads))), to: 0)
            }
        case .tiles(let batch):
            queue.append(batch)
        case .openScene(let opening):
            let error = processor.map { $0.openScene(opening) } ?? "worker \(world.rank) has no model loaded"
            try world.send(.sceneOpened(job: opening.job, error: error), to: source)
        case .closeScene(let job):
            processor?.closeScene(job: job)
        case .ping(let sequence, let payload):
            try world.send(.pong(sequence: sequence, payload: payload), to: source)
        case .hello, .ready, .result, .failure, .pong, .sceneOpened:
            logger.warning("ignoring unexpected message with tag \(message.tag) from rank \(source)")
        }
        return true
    }

    private func computeNext() -> [Result<TileResult, TileFailure>] {
        let batch = queue.removeFirst()
        guard let processor else {
            return batch.map { .failure(TileFailure(job: $0.job, tile: $0.tile, message: "worker \(world.rank) has no model loaded")) }
        }
        return processor.process(batch)
    }
}
