import Foundation
import Logging
import MPITransport
import Model
import Pipeline
import Tensor

/// The coordinator's side of an MPI job: initialisation, the worker handshake, and a clean end.
final class MPISession {
    let world: MPIWorld
    let workers: [WorkerInfo]
    let logger: Logger

    /// Initialises MPI, checks that this process is rank 0, and greets every worker.
    init(logger: Logger, handshakeTimeout: Double) throws {
        self.logger = logger
        // With workers this process never computes (it only schedules and blends), and OpenBLAS's
        // pool would spin for its first ≈ 0.1 s: stopped before MPI_Init when Hydra's PMI_SIZE
        // already tells, else right after. A singleton world computes in-process.
        if Self.launchedWithWorkers { BLAS.stopIdlePool() }
        let world = try MPIWorld(required: .serialized)
        guard world.rank == 0 else {
            logger.critical("coordinator started as rank \(world.rank); it must be rank 0: mpirun -np 1 coordinator … : -np N tileworker")
            world.abort(code: ExitStatus.usage)
        }
        self.world = world
        if world.size > 1 { BLAS.stopIdlePool() }  // other launchers; a second stop returns at once
        if let problem = LaunchCheck.singletonProblem(worldSize: world.size) {
            logger.critical("\(problem)")
            world.finalize()
            exit(ExitStatus.usage)
        }
        do {
            workers = try Handshake.gatherWorkers(world: world, timeout: handshakeTimeout)
        } catch {
            logger.critical("handshake failed: \(error)")
            world.abort(code: ExitStatus.internalError)
        }
        let hosts = Set(workers.map(\.host))
        logger.info("MPI world: \(world.size) ranks (coordinator on \(world.processorName), \(workers.count) tile workers on \(hosts.count) host(s)), \(world.threadLevel)")
    }

    /// Hydra (MPICH's mpirun) puts the world size in the environment before MPI_Init.
    static var launchedWithWorkers: Bool { (ProcessInfo.processInfo.environment["PMI_SIZE"].flatMap { Int($0) } ?? 1) > 1 }

    /// Resolves MODEL (directory or Hugging Face id) and reads its config; warns about random weights.
    /// The weights themselves are mapped by whoever computes.
    func resolveModel(_ model: String) throws -> (directory: String, config: ModelConfig) {
        let directory = try ModelLocator.resolve(model, logger: logger)
        let config = try ModelConfig.load(directory: directory)
        if ModelDirectory.hasRandomWeights(directory) {
            logger.warning("\(directory) holds random weights (made by create-model): its masks are meaningless")
        }
        return (directory, config)
    }

    /// What computes tiles: the model in this process when the world has no workers, else the
    /// workers, each loading the model with `threads` BLAS threads (nil: their hosts' cores shared).
    func makeExecutor(modelDirectory: String, threads: Int?) throws -> TileExecutor {
        if workers.isEmpty {
            if let threads { BLAS.threads = threads }
            let loaded = try PrithviSegmentationModel(directory: modelDirectory)
            logger.info("model: \(loaded.summary), in-process with \(BLAS.threads) thread(s); \(loaded.packingReport)")
            return InProcessExecutor(computer: ModelTileComputer(model: loaded))
        }
        let mpi = MPIExecutor(world: world, workers: workers, logger: logger)
        let ready = try mpi.setup(modelDirectory: modelDirectory, blasThreads: threads)
        for worker in mpi.workers {
            let answer = ready[worker.rank]!
            logger.info("\(mpi.describe(worker: worker.rank)): model loaded in \(String(format: "%.2f", answer.loadSeconds)) s; \(answer.summary)")
        }
        return mpi
    }

    /// Releases the workers and finalises MPI; a worker that does not answer ends the job with
    /// MPI_Abort instead (finalising would wait for it forever).
    func finish(reason: String, status: Int32 = 0) {
        guard Handshake.releaseWorkers(world: world, reason: reason) else {
            logger.error("a tile worker did not answer the shutdown; ending the job")
            world.abort(code: status == 0 ? ExitStatus.internalError : status)
        }
        let logger = self.logger
        world.finalize(status: status, log: { logger.warning("\($0)") })
    }
}
