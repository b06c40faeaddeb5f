import Foundation
import Geo
import Model
import TestSupport
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `coordinator serve` over real HTTP on loopback: the seed document's client, every documented
/// error, concurrency, metrics. One server (in-process tiles) is shared by the suite.
@Suite(.serialized) struct ServeTests {
    final class Fixture: @unchecked Sendable {
        let dir = TemporaryDirectory("serve")
        let files = LoopbackHTTPServer()
        var server: ChildProcess!
        var port = 0
        var model: String { dir.file("model") }
        var media: String { dir.file("media") }
        var outputs: String { dir.file("outputs") }
        var url: String { "http://127.0.0.1:\(port)" }

        init() {
            do {
                var spec = ModelFactory.Spec.small
                spec.embedDim = 64; spec.heads = 2; spec.depth = 2; spec.neckIndices = [0, 1, 1, 1]; spec.decoderChannels = 32
                try ModelFactory.create(spec, in: model)
                for path in [media, outputs, outputs + "/sub"] { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
                for (name, width, height) in [("small.tif", 300, 260), ("medium.tif", 520, 430), ("large.tif", 1000, 700)] {
                    var scene = SceneFactory.Spec()
                    scene.width = width; scene.height = height
                    try SceneFactory.create(scene, at: media + "/" + name)
                }
                try "not a raster".write(toFile: media + "/notes.tif", atomically: true, encoding: .utf8)
                try files.start()
                files.put("/files/small.tif", try Data(contentsOf: URL(fileURLWithPath: media + "/small.tif")))
                files.put("/files/notes.tif", Data("not a raster".utf8))
                (server, port) = try ServeTests.startServer(model: model, arguments: [
                    "--allowed-local-media-path", media, "--max-request-pixels", "600000", "--max-input-bytes", "\(20 << 20)",
                ], outputs: outputs)
            } catch {
                fatalError("serve fixture: \(error)")
            }
        }
    }
    static let fixture = Fixture()

    /// Starts `coordinator serve` on a free port (optionally under mpirun) and waits for it.
    static func startServer(model: String, arguments: [String], outputs: String, workers: Int = 0,
                            environment: [String: String] = [:]) throws -> (ChildProcess, Int) {
        let serve = [product("coordinator"), "serve", model, "--port", "0"] + arguments
        let command = workers == 0 ? serve : ["-np", "1"] + serve + ["--threads", "1", ":", "-np", "\(workers)", product("tileworker")]
        let env = ["TERRATORCH_SEGMENTATION_IO_PROCESSOR_CONFIG": "{\"output_path\": \"\(outputs)\"}"].merging(environment) { $1 }
        let child = try ChildProcess(workers == 0 ? command[0] : mpirunPath, Array(workers == 0 ? command.dropFirst() : command[...]),
                                     environment: env)
        child.killAtExit()
        let pattern = #"Listening on http://127\.0\.0\.1:(\d+)"#
        guard child.waitForOutput(timeout: 120, { $0.range(of: pattern, options: .regularExpression) != nil }),
              let range = child.output.range(of: pattern, options: .regularExpression),
              let port = Int(child.output[range].split(separator: ":").last!) else {
            throw SetupFailure("server did not start: \(child.output)")
        }
        return (child, port)
    }

