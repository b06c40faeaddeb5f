import Foundation
import Logging

/// An HTTP answer, independent of the server framework.
public struct HTTPAnswer: Sendable {
    public var status: Int
    public var body: Data
    public var headers: [(String, String)]
    public init(status: Int, body: Data, headers: [(String, String)] = []) { self.status = status; self.body = body; self.headers = headers }
}

/// Observes requests for the server's metrics.
public protocol RequestObserver: AnyObject, Sendable {
    func requestFinished(status: Int, seconds: Double)
}

/// `POST /pooling` with the terratorch_segmentation plugin's semantics: fetch the GeoTIFF (url,
/// path or base64), check it, segment it with the shared engine, answer a path or base64 GeoTIFF.
/// Every failure becomes one vLLM-shaped error; nothing half-written is left behind.
public final class PoolingService: Sendable {
    public let engine: SegmentationEngine
    public let servedModelName: String
    public let policy: ServingPolicy
    private let logger: Logger
    private let observer: (any RequestObserver)?
    private let scratchRoot: String

    public init(engine: SegmentationEngine, servedModelName: String, policy: ServingPolicy, logger: Logger,
                observer: (any RequestObserver)? = nil) {
        self.engine = engine
        self.servedModelName = servedModelName
        self.policy = policy
        self.logger = logger
        self.observer = observer
        scratchRoot = NSTemporaryDirectory() + "prithvi-serve-\(getpid())"
    }

    /// Handles one request body; never throws — errors are answers.
    public func handle(body: Data, requestIDHeader: String?) async -> HTTPAnswer {
        let start = monotonicSeconds()
        var answer: HTTPAnswer
        var requestID = "pool-?"
        do {
            requestID = try poolingRequestID(header: requestIDHeader)
            let (response, report) = try await process(body: body, requestID: requestID)
            let total = monotonicSeconds() - start
            answer = HTTPAnswer(status: 200, body: response.json, headers: [
                ("Content-Type", "application/json"),
                // total: in the server; job: the engine's part (open, tiles, stitch, write); tiles: model compute.
                ("Server-Timing", String(format: "total;dur=%.1f, job;dur=%.1f, queue;dur=%.1f, tiles;dur=%.1f", total * 1e3,
                                         report.seconds * 1e3, report.waitedSeconds * 1e3, report.computeSeconds * 1e3)),
            ])
            logger.info("\(requestID): 200, \(report.tiles) tiles (\(report.computed) computed) in \(String(format: "%.2f", total)) s")
        } catch {
            let apiError = Self.apiError(error)
            if apiError.status >= 500 {
                logger.error("\(requestID): \(apiError)")
            } else {
                logger.info("\(requestID): \(apiError)")
            }
            answer = HTTPAnswer(status: apiError.status, body: apiError.json, headers: [("Content-Type", "application/json")])
        }
        observer?.requestFinished(status: answer.status, seconds: monotonicSeconds() - start)
        return answer
    }

    /// Maps what can go wrong to the status a client should see.
    static func apiError(_ error: Error) -> APIError {
        switch error {
        case let error as JobOpenFailure: return apiError(error.underlying)
        case let error as APIError: return error
        case let error as JobStalled: return APIError(status: 504, type: "TimeoutError", error.description)
        case let error as JobTimedOut: return APIError(status: 504, type: "TimeoutError", error.description)
        case let error as EngineUnavailable: return .unavailable(error.description)
        case let error as SceneError: return .badRequest(error.description)
        case let error as GDALError: return .badRequest(error.description)
        case let error as PlanError: return .badRequest(error.description)
        case let error as DownloadError:
            switch error.kind {
            case .tooLarge: return .tooLarge(error.description)
            case .io: return .internalError(error.description)
            default: return .badRequest("failed to download the input: \(error.description)")
            }
        case is CancellationError: return APIError(status: 499, type: "ClientClosedRequest", "the request was cancelled")
        case let error as OutputError: return .internalError(error.description)
        default: return .internalError("\(error)")
        }
    }

    /// Served inputs open with this driver only (COGs are GeoTIFFs): a VRT or another format could
    /// read files outside the allowed directory, or URLs.
    static let inputDrivers = ["GTiff"]

