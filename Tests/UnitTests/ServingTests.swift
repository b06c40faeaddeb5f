import Foundation
import Geo
import Pipeline
import Serving
import Support
import TestSupport
import Testing

/// The /pooling request rules without a socket: parsing, ids, where inputs and outputs may be.
@Suite struct PoolingRequestTests {
    static func parse(_ json: String) throws -> PoolingRequest { try PoolingRequest.parse(Data(json.utf8)) }

    static func badRequest(_ json: String) -> String? {
        do { _ = try parse(json); return nil } catch let error as APIError {
            #expect(error.status == 400 && error.type == "BadRequestError")
            return error.message
        } catch { return "\(error)" }
    }

    @Test func theBodyLimitFollowsThePixelLimit() {
        // 1000 pixels × 6 bands of float64 + 1 MiB of TIFF, in base64, + 64 KiB of JSON.
        let small = ServingPolicy.bodyLimit(maxInputBytes: 2 << 30, maxRequestPixels: 1000, bands: 6)
        #expect(small == (48_000 + (1 << 20)) / 3 * 4 + 4 + (64 << 10))
        let capped = ServingPolicy.bodyLimit(maxInputBytes: 10 << 20, maxRequestPixels: 100_000_000, bands: 6)
        #expect(capped == (10 << 20) / 3 * 4 + 4 + (64 << 10), "--max-input-bytes caps it")
        #expect(ServingPolicy.bodyLimit(maxInputBytes: .max, maxRequestPixels: .max, bands: 6) > 0, "no overflow")
    }

    @Test func failuresMapToStatusesByKind() {
        let full = OutputError.writeFailed("/out/x.tif", "cannot write", errorNumber: ENOSPC)
        #expect(full.kind == .outOfSpace && full.description.contains("No space left"))
        #expect(OutputError.writeFailed("/out/x.tif", "cannot write", errorNumber: EACCES).kind == .output)
        #expect(PoolingService.apiError(full).status == 507)
        #expect(PoolingService.apiError(OutputError("rename refused")).status == 500)
        #expect(PoolingService.apiError(JobOpenFailure(underlying: SceneError("bad bands"))).status == 400)
        #expect(PoolingService.apiError(JobStalled(seconds: 3)).status == 504)
        #expect(PoolingService.apiError(SegmentationFailure("worker 2 died")).status == 500)
        #expect(FailureKind.of(SegmentationFailure("x", kind: .badInput)) == .badInput)
        #expect(PoolingService.clipped(String(repeating: "u", count: 3_000_000)).count < 2100)
    }

    @Test func theSeedDocumentsPayloadParses() throws {
        let request = try Self.parse("""
        {"data": {"data": "https://example.org/valencia.tiff", "data_format": "url", "out_data_format": "path",
                  "image_format": "geoTiff"}, "model": "ibm-nasa-geospatial/Prithvi-EO-2.0-300M-TL-Sen1Floods11", "softmax": false}
        """)
        #expect(request.inputFormat == .url && request.outputFormat == .path && request.indices == nil && request.outPath == nil)
        #expect(request.model == "ibm-nasa-geospatial/Prithvi-EO-2.0-300M-TL-Sen1Floods11")
        let withIndices = try Self.parse(#"{"data": {"data": "x", "data_format": "b64_json", "out_data_format": "b64_json", "indices": [1,2,3,8,11,12], "out_path": "/o"}}"#)
        #expect(withIndices.indices == [1, 2, 3, 8, 11, 12] && withIndices.outPath == "/o" && withIndices.model == nil)
    }

    @Test func badBodiesNameTheirField() {
        #expect(Self.badRequest("[1, 2]")?.contains("JSON object") == true)
        #expect(Self.badRequest("{\"data\": 5}")?.contains("`data` must be an object") == true)
        #expect(Self.badRequest(#"{"data": {"data": "x", "out_data_format": "path"}}"#)?.contains("data.data_format") == true)
        #expect(Self.badRequest(#"{"data": {"data": "x", "data_format": "ftp", "out_data_format": "path"}}"#)?.contains("url, path, b64_json") == true)
        #expect(Self.badRequest(#"{"data": {"data": "x", "data_format": "url", "out_data_format": "png"}}"#)?.contains("out_data_format") == true)
        #expect(Self.badRequest(#"{"data": {"data": "x", "data_format": "url", "out_data_format": "path", "indices": [0, -1]}}"#)?.contains("indices") == true)
        #expect(Self.badRequest(#"{"data": {"data": "x", "data_format": "url", "out_data_format": "path", "indices": [true]}}"#)?.contains("indices") == true)
        #expect(Self.badRequest(#"{"model": 3, "data": {}}"#)?.contains("`model` must be a string") == true)
    }

    @Test func errorsAndResponsesHaveVLLMsShape() throws {
        let error = try JSONSerialization.jsonObject(with: APIError.notFound("The model `x` does not exist.").json) as! [String: Any]
        let inner = error["error"] as! [String: Any]
        #expect(inner["code"] as? Int == 404 && inner["type"] as? String == "NotFoundError" && inner["param"] is NSNull)
        let response = PoolingResponse(requestID: "pool-abc", createdAt: 1_700_000_000, outputFormat: .path, output: "/out/pool-abc.tiff")
        let body = try JSONSerialization.jsonObject(with: response.json) as! [String: Any]
        #expect(body["request_id"] as? String == "pool-abc" && body["created_at"] as? Int == 1_700_000_000)
        let data = body["data"] as! [String: Any]
        #expect(data["data_format"] as? String == "path" && data["data"] as? String == "/out/pool-abc.tiff" && data["request_id"] as? String == "pool-abc")
    }

    @Test func requestIdsAreSafeFileNames() throws {
        #expect(try poolingRequestID(header: "job-7_a.b") == "pool-job-7_a.b")
        let generated = try poolingRequestID(header: nil)
        #expect(generated.hasPrefix("pool-") && generated.count == 37)
        for bad in ["../x", "a/b", ".hidden", String(repeating: "a", count: 200), "é"] {
            #expect(throws: APIError.self) { try poolingRequestID(header: bad) }
        }
    }
}

@Suite struct ServingPolicyTests {
    static func policy(_ dir: TemporaryDirectory, domains: [String] = []) -> ServingPolicy {
        ServingPolicy(allowedLocalMediaPath: ServingPolicy.realDirectory(dir.file("media")), allowedMediaDomains: domains,
                      downloadLimits: DownloadLimits(), maxRequestPixels: 1000, outputDirectory: ServingPolicy.realDirectory(dir.file("out"))!)
    }

