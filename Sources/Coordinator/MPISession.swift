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
        do {
            workers = try Handshake.gatherWorkers(world: world, timeout: handshakeTimeout)
        } catch {
            logger.critical("handshake failed: \(error)")
            world.abort(code: ExitStatus.internalError)
        }
        let hosts = Set(workers.map(\.host))
        logger.info("MPI world: \(world.size) ranks (coordinator on \(world.processorName), \(workers.count) tile workers on \(hosts.count) host(s)), \(world.threadLevel)")
    }

    /// Releases the workers and finalises MPI.
    func finish(reason: String) {
        Handshake.releaseWorkers(world: world, reason: reason)
        world.finalize()
    }
}
