import Foundation
import Geo
import TestSupport
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The scale-out data path end to end: workers reading their own tiles (or not), many scenes in
/// one MPI job, a server that a pathological raster cannot freeze. Real mpirun, GDAL and HTTP.
@Suite(.serialized) struct ScaleOutTests {
    static var setup: SegmentCommandTests.Setup { SegmentCommandTests.setup }
    /// Outputs go here, not into the shared setup directory that SegmentCommandTests checks for leftovers.
    static let work = TemporaryDirectory("scale-out")

    /// A scene of 30 tiles with a nodata corner: more tiles than the first slots of 3 workers,
    /// so that tiles keep coming after the workers have opened the scene.
    static let largerScene: String = {
        let path = work.file("larger.tif")
        var spec = SceneFactory.Spec()
        spec.width = 1300; spec.height = 1000; spec.nodataCorner = 0.4
        try! SceneFactory.create(spec, at: path)
        return path
    }()

    /// `coordinator segment` with one BLAS thread everywhere (results depend on the thread count
    /// in the last bits), in-process or under mpirun with `workers` workers.
    static func segment(_ arguments: [String], workers: Int, extraRanks: [String] = []) throws -> (status: Int32, output: String) {
        let coordinator = [product("coordinator"), "segment"] + arguments + ["--quiet", "--threads", "1"]
        if workers == 0 && extraRanks.isEmpty { return try runCommand(coordinator[0], Array(coordinator.dropFirst()), timeout: 300) }
        var command = ["-np", "1"] + coordinator
        if workers > 0 { command += [":", "-np", "\(workers)", product("tileworker")] }
        if !extraRanks.isEmpty { command += [":", "-np", "1"] + extraRanks }
        return try runCommand(mpirunPath, command, timeout: 300)
    }

    /// Values as bit patterns: NaN (nodata in float outputs) compares equal to itself.
    static func bits(_ path: String) throws -> [UInt32] { try SegmentCommandTests.pixels(path).map(\.bitPattern) }

