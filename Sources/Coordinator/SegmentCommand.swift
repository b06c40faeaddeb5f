import ArgumentParser
import Foundation
import Logging
import Shared

struct SegmentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segment",
        abstract: "Segment a whole raster into a georeferenced water mask.",
        discussion: """
        Splits IN into overlapping model tiles, runs them on the tile workers (in-process when the
        MPI world has one rank), blends the per-class logits with a smooth window and writes OUT as a
        GeoTIFF with IN's CRS and geotransform. OUT appears only once complete.

          mpirun -np 1 coordinator segment MODEL scene.tif mask.tif : -np 2 tileworker
          coordinator segment MODEL scene.tif mask.tif        # in-process
        """
    )

    @Argument(help: "Model directory or Hugging Face id.")
    var model: String

    @Argument(help: "Input raster (any GDAL-readable file).")
    var input: String

    @Argument(help: "Output GeoTIFF.")
    var output: String

    @Option(help: "Comma-separated 0-based band indices fed to the model, in the model's band order.")
    var indices: String = "0,1,2,3,4,5"

    @Option(help: "Model tile size in pixels.")
    var tile: Int = 224

    @Option(help: "Distance between tile origins in model pixels; equal to --tile for no overlap.")
    var stride: Int = 192

    @Option(help: "Source pixels per model pixel (default: the model's training scale from its config).")
    var scale: Double?

    @Option(help: "What to write: mask (uint8, water 255), logits or probabilities (float32, one band per class).")
    var outputKind: String = "mask"

    @Option(name: .customLong("creation-option"), help: "GDAL creation option KEY=VALUE for OUT (repeatable).")
    var creationOptions: [String] = []

    @Option(help: "Tiling: default (overlapping, blended, training scale) or vllm (the terratorch_segmentation plugin's own pipeline).")
    var tiling: String = "default"

    @Option(help: "BLAS threads per worker (default: all cores of the worker's share).")
    var threads: Int?

    @Flag(help: "Continue an interrupted run from its journal beside OUT.")
    var resume = false

    @Flag(help: "No progress line.")
    var quiet = false

    func run() throws {
        ConsoleLogHandler.bootstrap(label: "coordinator")
        fail(Logger(label: "coordinator"), "segment is not implemented yet", status: ExitStatus.internalError)
    }
}
