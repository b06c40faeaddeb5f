import Foundation
import Logging
import MPITransport
import Support

// A tile worker: every MPI rank but 0 under
//   mpirun -np 1 coordinator … : -np N tileworker
// It takes no arguments; the coordinator sends the model and options after the handshake.

signal(SIGPIPE, SIG_IGN)

// mpirun forwards SIGTERM to every rank at once. A worker that died of it would make the launcher
// kill the coordinator before it could stop its jobs and remove their partial outputs; so a worker
// waits (a bounded time) for the coordinator, which handles the signal, to release it.
let terminationGrace = 30.0
signal(SIGTERM, SIG_IGN)
let terminations = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
terminations.setEventHandler {
    FileHandle.standardError.write(Data("tileworker: SIGTERM; exiting when the coordinator releases this worker (at most \(Int(terminationGrace)) s)\n".utf8))
    DispatchQueue.global().asyncAfter(deadline: .now() + terminationGrace) { exit(143) }
}
terminations.resume()

let world: MPIWorld
do {
    world = try MPIWorld(required: .serialized)
} catch {
    FileHandle.standardError.write(Data("tileworker: \(error)\n".utf8))
    exit(70)
}
ConsoleLogHandler.bootstrap(label: "tileworker \(world.rank)@\(world.processorName)")
let logger = Logger(label: "tileworker")

guard world.rank != 0 else {
    if let problem = LaunchCheck.singletonProblem(worldSize: world.size) {
        logger.critical("\(problem)")
    } else {
        logger.critical("tileworker started as rank 0; rank 0 must be the coordinator: mpirun -np 1 coordinator … : -np N tileworker")
    }
    world.abort(code: 64)
}

do {
    let loop = WorkerLoop(world: world, logger: logger, load: TileWorkerModel.load)
    try loop.run()
    world.finalize(log: { logger.warning("\($0)") })
    exit(0)
} catch {
    logger.critical("\(error)")
    world.abort(code: 70)
}