    /// "…; N tiles read by the workers" of the summary line.
    static func tilesReadByWorkers(_ output: String) -> Int? {
        guard let range = output.range(of: #"(\d+) tiles read by the workers"#, options: .regularExpression) else { return nil }
        return Int(output[range].prefix { $0.isNumber })
    }

    @Test(arguments: [1, 3])
    func workerAndCoordinatorPreparedTilesGiveBitwiseIdenticalLogits(batch: Int) throws {
        let s = Self.setup
        let base = ["--output", "logits", "--batch", "\(batch)"]
        let reference = Self.work.file("dp-ref-\(batch).tif")
        let scene = Self.largerScene
        let (status, output) = try Self.segment([s.model, scene, reference, "--data-path", "coordinator"] + base, workers: 0)
        #expect(status == 0, "\(output)")
        #expect(Self.tilesReadByWorkers(output) == 0, "\(output)")
        let expected = try Self.bits(reference)
        let runs: [(String, Int, [String], Bool)] = [
            ("inprocess-worker", 0, ["--data-path", "worker"], true),
            ("inprocess-auto", 0, [], false),          // in-process, auto reads on the coordinator's thread
            ("mpi1-auto", 1, [], true),
            ("mpi2-auto", 2, [], true),
            ("mpi2-coordinator", 2, ["--data-path", "coordinator"], false),
            ("mpi3-auto", 3, [], true),
        ]
        for (name, workers, extra, workersRead) in runs {
            let out = Self.work.file("dp-\(name)-\(batch).tif")
            let (status, output) = try Self.segment([s.model, scene, out] + base + extra, workers: workers)
            #expect(status == 0, "\(name): \(output)")
            let read = Self.tilesReadByWorkers(output) ?? -1
            #expect(workersRead ? read > 0 : read == 0, "\(name): \(read) tiles read by workers\n\(output)")
            #expect(try Self.bits(out) == expected, "\(name), batch \(batch): logits differ")
        }
    }

    /// A third rank runs in a mount namespace where the scene's directory holds another file of
    /// the same name: it must be refused (fingerprint) and get pixels, the mask unchanged.
    @Test(.enabled(if: getuid() == 0, "needs root for a private mount namespace"))
    func aWorkerThatSeesAnotherFileAtThePathIsShippedPixels() throws {
        let s = Self.setup
        let hidden = Self.work.file("hidden")
        try FileManager.default.createDirectory(atPath: hidden, withIntermediateDirectories: true)
        // Big enough (48 tiles) that rank 1's answer arrives while tiles remain: until it has
        // answered, the coordinator ships pixels to it too.
        let scene = hidden + "/scene.tif"
        var spec = SceneFactory.Spec()
        spec.width = 1400; spec.height = 1200; spec.seed = 3
        if !FileManager.default.fileExists(atPath: scene) { try SceneFactory.create(spec, at: scene) }
        let decoy = Self.work.file("decoy.tif")
        spec.seed = 99
        try SceneFactory.create(spec, at: decoy)
        let (probe, probeOutput) = try runCommand("/usr/bin/unshare", ["-m", "--propagation", "private", "true"])
        try #require(probe == 0, "unshare -m is not available here: \(probeOutput)")

        let reference = Self.work.file("ns-ref.tif")
        let (status, output) = try Self.segment([s.model, scene, reference, "--output", "logits"], workers: 2)
        #expect(status == 0, "\(output)")
        let blind = Self.work.file("ns-blind.tif")
        let masked = "mount -t tmpfs none '\(hidden)' && cp '\(decoy)' '\(hidden)/scene.tif' && exec '\(product("tileworker"))'"
        let (blindStatus, blindOutput) = try Self.segment([s.model, scene, blind, "--output", "logits"], workers: 1,
                                                          extraRanks: ["/usr/bin/unshare", "-m", "--propagation", "private", "sh", "-c", masked])
        #expect(blindStatus == 0, "\(blindOutput)")
        #expect(blindOutput.contains("rank 2 on") && blindOutput.contains("cannot read \(scene) itself"), "\(blindOutput)")
        #expect(blindOutput.contains("is another file here"), "\(blindOutput)")
        #expect((Self.tilesReadByWorkers(blindOutput) ?? 0) > 0, "rank 1 still reads its own tiles: \(blindOutput)")
        #expect(try Self.bits(blind) == (try Self.bits(reference)), "logits differ")
    }

    @Test func manyScenesInOneJobEqualSeparateRunsAndFailuresStayApart() throws {
        let s = Self.setup
        let dir = TemporaryDirectory("multi")
        let inputs = dir.file("in")
        try FileManager.default.createDirectory(atPath: inputs, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: s.scene, toPath: inputs + "/river.tif")
        for (name, width, height, seed) in [("small", 300, 260, 5), ("wide", 900, 300, 6)] {
            var spec = SceneFactory.Spec()
            spec.width = width; spec.height = height; spec.seed = UInt64(seed)
            try SceneFactory.create(spec, at: inputs + "/\(name).tif")
        }
        let names = ["river", "small", "wide"]
        let out = dir.file("out")
        let (status, output) = try Self.segment([s.model] + names.map { inputs + "/\($0).tif" } + ["--output-dir", out], workers: 2)
        #expect(status == 0, "\(output)")
        #expect(output.contains("3 of 3 scene(s) done"), "\(output)")
        for name in names {
            let single = dir.file("\(name)-single.tif")
            let (code, log) = try Self.segment([s.model, inputs + "/\(name).tif", single], workers: 2)
            #expect(code == 0, "\(log)")
            #expect(try SegmentCommandTests.pixels(out + "/\(name).tif") == (try SegmentCommandTests.pixels(single)), "\(name) differs")
            let a = try RasterDataset.open(out + "/\(name).tif"), b = try RasterDataset.open(single)
            #expect(a.geoTransform == b.geoTransform && a.projectionWKT == b.projectionWKT)
        }
        #expect(SegmentCommandTests.leftovers(in: out).isEmpty)

        // A missing input and a file that is no raster fail alone; the first failure's status.
        try "not a raster".write(toFile: inputs + "/notes.tif", atomically: true, encoding: .utf8)
        let list = dir.file("list.txt")
        try ([inputs + "/small.tif", inputs + "/missing.tif", "# a comment", inputs + "/notes.tif", inputs + "/wide.tif"]
            .joined(separator: "\n") + "\n").write(toFile: list, atomically: true, encoding: .utf8)
        let mixed = dir.file("mixed")
        let (mixedStatus, mixedOutput) = try Self.segment([s.model, "--inputs", list, "--output-dir", mixed], workers: 1)
        #expect(mixedStatus == 66, "\(mixedOutput)")
        #expect(mixedOutput.contains("2 of 4 scene(s) done") && mixedOutput.contains("2 failed"), "\(mixedOutput)")
        #expect(mixedOutput.contains("missing.tif: no such file") && mixedOutput.contains("notes.tif"), "\(mixedOutput)")
        let written = try FileManager.default.contentsOfDirectory(atPath: mixed).sorted()
        #expect(written == ["small.tif", "wide.tif"], "\(written)")
        #expect(try SegmentCommandTests.pixels(mixed + "/wide.tif") == (try SegmentCommandTests.pixels(dir.file("wide-single.tif"))))

        // --resume skips the scenes already written and does the rest.
        try FileManager.default.removeItem(atPath: inputs + "/notes.tif")
        try FileManager.default.copyItem(atPath: inputs + "/river.tif", toPath: inputs + "/notes.tif")
        let (resumed, resumedOutput) = try Self.segment([s.model, "--inputs", list, "--output-dir", mixed, "--resume"], workers: 1)
        #expect(resumed == 66, "the missing input is still missing: \(resumedOutput)")
        #expect(resumedOutput.contains("small.tif is complete already; skipped") && resumedOutput.contains("wide.tif is complete already"), "\(resumedOutput)")
        #expect(try SegmentCommandTests.pixels(mixed + "/notes.tif") == (try SegmentCommandTests.pixels(out + "/river.tif")))

        // Two inputs that would write the same output are refused before anything runs.
        let (clash, clashOutput) = try Self.segment([s.model, inputs + "/small.tif", dir.file("small.tif"), "--output-dir", out], workers: 0)
        #expect(clash == 64 && clashOutput.contains("would both write"), "\(clashOutput)")
    }

    /// A 6,000,000×1 all-nodata DEFLATE raster: one 72 MB strip, larger than GDAL's block cache,
    /// decompressed again for every tile (hours of reading).
    static func pathologicalRaster(_ path: String) throws {
        let width = 6_000_000
        let raster = try RasterDataset.create(path, width: width, height: 1, bands: 6, type: .int16,
                                              options: ["COMPRESS=DEFLATE", "TILED=NO", "BLOCKYSIZE=1"])
        let zeros = [Float](repeating: 0, count: width)
        for band in 0..<6 {
            try raster.setNoDataValue(0, band: band)
            try zeros.withUnsafeBufferPointer { try raster.write(band: band, window: PixelWindow(x: 0, y: 0, width: width, height: 1), values: $0) }
        }
        try raster.close()
    }

    @Test func aPathologicalRasterNeitherFreezesTheServerNorRunsPastItsTimeLimit() async throws {
        let f = ServeTests.fixture
        let dir = TemporaryDirectory("stuck")
        let slow = dir.file("strip.tif")
        try Self.pathologicalRaster(slow)
        let outputs = dir.file("outputs")
        try FileManager.default.createDirectory(atPath: outputs, withIntermediateDirectories: true)
        let (server, port) = try ServeTests.startServer(model: f.model, arguments: [
            "--allowed-local-media-path", f.media, "--request-timeout", "6",
        ], outputs: outputs)
        defer { server.terminate() }
        let url = "http://127.0.0.1:\(port)/pooling"
        let payload = try Data(contentsOf: URL(fileURLWithPath: slow)).base64EncodedString()

        let start = Date()
        async let stuck = ServeTests.request("POST", url, json: [
            "model": f.model, "data": ["data": payload, "data_format": "b64_json", "out_data_format": "path"] as [String: Any],
        ])
        try await Task.sleep(nanoseconds: 1_500_000_000)  // the slow job is opened and reading
        for _ in 0..<3 {
            let begin = Date()
            let (status, body) = try await ServeTests.request("POST", url, json: [
                "model": f.model, "data": ["data": f.media + "/small.tif", "data_format": "path", "out_data_format": "path"] as [String: Any],
            ])
            let seconds = Date().timeIntervalSince(begin)
            #expect(status == 200, "\(String(decoding: body, as: UTF8.self))")
            #expect(seconds < 3, "a small request took \(seconds) s beside the stuck one")
        }
        let (health, _) = try await ServeTests.request("GET", "http://127.0.0.1:\(port)/health")
        #expect(health == 200)
        let (status, body) = try await stuck
        let elapsed = Date().timeIntervalSince(start)
        let error = ServeTests.object(body)["error"] as? [String: Any]
        #expect(status == 504, "\(String(decoding: body, as: UTF8.self))")
        #expect(error?["type"] as? String == "TimeoutError" && error?["code"] as? Int == 504)
        #expect((error?["message"] as? String)?.contains("limit of") == true, "\(error ?? [:])")
        #expect(elapsed < 15, "answered after \(elapsed) s")
        // Nothing of the stopped job is left in the output directory (its abort runs after the
        // read it is in).
        try await Task.sleep(nanoseconds: 2_000_000_000)
        let left = try FileManager.default.contentsOfDirectory(atPath: outputs)
        #expect(left.count == 3 && left.allSatisfy { $0.hasPrefix("pool-") && $0.hasSuffix(".tiff") }, "only the three small masks: \(left)")
    }
}
