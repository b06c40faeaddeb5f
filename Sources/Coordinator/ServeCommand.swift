import ArgumentParser
import Foundation
import Logging
import Shared

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the model over HTTP with vLLM's /pooling contract (terratorch_segmentation).",
        discussion: """
        A drop-in for `vllm serve MODEL --io-processor-plugin terratorch_segmentation`:
        POST /pooling (and /invocations), GET /health, /v1/models, /version, /metrics.

          mpirun -np 1 coordinator serve MODEL --port 8000 : -np 2 tileworker
        """
    )

    @Argument(help: "Model directory or Hugging Face id.")
    var model: String

    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "Port to listen on.")
    var port: Int = 8000

    @Option(help: "Model name clients must send (default: MODEL as given).")
    var servedModelName: String?

    @Option(help: "IO processor plugin; only terratorch_segmentation exists.")
    var ioProcessorPlugin: String = "terratorch_segmentation"

    @Option(help: "Accepted for vLLM compatibility; only terratorch.")
    var modelImpl: String = "terratorch"

    @Flag(help: "Accepted for vLLM compatibility (there is no tokenizer).")
    var skipTokenizerInit = false

    @Flag(help: "Accepted for vLLM compatibility (always eager).")
    var enforceEager = false

    @Option(help: "Directory under which `path` inputs may be read (path inputs are refused without it).")
    var allowedLocalMediaPath: String?

    @Option(parsing: .upToNextOption, help: "Domains `url` inputs may come from (default: any).")
    var allowedMediaDomains: [String] = []

    @Option(help: "Largest input image accepted, in pixels (width × height).")
    var maxRequestPixels: Int = 100_000_000

    func run() throws {
        ConsoleLogHandler.bootstrap(label: "coordinator")
        fail(Logger(label: "coordinator"), "serve is not implemented yet", status: ExitStatus.internalError)
    }
}
