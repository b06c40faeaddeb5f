import ArgumentParser
import Foundation
import Logging
import MPITransport
import Support

struct WorldCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "world",
        abstract: "Check an MPI launch: handshake with every tile worker and list them.",
        discussion: """
        Prints one line per worker (rank, host, pid, BLAS threads). With --ping-seconds, also
        measures round trips of a tile-sized message to each worker (latency and bandwidth of the
        fabric), which keeps the job alive for that long.

          mpirun -np 1 coordinator world : -np 2 tileworker
        """
    )

    @Option(help: "Seconds to wait for every worker's hello.")
    var timeout: Double = 120

    @Option(help: "Seconds of ping-pong with the workers after the handshake (0 = none).")
    var pingSeconds: Double = 0

    @Option(help: "Bytes in each ping (default: one 6-band 224×224 float32 tile).")
    var pingBytes: Int = 6 * 224 * 224 * 4

    func run() throws {
        ConsoleLogHandler.bootstrap(label: "coordinator")
        let logger = Logger(label: "coordinator")
        let session = try MPISession(logger: logger, handshakeTimeout: timeout)
        if session.workers.isEmpty {
            print("world size 1: no tile workers; segment and bench run tiles in this process")
        }
        for worker in session.workers {
            print("rank \(worker.rank)  host \(worker.host)  pid \(worker.pid)  threads \(worker.threads)")
        }
        if pingSeconds > 0, !session.workers.isEmpty {
            do {
                try ping(session)
            } catch {
                logger.critical("ping failed: \(error)")
                session.world.abort(code: ExitStatus.internalError)
            }
        }
        session.finish(reason: "world check done")
    }

    private func ping(_ session: MPISession) throws {
        let payload = [UInt8](repeating: 0xA5, count: max(0, pingBytes))
        let deadline = monotonicSeconds() + pingSeconds
        var roundTrips: [Int: [Double]] = [:]
        var sequence: UInt64 = 0
        while monotonicSeconds() < deadline {
            for worker in session.workers {
                sequence += 1
                let start = monotonicSeconds()
                try session.world.send(.ping(sequence: sequence, payload: payload), to: worker.rank)
                guard let (_, reply) = try session.world.receiveMessage(from: worker.rank, timeout: 30) else {
                    throw MPIError("rank \(worker.rank) on \(worker.host) did not answer ping \(sequence) within 30 s")
                }
                guard case .pong(sequence, let echoed) = reply, echoed == payload else {
                    throw MPIError("rank \(worker.rank) answered ping \(sequence) with a wrong reply")
                }
                roundTrips[worker.rank, default: []].append(monotonicSeconds() - start)
            }
        }
        for worker in session.workers {
            let times = (roundTrips[worker.rank] ?? []).sorted()
            guard !times.isEmpty else { continue }
            let median = times[times.count / 2]
            let megabytesPerSecond = median > 0 ? 2 * Double(payload.count) / median / 1e6 : 0
            print(String(format: "rank %d  round trips %d  median %.3f ms  %.0f MB/s", worker.rank, times.count, median * 1e3, megabytesPerSecond))
        }
    }
}
