import ArgumentParser
import Foundation
import Logging
import Pipeline

@main
struct Coordinator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Distributed tiled inference of Prithvi-EO-2.0 segmentation models over MPI.",
        discussion: """
        Rank 0 of an MPMD MPI job; every other rank runs `tileworker`:

          mpirun -np 1 coordinator segment MODEL IN.tif OUT.tif : -np N tileworker
          mpirun -np 1 coordinator serve MODEL --port 8000 : -np N tileworker

        Without mpirun (world size 1) `segment` runs the tiles in-process.
        MODEL is a directory with config.json (vLLM/TerraTorch form) or config.yaml plus
        *.safetensors or a Lightning *.pt checkpoint, or a Hugging Face id (org/name).
        """,
        subcommands: [SegmentCommand.self, ServeCommand.self, BenchCommand.self, WorldCommand.self, CreateModelCommand.self, CreateSceneCommand.self, CreateProductCommand.self, ScoreCommand.self, QuicklookCommand.self, LoadTestCommand.self]
    )
}

/// Exit codes (sysexits.h), so that scripts and schedulers can tell bad input from a crash.
enum ExitStatus {
    static let usage: Int32 = 64
    static let badInput: Int32 = 65
    static let noInput: Int32 = 66
    static let internalError: Int32 = 70
    static let cannotCreateOutput: Int32 = 73
    static let ioError: Int32 = 74

    /// The one mapping from what went wrong to sysexits(3) statuses.
    static func `for`(_ kind: FailureKind) -> Int32 {
        switch kind {
        case .badInput: return badInput
        case .missingInput: return noInput
        case .output: return cannotCreateOutput
        case .outOfSpace: return ioError
        case .timedOut, .unavailable, .internal: return internalError
        }
    }
}

/// Logs `error` as one clear line and exits with `status`.
func fail(_ logger: Logger, _ error: Any, status: Int32) -> Never {
    logger.error("\(error)")
    Foundation.exit(status)
}