    private func process(body: Data, requestID: String) async throws -> (PoolingResponse, JobReport) {
        let request = try PoolingRequest.parse(body)
        if let model = request.model, model != servedModelName {
            throw APIError.notFound("The model `\(model)` does not exist.")
        }
        let scratch = scratchRoot + "/" + requestID
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        do {
            return try await process(request, requestID: requestID, scratch: scratch)
        } catch {
            // Clients see their input named, never the server's scratch paths.
            let apiError = Self.apiError(error)
            let message = apiError.message.replacingOccurrences(of: scratch + "/input.tiff", with: "the \(request.inputFormat.rawValue) input")
                .replacingOccurrences(of: scratch, with: "the request's scratch directory")
            throw APIError(status: apiError.status, type: apiError.type, message)
        }
    }

    private func process(_ request: PoolingRequest, requestID: String, scratch: String) async throws -> (PoolingResponse, JobReport) {
        let policy = self.policy
        let start = monotonicSeconds()
        let input: String = try await BlockingIO.run {
            try Self.fetchInput(request, policy: policy, scratch: scratch)
        }
        let fetched = monotonicSeconds()
        let bands = request.indices ?? Array(0..<engine.config.encoder.inChannels)
        try await BlockingIO.run { try Self.checkRaster(input, bands: bands, policy: policy, request: request) }
        logger.debug("\(requestID): input in \(String(format: "%.1f", (fetched - start) * 1e3)) ms, checked in \(String(format: "%.1f", (monotonicSeconds() - fetched) * 1e3)) ms")

        let output: String
        switch request.outputFormat {
        case .path: output = try policy.outputDirectory(for: request.outPath) + "/\(requestID).tiff"
        case .b64_json: output = scratch + "/output.tiff"
        }
        var options = SegmentOptions()
        options.bands = bands
        options.tiling = request.tiling ?? policy.defaultTiling
        options.dataPath = request.inputFormat == .path ? policy.dataPath : .coordinator
        options.allowedDrivers = Self.inputDrivers
        let elapsed = monotonicSeconds() - start
        let report = try await engine.segment(input: input, output: output, options: options,
                                              timeout: policy.requestTimeout.map { max(0.001, $0 - elapsed) })
        let payload: String
        switch request.outputFormat {
        case .path: payload = output
        case .b64_json: payload = try await BlockingIO.run { try Data(contentsOf: URL(fileURLWithPath: output)).base64EncodedString() }
        }
        return (PoolingResponse(requestID: requestID, createdAt: Int(Date().timeIntervalSince1970), outputFormat: request.outputFormat,
                                output: payload), report)
    }

    /// The input as a local file: a checked path, a download, or decoded base64.
    static func fetchInput(_ request: PoolingRequest, policy: ServingPolicy, scratch: String) throws -> String {
        switch request.inputFormat {
        case .path:
            return try policy.localInput(request.input)
        case .url:
            try policy.checkURL(request.input)
            let file = scratch + "/input.tiff"
            // Every redirect passes the same checks as the URL (libcurl alone would follow any host).
            try curlDownload(request.input, to: file, limits: policy.downloadLimits, denyPrivateAddresses: policy.denyPrivateAddresses,
                             checkRedirect: { next in
                do { try policy.checkURL(next) } catch let error as APIError { throw APIError.badRequest("a redirect was refused: \(error.message)") }
            })
            return file
        case .b64_json:
            guard Int64(request.input.utf8.count) / 4 * 3 <= policy.downloadLimits.maxBytes else {
                throw APIError.tooLarge("the base64 image is larger than the limit of \(policy.downloadLimits.maxBytes) bytes")
            }
            guard let data = Data(base64Encoded: request.input, options: [.ignoreUnknownCharacters]), !data.isEmpty else {
                throw APIError.badRequest("`data.data` is not valid base64")
            }
            let file = scratch + "/input.tiff"
            try data.write(to: URL(fileURLWithPath: file))
            return file
        }
    }

    /// A readable raster with the requested bands, within the pixel limit.
    static func checkRaster(_ path: String, bands: [Int], policy: ServingPolicy, request: PoolingRequest) throws {
        let raster: RasterDataset
        do {
            raster = try RasterDataset.open(path, allowedDrivers: inputDrivers)
        } catch {
            let shown = request.inputFormat == .path ? request.input : "the \(request.inputFormat.rawValue) input"
            throw APIError.badRequest("\(shown) is not a GeoTIFF")
        }
        let pixels = raster.width * raster.height
        guard pixels <= policy.maxRequestPixels else {
            throw APIError.tooLarge("the image has \(raster.width)×\(raster.height) = \(pixels) pixels, more than --max-request-pixels \(policy.maxRequestPixels)")
        }
        if let bad = bands.first(where: { $0 >= raster.bandCount }) {
            throw APIError.badRequest("band index \(bad) is out of range: the image has \(raster.bandCount) band(s)")
        }
    }
}
