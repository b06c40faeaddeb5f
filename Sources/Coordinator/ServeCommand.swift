import ArgumentParser
import Foundation
import Geo
import Hummingbird
import Logging
import Metrics
import Model
import NIOCore
import Pipeline
import Prometheus
import Serving
import Support

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the model over HTTP with vLLM's /pooling contract (terratorch_segmentation).",
        discussion: """
        A drop-in for `vllm serve MODEL --io-processor-plugin terratorch_segmentation`:
        POST /pooling (and /invocations), GET /health, /v1/models, /version, /metrics.
        Outputs go to TERRATORCH_SEGMENTATION_IO_PROCESSOR_CONFIG's output_path (default $HOME).

          mpirun -np 1 coordinator serve MODEL --port 8000 : -np 2 tileworker
          coordinator serve MODEL --allowed-local-media-path /data      # tiles in-process
        """
    )

    @Argument(help: "Model directory or Hugging Face id (the served model name by default).")
    var model: String

    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port, printed at start-up).")
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

    @Flag(help: "Refuse `url` inputs (and their redirects) at loopback, link-local or private addresses (RFC 1918, CGNAT, ULA, …), checked after DNS.")
    var denyPrivateAddresses = false

    @Option(help: "Largest input image accepted, in pixels (width × height).")
    var maxRequestPixels: Int = 100_000_000

    @Option(help: "Largest input download or base64 image, in bytes.")
    var maxInputBytes: Int64 = 2 << 30

    @Option(help: "Seconds allowed for downloading a `url` input.")
    var downloadTimeout: Int = 120

    @Option(help: "BLAS threads per worker (default: each host's cores shared among its workers).")
    var threads: Int?

    @Option(help: "Default tiling of requests: overlap (blended tiles, no seams) or vllm (the plugin's exact crops and mask); a request's `data.tiling` overrides it.")
    var tiling: String = "overlap"

    @Option(help: "auto: MPI workers that see a `path` input at the same path read their own tiles (default); coordinator: the coordinator reads every tile.")
    var dataPath: DataPath = .auto

    @Option(help: "Seconds a request's own reading, blending or writing may go without progress before it fails with 504.")
    var stallTimeout: Double = 120

    @Option(help: "Seconds a request may take, download and queue included; past it the job is stopped and the answer is 504.")
    var requestTimeout: Double = 1800

    @Option(help: "Memory the running requests' jobs may use in all, as estimated before each starts (K/M/G suffixes; default a quarter of RAM). A request that needs more than all of it is refused with 413; one that does not fit yet waits.")
    var maxMemory: ByteCount?

    @Option(help: "Requests whose jobs run at once; more wait in the queue.")
    var maxConcurrentRequests: Int = 8

    @Option(help: "Requests that may wait for room; one more is refused with 503 and Retry-After.")
    var maxQueuedRequests: Int = 64

    @Option(help: "HTTP connections open at once; one more is answered 503 and closed.")
    var maxConnections: Int = 512

    @Option(help: "Seconds a connection may send nothing (also the time to send a request's headers) before it is closed.")
    var idleTimeout: Double = 60

    @Option(help: "Seconds a client has to send a request body; past it the answer is 408.")
    var bodyTimeout: Double = 300

    func validate() throws {
        guard requestTimeout > 0 else { throw ValidationError("--request-timeout must be positive") }
        guard stallTimeout > 0 else { throw ValidationError("--stall-timeout must be positive") }
        guard TilingMode(rawValue: tiling) != nil else { throw ValidationError("--tiling must be overlap or vllm, not \(tiling)") }
        guard ioProcessorPlugin == "terratorch_segmentation" else {
            throw ValidationError("--io-processor-plugin \(ioProcessorPlugin) is not available; this server implements terratorch_segmentation")
        }
        guard modelImpl == "terratorch" || modelImpl == "auto" else {
            throw ValidationError("--model-impl \(modelImpl) is not available; this server runs TerraTorch models (terratorch)")
        }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535") }
        guard maxConcurrentRequests > 0, maxQueuedRequests >= 0, maxConnections > 0, idleTimeout > 0, bodyTimeout > 0 else {
            throw ValidationError("--max-concurrent-requests, --max-connections, --idle-timeout and --body-timeout must be positive, --max-queued-requests not negative")
        }
        if let maxMemory, maxMemory.bytes <= 0 { throw ValidationError("--max-memory must be positive") }
        guard maxRequestPixels > 0, maxInputBytes > 0, downloadTimeout > 0 else {
            throw ValidationError("--max-request-pixels, --max-input-bytes and --download-timeout must be positive")
        }
    }

    func run() throws {
        ConsoleLogHandler.bootstrap(label: "coordinator")
        let logger = Logger(label: "coordinator")
        let environment = ProcessInfo.processInfo.environment

        // Everything that can be refused is checked before any worker is kept waiting.
        let outputDirectory: String
        do {
            outputDirectory = try ServingPolicy.outputDirectory(environment: environment)
        } catch {
            fail(logger, "TERRATORCH_SEGMENTATION_IO_PROCESSOR_CONFIG: \((error as? APIError)?.message ?? "\(error)")", status: ExitStatus.usage)
        }
        var allowedPath: String?
        if let allowedLocalMediaPath {
            guard let resolved = ServingPolicy.realDirectory(allowedLocalMediaPath) else {
                fail(logger, "--allowed-local-media-path \(allowedLocalMediaPath) is not a directory", status: ExitStatus.usage)
            }
            allowedPath = resolved
        }

        PoolingService.removeStaleScratch()
        // Requests are untrusted: no sidecar probing, no PROJ downloads (inputs are GTiff-only, no /vsi paths).
        RasterDataset.restrictToInputFiles()

        let session = try MPISession(logger: logger, handshakeTimeout: 120)
        func stop(_ message: Any, status: Int32) -> Never {
            logger.error("\(message)")
            session.finish(reason: "serve failed", status: status)
            Foundation.exit(status)
        }
        let modelDirectory: String
        let config: ModelConfig
        let executor: TileExecutor
        do {
            (modelDirectory, config) = try session.resolveModel(model)
            executor = try session.makeExecutor(modelDirectory: modelDirectory, threads: threads)
        } catch {
            stop(error, status: ExitStatus.badInput)
        }

        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Requests last from a second (one tile) to minutes (a scene); tiles from ms to seconds.
        factory.durationHistogramBuckets["prithvi_request_duration_seconds"] =
            [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800].map { Duration.milliseconds(Int64($0 * 1000)) }
        factory.durationHistogramBuckets["prithvi_tile_duration_seconds"] =
            [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30].map { Duration.milliseconds(Int64($0 * 1000)) }
        MetricsSystem.bootstrap(factory)
        let metrics = ServerMetrics()
        let engine = SegmentationEngine(executor: executor, config: config, stallSeconds: stallTimeout, logger: logger, observer: metrics)
        engine.start()
        var policy = ServingPolicy(
            allowedLocalMediaPath: allowedPath, allowedMediaDomains: allowedMediaDomains,
            downloadLimits: DownloadLimits(maxBytes: maxInputBytes, timeoutSeconds: downloadTimeout, connectTimeoutSeconds: 15, maxRedirects: 5),
            maxRequestPixels: maxRequestPixels, outputDirectory: outputDirectory)
        policy.defaultTiling = TilingMode(rawValue: tiling)!
        policy.dataPath = dataPath
        policy.requestTimeout = requestTimeout
        policy.denyPrivateAddresses = denyPrivateAddresses
        let name = servedModelName ?? model
        let budget = maxMemory?.bytes ?? Int64(ProcessInfo.processInfo.physicalMemory / 4)
        let admission = Admission(limits: .init(maxBytes: budget, maxConcurrent: maxConcurrentRequests, maxWaiting: maxQueuedRequests),
                                  observer: metrics)
        let service = PoolingService(engine: engine, servedModelName: name, policy: policy, logger: logger, observer: metrics,
                                     admission: admission)
        let bodyLimit = ServingPolicy.bodyLimit(maxInputBytes: maxInputBytes, maxRequestPixels: maxRequestPixels, bands: config.encoder.inChannels)
        let server = HTTPServer(service: service, modelRoot: modelDirectory, registry: registry, maxBodyBytes: bodyLimit,
                                bodyTimeout: bodyTimeout)
        logger.info("admission: --max-memory \(ByteCount.describe(budget)), --max-concurrent-requests \(maxConcurrentRequests), --max-queued-requests \(maxQueuedRequests); request bodies up to \(ByteCount.describe(Int64(bodyLimit)))")

        logger.info("serving \(name) with the terratorch_segmentation IO processor; outputs in \(outputDirectory)")
        logger.info("Available routes are:")
        for (route, methods) in HTTPServer.routes { logger.info("Route: \(route), Methods: \(methods)") }
        let host = self.host, port = self.port
        let connections = ConnectionGuard.Count(limit: maxConnections)
        let app = Application(
            router: server.router(),
            server: .http1(configuration: .init(additionalChannelHandlers: [ConnectionGuard(count: connections)],
                                                idleTimeout: .milliseconds(Int64(idleTimeout * 1000)))),
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                logger.info("Started server process [\(getpid())]")
                logger.info("Waiting for application startup.")
                logger.info("Application startup complete.")
                logger.info("Listening on http://\(host):\(bound)")
            },
            logger: Logger(label: "http"))

        // SIGTERM/SIGINT: Hummingbird stops accepting and waits for the requests in flight; the
        // engine stops at once, so those requests end (503) with their partial outputs removed
        // instead of running on until a launcher kills the process.
        let stopEngine = DispatchQueue(label: "serve shutdown")
        let shutdownSignals = [SIGTERM, SIGINT].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: stopEngine)
            source.setEventHandler {
                logger.info("signal \(number): stopping the jobs in flight")
                engine.stop()
            }
            source.resume()
            return source
        }
        defer { shutdownSignals.forEach { $0.cancel() } }

        // MPI was initialised on this thread and is finalised here; the server runs on its own.
        let done = DispatchSemaphore(value: 0)
        let outcome = UncheckedSendableBox<Error?>(nil)
        Task {
            do { try await app.runService() } catch { outcome.value = error }
            done.signal()
        }
        done.wait()
        engine.stop()
        service.shutDown()
        if let error = outcome.value {
            stop("server stopped: \(error)", status: ExitStatus.internalError)
        }
        logger.info("shutting down")
        session.finish(reason: "server stopped")
    }
}

extension ByteCount: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

/// A mutable box handed between the server task and the main thread (which waits for the task).
final class UncheckedSendableBox<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}
