import Foundation
import Logging
import Shared

/// The coordinator's side of an MPI job: initialisation, the worker handshake, and a clean end.
final class MPISession {
    let world: MPIWorld
    let workers: [WorkerInfo]
    let logger: Logger

    /// Initialises MPI, checks that this process is rank 0, and greets every worker.
    init(logger: Logger, handshakeTimeout: Double) throws {
        self.logger = logger
        let world = try MPIWorld(required: .serialized)
        guard world.rank == 0 else {
            logger.critical("coordinator started as rank \(world.rank); it must be rank 0: mpirun -np 1 coordinator … : -np N tileworker")
            world.abort(code: ExitStatus.usage)
        }
        self.world = world
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