    static func request(_ method: String, _ url: String, json: Any? = nil, body: Data? = nil,
                        headers: [String: String] = [:]) async throws -> (status: Int, body: Data) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        request.timeoutInterval = 300
        if let json { request.httpBody = try JSONSerialization.data(withJSONObject: json) }
        if let body { request.httpBody = body }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as! HTTPURLResponse).statusCode, data)
    }

    static func object(_ data: Data) -> [String: Any] { (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:] }

    static func pooling(_ data: [String: Any], model: String? = nil, headers: [String: String] = [:]) async throws -> (Int, [String: Any]) {
        var body: [String: Any] = ["data": data, "softmax": false]
        body["model"] = model ?? fixture.model
        let (status, reply) = try await request("POST", fixture.url + "/pooling", json: body, headers: headers)
        return (status, object(reply))
    }

    static func maskPixels(_ path: String) throws -> [Float] {
        let raster = try RasterDataset.open(path)
        return try raster.read(bands: [0], window: PixelWindow(x: 0, y: 0, width: raster.width, height: raster.height))
    }

    static func sameGeoreferencing(_ a: String, _ b: String) throws -> Bool {
        let x = try RasterDataset.open(a), y = try RasterDataset.open(b)
        return x.geoTransform == y.geoTransform && x.projectionWKT == y.projectionWKT && x.width == y.width && x.height == y.height
    }

    @Test func theSeedDocumentsPythonClientGetsAGeoreferencedMask() throws {
        let f = Self.fixture
        let python = try #require(pythonWithRequests, "python3 with requests is needed (scripts/install-deps.sh installs python3-requests)")
        // The snippet of serving-prithvi-with-vllm.md, pointed at this server and the local file server.
        let script = """
        import requests
        request_payload = {
            "data": {
                "data": "\(f.files.baseURL)/files/small.tif",
                "data_format": "url",
                "out_data_format": "path",
                "image_format": "geoTiff"
            },
            "model": "\(f.model)",
            "softmax": False
        }
        ret = requests.post("http://localhost:\(f.port)/pooling", json=request_payload)
        response = ret.json()
        out_file_path = response["data"]["data"]
        print(ret.status_code, response["request_id"], out_file_path)
        """
        let (status, output) = try runCommand(python, ["-c", script], timeout: 120)
        #expect(status == 0, "\(output)")
        let parts = output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").map(String.init)
        #expect(parts.count == 3 && parts[0] == "200", "\(output)")
        let path = parts.last ?? ""
        #expect(path == f.outputs + "/" + (parts.count == 3 ? parts[1] : "?") + ".tiff")
        #expect(try Self.sameGeoreferencing(path, f.media + "/small.tif"))
        #expect(try RasterDataset.open(path).dataType(band: 0) == .byte)
    }

    @Test func pathInputWithBase64Output() async throws {
        let f = Self.fixture
        let (status, reply) = try await Self.pooling(["data": f.media + "/small.tif", "data_format": "path", "out_data_format": "b64_json"],
                                                     headers: ["X-Request-Id": "seed-42"])
        #expect(status == 200, "\(reply)")
        #expect(reply["request_id"] as? String == "pool-seed-42")
        #expect(reply["created_at"] is Int)
        let data = try #require(reply["data"] as? [String: Any])
        #expect(data["data_format"] as? String == "b64_json" && data["request_id"] as? String == "pool-seed-42")
        let tiff = try #require(Data(base64Encoded: data["data"] as? String ?? ""))
        let decoded = f.dir.file("decoded.tif")
        try tiff.write(to: URL(fileURLWithPath: decoded))
        #expect(try Self.sameGeoreferencing(decoded, f.media + "/small.tif"))
        // The same mask as a path output, and as `segment` computes it.
        let (pathStatus, pathReply) = try await Self.pooling(["data": f.media + "/small.tif", "data_format": "path", "out_data_format": "path"])
        #expect(pathStatus == 200)
        let written = try #require((pathReply["data"] as? [String: Any])?["data"] as? String)
        #expect(try Self.maskPixels(written) == (try Self.maskPixels(decoded)))
        let (segmentStatus, segmentOutput) = try runCommand(product("coordinator"), ["segment", f.model, f.media + "/small.tif", f.dir.file("segment.tif"), "--quiet"])
        #expect(segmentStatus == 0, "\(segmentOutput)")
        #expect(try Self.maskPixels(f.dir.file("segment.tif")) == (try Self.maskPixels(decoded)), "serve and segment share one engine")
        // Extra fields of vLLM clients are ignored.
        let (extraStatus, _) = try await Self.pooling(["data": f.media + "/small.tif", "data_format": "path", "out_data_format": "path",
                                                       "image_format": "geoTiff", "priority": 3])
        #expect(extraStatus == 200)
    }

    /// GCPs and embedded RPCs reach served masks too (the server reads no sidecars, so the RPCs
    /// are in the TIFF's RPC tag, where gdal_translate puts a sidecar's).
    @Test func servedMasksKeepGCPsAndRPCs() async throws {
        let f = Self.fixture
        let gcps = f.media + "/gcps.tif", rpc = f.media + "/rpc.tif", staged = f.dir.file("rpc-staged.tif")
        var (status, log) = try runCommand("/usr/bin/gdal_translate", ["-q", "-a_srs", "EPSG:32633", "-gcp", "0", "0", "500000", "5000000",
                                                                       "-gcp", "300", "0", "509000", "5000000", "-gcp", "0", "260", "500000", "4992200",
                                                                       f.media + "/small.tif", gcps])
        #expect(status == 0, "\(log)")
        try FileManager.default.copyItem(atPath: f.media + "/small.tif", toPath: staged)
        try GeoreferencingTests.writeRPCSidecar(f.dir.file("rpc-staged_RPC.TXT"))
        (status, log) = try runCommand("/usr/bin/gdal_translate", ["-q", staged, rpc])
        #expect(status == 0, "\(log)")
        for input in [gcps, rpc] {
            let (code, reply) = try await Self.pooling(["data": input, "data_format": "path", "out_data_format": "path"])
            #expect(code == 200, "\(reply)")
            let written = try #require((reply["data"] as? [String: Any])?["data"] as? String)
            let a = try RasterDataset.open(input).georeferencing, b = try RasterDataset.open(written).georeferencing
            #expect(b.gcps == a.gcps && b.gcpProjectionWKT == a.gcpProjectionWKT && b.geoTransform == a.geoTransform, "\(input)")
            #expect(Set(a.rpc).isSubset(of: Set(b.rpc)) && (input == rpc) == !a.rpc.isEmpty, "\(input): \(a.rpc) vs \(b.rpc)")
            #expect(input == rpc || a.gcps.count == 3)
        }
    }

    @Test func everyBadRequestGetsAVLLMErrorAndTheServerStaysHealthy() async throws {
        let f = Self.fixture
        func expectError(_ status: Int, _ type: String, _ fragment: String, _ send: () async throws -> (Int, [String: Any])) async throws {
            let (code, reply) = try await send()
            #expect(code == status, "\(fragment): \(code) \(reply)")
            let error = reply["error"] as? [String: Any]
            #expect(error?["type"] as? String == type && error?["code"] as? Int == status && error?["param"] is NSNull, "\(reply)")
            #expect((error?["message"] as? String ?? "").contains(fragment), "\(reply)")
            let (health, _) = try await Self.request("GET", f.url + "/health")
            #expect(health == 200)
        }
        let good = ["data": f.media + "/small.tif", "data_format": "path", "out_data_format": "path"]
        try await expectError(400, "BadRequestError", "not valid JSON") {
            let (s, b) = try await Self.request("POST", f.url + "/pooling", body: Data("{\"model\": ".utf8)); return (s, Self.object(b))
        }
        try await expectError(404, "NotFoundError", "does not exist") { try await Self.pooling(good, model: "other/model") }
        try await expectError(400, "BadRequestError", "must be a subpath of --allowed-local-media-path") {
            try await Self.pooling(["data": f.model + "/config.json", "data_format": "path", "out_data_format": "path"])
        }
        try await expectError(400, "BadRequestError", "must be a subpath") {
            try await Self.pooling(["data": f.media + "/../model/config.json", "data_format": "path", "out_data_format": "path"])
        }
        try await expectError(400, "BadRequestError", "not a GeoTIFF") {
            try await Self.pooling(["data": f.media + "/notes.tif", "data_format": "path", "out_data_format": "path"])
        }
        try await expectError(400, "BadRequestError", "not a GeoTIFF") {
            try await Self.pooling(["data": f.files.baseURL + "/files/notes.tif", "data_format": "url", "out_data_format": "path"])
        }
        // A host on the server's own network (here loopback) does not get its status code told.
        try await expectError(400, "BadRequestError", "the server answered with an error status") {
            try await Self.pooling(["data": f.files.baseURL + "/files/missing.tif", "data_format": "url", "out_data_format": "path"])
        }
        try await expectError(400, "BadRequestError", "failed to download") {
            try await Self.pooling(["data": "http://127.0.0.1:1/refused.tif", "data_format": "url", "out_data_format": "path"])
        }
        try await expectError(413, "RequestTooLargeError", "larger than the limit") {
            try await Self.pooling(["data": f.files.baseURL + "/big", "data_format": "url", "out_data_format": "path"])
        }
        try await expectError(400, "BadRequestError", "data_format") {
            try await Self.pooling(["data": f.media + "/small.tif", "data_format": "s3", "out_data_format": "path"])
        }
        try await expectError(400, "BadRequestError", "band index 6 is out of range") {
            try await Self.pooling(["data": f.media + "/small.tif", "data_format": "path", "out_data_format": "path", "indices": [0, 1, 2, 3, 4, 6]])
        }
        try await expectError(413, "RequestTooLargeError", "max-request-pixels") {
            try await Self.pooling(["data": f.media + "/large.tif", "data_format": "path", "out_data_format": "path"])
        }
        try await expectError(400, "BadRequestError", "outside the server's output directory") {
            try await Self.pooling(["data": f.media + "/small.tif", "data_format": "path", "out_data_format": "path", "out_path": f.media])
        }
        try await expectError(400, "BadRequestError", "X-Request-Id") {
            try await Self.pooling(good, headers: ["X-Request-Id": "../../etc/passwd"])
        }
        try await expectError(400, "BadRequestError", "not valid base64") {
            try await Self.pooling(["data": "%%%%", "data_format": "b64_json", "out_data_format": "path"])
        }
        // No half-written outputs were left behind.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: f.outputs).filter { $0.contains("partial") }
        #expect(leftovers.isEmpty)
        // out_path inside the output directory is honoured.
        let (status, reply) = try await Self.pooling(["data": f.media + "/small.tif", "data_format": "path", "out_data_format": "path",
                                                      "out_path": f.outputs + "/sub"])
        #expect(status == 200)
        #expect(((reply["data"] as? [String: Any])?["data"] as? String)?.hasPrefix(f.outputs + "/sub/pool-") == true)
    }

    @Test func concurrentMixedRequestsMatchSequentialOnes() async throws {
        let f = Self.fixture
        let scenes = ["small.tif", "medium.tif", "small.tif", "medium.tif", "small.tif", "medium.tif", "small.tif", "medium.tif"]
        var sequential: [String: [Float]] = [:]
        for name in Set(scenes) {
            let (status, reply) = try await Self.pooling(["data": f.media + "/" + name, "data_format": "path", "out_data_format": "path"])
            #expect(status == 200)
            sequential[name] = try Self.maskPixels((reply["data"] as! [String: Any])["data"] as! String)
        }
        let results = try await withThrowingTaskGroup(of: (String, Int, String?).self) { group in
            for name in scenes {
                group.addTask {
                    let (status, reply) = try await Self.pooling(["data": f.media + "/" + name, "data_format": "path", "out_data_format": "path"])
                    return (name, status, (reply["data"] as? [String: Any])?["data"] as? String)
                }
            }
            var all: [(String, Int, String?)] = []
            for try await result in group { all.append(result) }
            return all
        }
        #expect(results.count == 8)
        for (name, status, output) in results {
            #expect(status == 200, "\(name)")
            let path = try #require(output)
            #expect(try Self.maskPixels(path) == sequential[name], "\(name) differs when served concurrently")
        }
    }

    /// Served inputs open with the GeoTIFF driver only: a VRT (which can read any file the server
    /// can, /etc/passwd as raw pixels included), another format or a GDAL virtual path is a 400
    /// whatever the transport, and no message shows the server's scratch paths.
    @Test func onlyGeoTIFFsAreOpenedForRequests() async throws {
        let f = Self.fixture
        let outside = f.dir.file("outside.tif")  // beside media/, not under it
        if !FileManager.default.fileExists(atPath: outside) {
            try FileManager.default.copyItem(atPath: f.media + "/small.tif", toPath: outside)
        }
        let bands = (1...6).map { band in
            "<VRTRasterBand dataType=\"Int16\" band=\"\(band)\"><SimpleSource><SourceFilename relativeToVRT=\"0\">\(outside)</SourceFilename><SourceBand>\(band)</SourceBand></SimpleSource></VRTRasterBand>"
        }.joined()
        let indirect = "<VRTDataset rasterXSize=\"300\" rasterYSize=\"260\">\(bands)</VRTDataset>"
        let raw = "<VRTDataset rasterXSize=\"64\" rasterYSize=\"16\">" + (1...6).map { band in
            "<VRTRasterBand dataType=\"Byte\" band=\"\(band)\" subClass=\"VRTRawRasterBand\"><SourceFilename relativetoVRT=\"0\">/etc/passwd</SourceFilename><ImageOffset>0</ImageOffset><PixelOffset>1</PixelOffset><LineOffset>64</LineOffset></VRTRasterBand>"
        }.joined() + "</VRTDataset>"
        // The same VRT named .tif inside the allowed directory.
        try indirect.write(toFile: f.media + "/indirect.tif", atomically: true, encoding: .utf8)
        // Another single-file format GDAL reads (Erdas Imagine), with the scene's pixels.
        let scene = try RasterDataset.open(f.media + "/small.tif")
        let image = try RasterDataset.create(f.dir.file("small.img"), width: scene.width, height: scene.height, bands: 6, type: .int16, driver: "HFA")
        let whole = PixelWindow(x: 0, y: 0, width: scene.width, height: scene.height)
        for band in 0..<6 {
            try scene.read(bands: [band], window: whole).withUnsafeBufferPointer { try image.write(band: band, window: whole, values: $0) }
        }
        try image.close()
        f.files.put("/files/small.img", try Data(contentsOf: URL(fileURLWithPath: f.dir.file("small.img"))))
        f.files.put("/files/indirect.vrt", Data(indirect.utf8))

        func expectRefused(_ data: [String: Any], _ fragment: String) async throws {
            let (status, reply) = try await Self.pooling(data.merging(["out_data_format": "path"]) { $1 })
            let message = (reply["error"] as? [String: Any])?["message"] as? String ?? ""
            #expect(status == 400 && (reply["error"] as? [String: Any])?["type"] as? String == "BadRequestError", "\(data["data"] ?? ""): \(status) \(reply)")
            #expect(message.contains(fragment), "\(message)")
            #expect(!message.contains("prithvi-serve"), "scratch path in \(message)")
        }
        try await expectRefused(["data": Data(indirect.utf8).base64EncodedString(), "data_format": "b64_json"], "the b64_json input is not a GeoTIFF")
        try await expectRefused(["data": Data(raw.utf8).base64EncodedString(), "data_format": "b64_json"], "the b64_json input is not a GeoTIFF")
        try await expectRefused(["data": f.media + "/indirect.tif", "data_format": "path"], "is not a GeoTIFF")
        try await expectRefused(["data": f.files.baseURL + "/files/indirect.vrt", "data_format": "url"], "the url input is not a GeoTIFF")
        try await expectRefused(["data": f.files.baseURL + "/files/small.img", "data_format": "url"], "the url input is not a GeoTIFF")
        for virtual in ["/vsicurl/\(f.files.baseURL)/files/small.tif", "/vsimem/small.tif", "/vsizip/" + f.media + "/small.zip/small.tif"] {
            try await expectRefused(["data": virtual, "data_format": "path"], "GDAL virtual file")
        }
        // A GeoTIFF the engine refuses later (complex pixels): its message names the input, not the scratch file.
        let complex = f.dir.file("complex.tif")
        let (translated, log) = try runCommand("/usr/bin/gdal_translate", ["-q", "-ot", "CInt16", f.media + "/small.tif", complex])
        #expect(translated == 0, "\(log)")
        try await expectRefused(["data": try Data(contentsOf: URL(fileURLWithPath: complex)).base64EncodedString(), "data_format": "b64_json"],
                                "the b64_json input: band 0 holds CInt16 values")
        // A GeoTIFF still works from every transport.
        let geotiff = try Data(contentsOf: URL(fileURLWithPath: f.media + "/small.tif")).base64EncodedString()
        let (status, reply) = try await Self.pooling(["data": geotiff, "data_format": "b64_json", "out_data_format": "path"])
        #expect(status == 200, "\(reply)")
    }

    @Test func healthModelsVersionAndMetrics() async throws {
        let f = Self.fixture
        let (models, list) = try await Self.request("GET", f.url + "/v1/models")
        #expect(models == 200)
        let cards = Self.object(list)["data"] as? [[String: Any]]
        #expect(Self.object(list)["object"] as? String == "list" && cards?.first?["id"] as? String == f.model && cards?.first?["object"] as? String == "model")
        let (version, body) = try await Self.request("GET", f.url + "/version")
        #expect(version == 200 && Self.object(body)["version"] is String)
        _ = try await Self.pooling(["data": f.media + "/small.tif", "data_format": "path", "out_data_format": "path"])
        let (metrics, text) = try await Self.request("GET", f.url + "/metrics")
        let exposition = String(decoding: text, as: UTF8.self)
        #expect(metrics == 200)
        for name in ["prithvi_requests_total{status=\"200\"}", "prithvi_request_duration_seconds_bucket", "prithvi_tiles_total",
                     "prithvi_tile_duration_seconds_bucket{worker=\"0\"", "prithvi_queue_tiles", "prithvi_workers_busy", "vllm:num_requests_running"] {
            #expect(exposition.contains(name), "metrics lack \(name)")
        }
    }
}