    static func layout() throws -> TemporaryDirectory {
        let dir = TemporaryDirectory("policy")
        for sub in ["media", "media/deep", "out", "out/sub", "elsewhere"] {
            try FileManager.default.createDirectory(atPath: dir.file(sub), withIntermediateDirectories: true)
        }
        for file in ["media/a.tif", "media/deep/b.tif", "elsewhere/secret.tif"] { FileManager.default.createFile(atPath: dir.file(file), contents: Data([1])) }
        try FileManager.default.createSymbolicLink(atPath: dir.file("media/link.tif"), withDestinationPath: dir.file("elsewhere/secret.tif"))
        return dir
    }

    @Test func localInputsStayUnderTheAllowedDirectory() throws {
        let dir = try Self.layout()
        let policy = Self.policy(dir)
        #expect(try policy.localInput(dir.file("media/deep/b.tif")).hasSuffix("/media/deep/b.tif"))
        for escape in ["media/../elsewhere/secret.tif", "media/link.tif", "elsewhere/secret.tif"] {
            let error = #expect(throws: APIError.self) { try policy.localInput(dir.file(escape)) }
            #expect(error?.message.contains("subpath") == true, "\(escape)")
        }
        #expect(throws: APIError.self) { try policy.localInput(dir.file("media/none.tif")) }
        #expect(throws: APIError.self) { try policy.localInput(dir.file("media/deep")) }
        var closed = policy
        closed.allowedLocalMediaPath = nil
        let refused = #expect(throws: APIError.self) { try closed.localInput(dir.file("media/a.tif")) }
        #expect(refused?.message.contains("without --allowed-local-media-path") == true)
    }

    @Test func urlsAreHTTPFromAllowedDomains() throws {
        let dir = try Self.layout()
        try Self.policy(dir).checkURL("https://huggingface.co/x/resolve/main/a.tiff")
        let limited = Self.policy(dir, domains: ["huggingface.co"])
        try limited.checkURL("https://cdn-lfs.huggingface.co/a.tiff")
        #expect(throws: APIError.self) { try limited.checkURL("https://evil.example/a.tiff") }
        #expect(throws: APIError.self) { try limited.checkURL("https://nothuggingface.co/a.tiff") }
        #expect(throws: APIError.self) { try Self.policy(dir).checkURL("file:///etc/passwd") }
        #expect(throws: APIError.self) { try Self.policy(dir).checkURL("not a url") }
    }

    @Test func outputsStayUnderTheOutputDirectory() throws {
        let dir = try Self.layout()
        let policy = Self.policy(dir)
        #expect(try policy.outputDirectory(for: nil) == policy.outputDirectory)
        #expect(try policy.outputDirectory(for: dir.file("out/sub")).hasSuffix("/out/sub"))
        #expect(throws: APIError.self) { try policy.outputDirectory(for: dir.file("elsewhere")) }
        #expect(throws: APIError.self) { try policy.outputDirectory(for: dir.file("out/../elsewhere")) }
        #expect(throws: APIError.self) { try policy.outputDirectory(for: dir.file("out/none")) }
    }

    @Test func thePluginsOutputPathSetting() throws {
        let dir = try Self.layout()
        #expect(try ServingPolicy.outputDirectory(environment: ["HOME": dir.file("elsewhere")]).hasSuffix("/elsewhere"))
        let configured = ["HOME": "/nonexistent", "TERRATORCH_SEGMENTATION_IO_PROCESSOR_CONFIG": "{\"output_path\": \"\(dir.file("out"))\"}"]
        #expect(try ServingPolicy.outputDirectory(environment: configured).hasSuffix("/out"))
        #expect(throws: APIError.self) {
            try ServingPolicy.outputDirectory(environment: ["TERRATORCH_SEGMENTATION_IO_PROCESSOR_CONFIG": "{\"output_path\": \"/no/such\"}"])
        }
        #expect(throws: APIError.self) { try ServingPolicy.outputDirectory(environment: ["TERRATORCH_SEGMENTATION_IO_PROCESSOR_CONFIG": "{oops"]) }
    }
}
