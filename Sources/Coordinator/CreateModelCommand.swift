import ArgumentParser
import Foundation
import Logging
import Model
import Support

struct CreateModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-model",
        abstract: "Write a model directory with random weights (benchmarks, demos, tests).",
        discussion: """
        Writes DIR/config.json (vLLM/TerraTorch form, Sen1Floods11 data settings) and
        DIR/model.safetensors with seeded random weights for the Prithvi-EO-2.0 + UperNet
        architecture. --preset sen1floods11-300m is the published model's shape (1.3 GB);
        --preset small is a quick model of the same family. Masks of random weights are meaningless.

          coordinator create-model bench-models/prithvi-300m --preset sen1floods11-300m
        """
    )

    @Argument(help: "Directory to create.")
    var directory: String

    @Option(help: "sen1floods11-300m or small.")
    var preset: String = "small"

    @Option(help: "Override the embedding width.")
    var embedDim: Int?

    @Option(help: "Override the number of transformer blocks.")
    var depth: Int?

    @Option(help: "Override the number of attention heads.")
    var heads: Int?

    @Option(help: "Override the UperNet channels.")
    var decoderChannels: Int?

    @Option(help: "Random seed.")
    var seed: UInt64 = 0

    func run() throws {
        ConsoleLogHandler.bootstrap(label: "create-model")
        let logger = Logger(label: "create-model")
        var spec: ModelFactory.Spec
        switch preset {
        case "sen1floods11-300m": spec = ModelFactory.Spec()
        case "small": spec = .small
        default: fail(logger, "unknown preset \(preset) (sen1floods11-300m or small)", status: ExitStatus.usage)
        }
        if let embedDim { spec.embedDim = embedDim }
        if let heads { spec.heads = heads }
        if let decoderChannels { spec.decoderChannels = decoderChannels }
        if let depth {
            spec.depth = depth
            spec.neckIndices = (1...4).map { max(0, $0 * depth / 4 - 1) }
        }
        spec.seed = seed
        do {
            let parameters = try ModelFactory.create(spec, in: directory)
            print("wrote \(directory): \(parameters) parameters (random weights)")
        } catch {
            fail(logger, error, status: ExitStatus.cannotCreateOutput)
        }
    }
}