/// Start-up refusals and a server with MPI workers.
@Suite(.serialized) struct ServeLaunchTests {
    @Test func otherPluginsAreRefusedAtStart() throws {
        let (status, output) = try runCommand(product("coordinator"), ["serve", "m", "--io-processor-plugin", "prithvi_to_tiff"], timeout: 60)
        #expect(status == 64, "\(output)")
        #expect(output.contains("terratorch_segmentation"))
        let (badOutput, message) = try runCommand(product("coordinator"), ["serve", ServeTests.fixture.model, "--port", "0"], timeout: 60,
                                                  environment: ["TERRATORCH_SEGMENTATION_IO_PROCESSOR_CONFIG": "{\"output_path\": \"/no/such/dir\"}"])
        #expect(badOutput == 64 && message.contains("does not exist"), "\(message)")
    }

    @Test func mpiWorkersServeTheSameMasks() async throws {
        let f = ServeTests.fixture
        // Its own output directory: ServeTests checks its own for leftovers meanwhile.
        let outputs = TemporaryDirectory("serve-mpi")
        let (server, port) = try ServeTests.startServer(model: f.model, arguments: ["--allowed-local-media-path", f.media], outputs: outputs.path, workers: 2)
        defer { server.terminate() }
        let body: [String: Any] = ["model": f.model, "data": ["data": f.media + "/medium.tif", "data_format": "path", "out_data_format": "path"]]
        let (status, reply) = try await ServeTests.request("POST", "http://127.0.0.1:\(port)/pooling", json: body)
        #expect(status == 200)
        let path = try #require((ServeTests.object(reply)["data"] as? [String: Any])?["data"] as? String)
        // The fixture server's answer as base64, so that nothing is written in its output
        // directory while ServeTests checks it for leftovers.
        let (reference, referenceReply) = try await ServeTests.pooling(["data": f.media + "/medium.tif", "data_format": "path", "out_data_format": "b64_json"])
        #expect(reference == 200)
        let encoded = try #require((referenceReply["data"] as? [String: Any])?["data"] as? String)
        let referencePath = outputs.file("reference.tiff")
        try #require(Data(base64Encoded: encoded)).write(to: URL(fileURLWithPath: referencePath))
        #expect(try ServeTests.maskPixels(path) == (try ServeTests.maskPixels(referencePath)))
        #expect(server.output.contains("rank 2 on"), "both workers loaded the model")
    }
}

