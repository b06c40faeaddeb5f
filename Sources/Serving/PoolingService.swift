import Foundation
import Geo
import Logging
import Pipeline
import Support

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
    /// Per-request scratch directories live under this one (mode 0700), removed by `shutDown`.
    public let scratchRoot: String
    /// Memory budget, jobs at once and the queue in front of them.
    public let admission: Admission
    /// Request ids in use: a second request with the same id while the first runs gets 409 (the
    /// id names its output file and scratch directory).
    private let idsInUse = RequestIDs()

    public init(engine: SegmentationEngine, servedModelName: String, policy: ServingPolicy, logger: Logger,
                observer: (any RequestObserver)? = nil, admission: Admission? = nil) {
        self.engine = engine
        self.servedModelName = servedModelName
        self.policy = policy
        self.logger = logger
        self.observer = observer
        self.admission = admission ?? Admission(limits: .init(maxBytes: Int64.max, maxConcurrent: Int.max, maxWaiting: Int.max))
        scratchRoot = NSTemporaryDirectory() + "prithvi-serve-\(getpid())"
    }

    /// Removes the scratch roots of servers that died without cleaning up (killed with SIGKILL):
    /// `prithvi-serve-PID` directories whose process no longer exists.
    public static func removeStaleScratch(in directory: String = NSTemporaryDirectory()) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix("prithvi-serve-") {
            guard let pid = Int32(name.dropFirst("prithvi-serve-".count)), pid > 0, pid != getpid(),
                  kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(name))
        }
    }

    /// Removes the scratch root (the server stops; no request runs any more).
    public func shutDown() {
        try? FileManager.default.removeItem(atPath: scratchRoot)
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
            answer = HTTPAnswer(status: apiError.status, body: apiError.json, headers: apiError.headers)
        }
        observer?.requestFinished(status: answer.status, seconds: monotonicSeconds() - start)
        return answer
    }

    /// Maps what can go wrong to the status a client should see: by `FailureKind`, the same
    /// classification `segment`'s exit statuses come from.
    public static func apiError(_ error: Error) -> APIError {
        switch error {
        case let error as JobOpenFailure: return apiError(error.underlying)
        case let error as APIError: return error
        case is CancellationError: return APIError(status: 499, type: "ClientClosedRequest", "the request was cancelled")
        case let error as DownloadError:
            switch error.kind {
            case .tooLarge: return .tooLarge(error.description)
            case .io: return .internalError(error.description)
            case .httpStatus where error.fromPrivateAddress:
                return .badRequest("failed to download the input: the server answered with an error status")
            default: return .badRequest("failed to download the input: \(error.description)")
            }
        default:
            let message = "\(error)"
            switch FailureKind.of(error) {
            case .badInput, .missingInput: return .badRequest(message)
            case .output, .internal: return .internalError(message)
            case .outOfSpace: return .insufficientStorage(message)
            case .timedOut: return .timeout(message)
            case .unavailable: return .unavailable(message, retryAfter: 5)
            }
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
        guard idsInUse.insert(requestID) else {
            throw APIError.conflict("a request with id \(requestID) is already running; request ids name the output, use a unique X-Request-Id")
        }
        defer { idsInUse.remove(requestID) }
        let scratch = scratchRoot + "/" + requestID
        try Self.makeScratch(scratch, root: scratchRoot)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        do {
            return try await process(request, bodyBytes: Int64(body.count), requestID: requestID, scratch: scratch)
        } catch {
            // Clients see their input named, never the server's scratch paths.
            let apiError = Self.apiError(error)
            let message = apiError.message.replacingOccurrences(of: scratch + "/input.tiff", with: "the \(request.inputFormat.rawValue) input")
                .replacingOccurrences(of: scratch, with: "the request's scratch directory")
            throw APIError(status: apiError.status, type: apiError.type, Self.clipped(message), retryAfter: apiError.retryAfter)
        }
    }

    /// The scratch root (0700: request inputs are nobody else's business) and a request's directory in it.
    static func makeScratch(_ scratch: String, root: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false)
        } catch {
            throw OutputError("cannot create the request's scratch directory: \((error as NSError).localizedDescription)",
                              outOfSpace: fileSystemIsFull(at: root + "/x"))
        }
    }

    /// Error messages echo what the client sent; a 3 MB URL is cut to its start.
    public static func clipped(_ message: String, limit: Int = 2000) -> String {
        message.count <= limit ? message : String(message.prefix(limit)) + "… (\(message.count - limit) more characters)"
    }

    private func process(_ request: PoolingRequest, bodyBytes: Int64, requestID: String, scratch: String) async throws -> (PoolingResponse, JobReport) {
        let policy = self.policy
        let start = monotonicSeconds()
        let deadline = policy.requestTimeout.map { start + $0 }
        let lane = request.inputFormat == .url ? BlockingIO.downloads : BlockingIO.files
        let input: String = try await lane.run {
            try Self.fetchInput(request, policy: policy, scratch: scratch)
        }
        try Task.checkCancellation()
        let fetched = monotonicSeconds()
        let bands = request.indices ?? Array(0..<engine.config.encoder.inChannels)
        let (width, height) = try await BlockingIO.files.run { try Self.checkRaster(input, bands: bands, policy: policy, request: request) }
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

        // Room for the job under --max-memory and --max-concurrent-requests (waits in the queue).
        let estimate = JobMemory.estimate(width: width, height: height, config: engine.config, options: options,
                                          payloadBytes: request.inputFormat == .b64_json ? bodyBytes : 0,
                                          answerInMemory: request.outputFormat == .b64_json)
        let ticket = try await admission.admit(bytes: estimate, deadline: deadline)
        defer { ticket.release() }
        try Task.checkCancellation()

        let remaining = deadline.map { max(0.001, $0 - monotonicSeconds()) }
        let report = try await engine.segment(input: input, output: output, options: options, timeout: remaining)
        let payload: String
        switch request.outputFormat {
        case .path: payload = output
        case .b64_json: payload = try await BlockingIO.files.run { try Data(contentsOf: URL(fileURLWithPath: output)).base64EncodedString() }
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

    /// A readable raster with the requested bands, within the pixel limit: its width and height.
    static func checkRaster(_ path: String, bands: [Int], policy: ServingPolicy, request: PoolingRequest) throws -> (Int, Int) {
        let shown = request.inputFormat == .path ? request.input : "the \(request.inputFormat.rawValue) input"
        guard access(path, R_OK) == 0 else { throw APIError.badRequest("\(shown) cannot be read (permission denied)") }
        let raster: RasterDataset
        do {
            raster = try RasterDataset.open(path, allowedDrivers: inputDrivers)
        } catch {
            throw APIError.badRequest("\(shown) is not a GeoTIFF")
        }
        let pixels = raster.width * raster.height
        guard pixels <= policy.maxRequestPixels else {
            throw APIError.tooLarge("the image has \(raster.width)×\(raster.height) = \(pixels) pixels, more than --max-request-pixels \(policy.maxRequestPixels)")
        }
        if let bad = bands.first(where: { $0 >= raster.bandCount }) {
            throw APIError.badRequest("band index \(bad) is out of range: the image has \(raster.bandCount) band(s)")
        }
        return (raster.width, raster.height)
    }
}

/// The request ids of requests running now.
final class RequestIDs: @unchecked Sendable {  // `ids` is guarded by `lock`
    private let lock = NSLock()
    private var ids: Set<String> = []
    func insert(_ id: String) -> Bool { lock.withLock { ids.insert(id).inserted } }
    func remove(_ id: String) { _ = lock.withLock { ids.remove(id) } }
}