/// `url` inputs against hostile servers: every redirect is checked like the URL itself
/// (scheme, --allowed-media-domains), and --deny-private-addresses refuses loopback and
/// private addresses after DNS. Only loopback is ever contacted.
@Suite(.serialized) struct ServeURLTests {
    final class Fixture: @unchecked Sendable {
        let files = LoopbackHTTPServer()
        let ftp: LoopbackConnectionCounter
        /// Its own output directory: ServeTests checks its own for leftovers while this suite runs.
        let dir = TemporaryDirectory("serve-url")
        var restricted: ChildProcess!, restrictedPort = 0
        var localhost: String { "http://localhost:\(files.port)" }

        init() {
            do {
                ftp = try LoopbackConnectionCounter()
                try files.start()
                let f = ServeTests.fixture
                files.put("/files/small.tif", try Data(contentsOf: URL(fileURLWithPath: f.media + "/small.tif")))
                (restricted, restrictedPort) = try ServeTests.startServer(model: f.model, arguments: ["--allowed-media-domains", "localhost"],
                                                                          outputs: dir.path)
            } catch {
                fatalError("url fixture: \(error)")
            }
        }
    }
    static let fixture = Fixture()

    static func pooling(port: Int, _ url: String) async throws -> (Int, String) {
        let body: [String: Any] = ["model": ServeTests.fixture.model, "data": ["data": url, "data_format": "url", "out_data_format": "path"]]
        let (status, reply) = try await ServeTests.request("POST", "http://127.0.0.1:\(port)/pooling", json: body)
        let error = ServeTests.object(reply)["error"] as? [String: Any]
        if status != 200 { #expect(error?["type"] as? String == "BadRequestError" && error?["code"] as? Int == status, "\(error ?? [:])") }
        return (status, error?["message"] as? String ?? "")
    }

    @Test func redirectsAreCheckedAgainstTheAllowedDomains() async throws {
        let f = Self.fixture
        f.files.redirect("/ok", to: f.localhost + "/files/small.tif")
        f.files.redirect("/off", to: "http://127.0.0.1:\(f.files.port)/files/small.tif")
        f.files.redirect("/hop1", to: f.localhost + "/hop2")
        f.files.redirect("/hop2", to: "/hop3")  // relative Location
        f.files.redirect("/hop3", to: "http://127.0.0.1:\(f.files.port)/files/small.tif")
        f.files.redirect("/loop", to: f.localhost + "/loop")
        let (ok, okMessage) = try await Self.pooling(port: f.restrictedPort, f.localhost + "/ok")
        #expect(ok == 200, "a redirect within the allowed domain is followed: \(okMessage)")
        let (off, offMessage) = try await Self.pooling(port: f.restrictedPort, f.localhost + "/off")
        #expect(off == 400 && offMessage.contains("127.0.0.1 is not in --allowed-media-domains"), "\(off) \(offMessage)")
        let (chain, chainMessage) = try await Self.pooling(port: f.restrictedPort, f.localhost + "/hop1")
        #expect(chain == 400 && chainMessage.contains("127.0.0.1 is not in --allowed-media-domains"), "\(chain) \(chainMessage)")
        let (loop, loopMessage) = try await Self.pooling(port: f.restrictedPort, f.localhost + "/loop")
        #expect(loop == 400 && loopMessage.contains("more than 5 redirects"), "\(loop) \(loopMessage)")
    }

    @Test func aRedirectToAnotherSchemeIsNeverFollowed() async throws {
        let f = Self.fixture
        f.files.redirect("/ftp", to: "ftp://localhost:\(f.ftp.port)/small.tif")
        let (status, message) = try await Self.pooling(port: f.restrictedPort, f.localhost + "/ftp")
        #expect(status == 400 && message.contains("not an http(s) URL"), "\(status) \(message)")
        #expect(f.ftp.connections == 0, "the ftp:// target was contacted")
    }

    @Test func privateAddressesAreRefusedWhenAsked() async throws {
        let f = Self.fixture
        let (server, port) = try ServeTests.startServer(model: ServeTests.fixture.model, arguments: ["--deny-private-addresses"],
                                                        outputs: f.dir.path)
        defer { server.terminate() }
        for url in [f.localhost + "/files/small.tif", "http://127.0.0.1:\(f.files.port)/files/small.tif", "http://[::1]:\(f.files.port)/files/small.tif"] {
            let (status, message) = try await Self.pooling(port: port, url)
            #expect(status == 400 && message.contains("private or loopback address"), "\(url): \(status) \(message)")
        }
        let before = f.files.requests.count
        _ = try await Self.pooling(port: port, f.localhost + "/files/small.tif")
        #expect(f.files.requests.count == before, "the loopback server was reached")
    }
}
