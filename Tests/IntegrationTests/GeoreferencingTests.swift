import Foundation
import Geo
import TestSupport
import Testing

/// Scenes placed on the ground by other means than a north-up geotransform: GCPs (Sentinel-1 GRD,
/// unprojected L1 products), RPCs (in a `_RPC.TXT` sidecar or embedded in the TIFF), a rotated
/// geotransform, and a geotransform without a CRS. Fixtures come from GDAL's own tools, and
/// `gdaltransform` is the independent judge of where a pixel lies: every output (mask and logits,
/// in-process, journaled, under mpirun with workers reading their own tiles, and `--tiling vllm`)
/// must put each pixel exactly where the input does, and the model's location is the scene centre
/// by the same georeferencing.
@Suite(.serialized) struct GeoreferencingTests {
    static let width = 520, height = 430

    final class Setup: @unchecked Sendable {
        let dir = TemporaryDirectory("georef")
        var plain: String { dir.file("plain.tif") }
        init() {
            var spec = SceneFactory.Spec()
            spec.width = GeoreferencingTests.width; spec.height = GeoreferencingTests.height; spec.georeferenced = false
            try! SceneFactory.create(spec, at: dir.file("plain.tif"))
        }
    }
    static let setup = Setup()

    static func gdal(_ tool: String, _ arguments: [String], input: String? = nil) throws -> String {
        let (status, output) = try runCommand("/bin/sh", ["-c", (input.map { "printf '\($0)' | " } ?? "") + "/usr/bin/\(tool) \"$@\"", tool] + arguments)
        #expect(status == 0, "\(tool) \(arguments): \(output)")
        return output
    }

    /// An RPC sidecar whose model puts the centre pixel off LONG_OFF (SAMP_NUM_COEFF_1 = 0.2), so
    /// a location taken from the offsets alone would be wrong.
    static func writeRPCSidecar(_ path: String) throws {
        var lines = ["LINE_OFF: 215", "SAMP_OFF: 260", "LAT_OFF: 45.0", "LONG_OFF: 10.0", "HEIGHT_OFF: 0",
                     "LINE_SCALE: 215", "SAMP_SCALE: 260", "LAT_SCALE: 0.05", "LONG_SCALE: 0.05", "HEIGHT_SCALE: 500"]
        func coefficients(_ name: String, _ values: [Int: Double]) -> [String] {
            (1...20).map { "\(name)_\($0): \(values[$0] ?? 0)" }
        }
        lines += coefficients("LINE_NUM_COEFF", [3: -1]) + coefficients("LINE_DEN_COEFF", [1: 1])
            + coefficients("SAMP_NUM_COEFF", [1: 0.2, 2: 1]) + coefficients("SAMP_DEN_COEFF", [1: 1])
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// The scene of `kind` in a directory of its own (sidecars and all).
    static func scene(_ kind: String) throws -> String {
        let s = setup
        let folder = s.dir.file(kind)
        let path = folder + "/\(kind).tif"
        if FileManager.default.fileExists(atPath: path) { return path }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        switch kind {
        case "gcps":  // four GCPs in UTM 33N, 30 m pixels, not north-up exact (one GCP 5 m off)
            _ = try gdal("gdal_translate", ["-q", "-a_srs", "EPSG:32633",
                                            "-gcp", "0", "0", "500000", "5000000", "-gcp", "520", "0", "515600", "5000000",
                                            "-gcp", "0", "430", "500000", "4987100", "-gcp", "520", "430", "515605", "4987100",
                                            s.plain, path])
        case "rpc-sidecar":
            try FileManager.default.copyItem(atPath: s.plain, toPath: path)
            try writeRPCSidecar(folder + "/\(kind)_RPC.TXT")
        case "rpc-embedded":  // gdal_translate moves the sidecar's RPCs into the TIFF's RPC tag
            let staged = s.dir.file("staged.tif")
            try FileManager.default.copyItem(atPath: s.plain, toPath: staged)
            try writeRPCSidecar(s.dir.file("staged_RPC.TXT"))
            _ = try gdal("gdal_translate", ["-q", staged, path])
        case "rotated", "transform-without-crs":
            // A VRT of the plain scene with a rotated geotransform (GDAL 3.6's gdal_translate cannot set one).
            let vrt = s.dir.file("\(kind).vrt")
            _ = try gdal("gdal_translate", ["-q", "-of", "VRT", s.plain, vrt])
            var text = try String(contentsOfFile: vrt, encoding: .utf8)
            let srs = kind == "rotated" ? "<SRS>EPSG:32633</SRS>" : ""
            let header = text.range(of: ">")!.upperBound
            text.insert(contentsOf: "\n  \(srs)<GeoTransform>500000, 25.98, 15, 5000000, 15, -25.98</GeoTransform>", at: header)
            try text.write(toFile: vrt, atomically: true, encoding: .utf8)
            _ = try gdal("gdal_translate", ["-q", vrt, path])
        default:
            Issue.record("no scene kind \(kind)")
        }
        return path
    }

    /// Where `gdaltransform` puts pixels (pixel, line) of `path`: (x, y) in WGS 84 when the raster
    /// has a CRS (or RPCs), in its own coordinates otherwise.
    static func placed(_ path: String, pixels: [(Double, Double)], rpc: Bool, crs: Bool) throws -> [[Double]] {
        let input = pixels.map { "\($0.0) \($0.1)\\n" }.joined()
        let output = try gdal("gdaltransform", (rpc ? ["-rpc"] : []) + (crs ? ["-t_srs", "EPSG:4326"] : []) + [path], input: input)
        return output.split(separator: "\n").map { $0.split(separator: " ").prefix(2).compactMap { Double($0) } }
    }

    /// Numbers of each RPC key (GDAL normalises their text and adds ERR_BIAS/ERR_RAND on writing).
    static func rpcValues(_ georeferencing: Georeferencing) -> [String: [Double]] {
        Dictionary(uniqueKeysWithValues: georeferencing.rpc.map { item in
            let parts = item.split(separator: "=", maxSplits: 1)
            return (String(parts[0]), parts.count > 1 ? parts[1].split(separator: " ").compactMap { Double($0) } : [])
        })
    }

    static let expectations: [String: (warning: String?, rpc: Bool, crs: Bool)] = [
        "gcps": (nil, false, true),
        "rpc-sidecar": ("has no geotransform or GCPs: the output keeps its RPCs; the model's location comes from its RPCs (9.98990°, 45.00012°)", true, true),
        "rpc-embedded": ("has no geotransform or GCPs: the output keeps its RPCs; the model's location comes from its RPCs (9.98990°, 45.00012°)", true, true),
        "rotated": (nil, false, true),
        "transform-without-crs": ("has no CRS for its geotransform: the output keeps its geotransform; the model is given no location", false, false),
    ]

    @Test(arguments: ["gcps", "rpc-sidecar", "rpc-embedded", "rotated", "transform-without-crs"])
    func everyOutputIsPlacedWhereItsInputIs(kind: String) throws {
        let scene = try Self.scene(kind)
        let expected = Self.expectations[kind]!
        let input = try RasterDataset.open(scene).georeferencing
        switch kind {
        case "gcps": #expect(input.gcps.count == 4 && input.gcpProjectionWKT != nil && input.geoTransform == nil)
        case "rpc-sidecar", "rpc-embedded": #expect(!input.rpc.isEmpty && input.geoTransform == nil && input.gcps.isEmpty)
        default: #expect(input.geoTransform != nil && (input.projectionWKT != nil) == (kind == "rotated"))
        }
        let pixels = [(0.0, 0.0), (260.0, 215.0), (519.5, 429.5), (37.25, 401.0)]
        let expectedPlaces = try Self.placed(scene, pixels: pixels, rpc: expected.rpc, crs: expected.crs)
        #expect(expectedPlaces.count == pixels.count && expectedPlaces.allSatisfy { $0.count == 2 })

        // The model's location: the centre pixel by the scene's georeferencing.
        let reader = try SceneReader(path: scene, bands: Array(0..<6), means: [Float](repeating: 0, count: 6), stds: [Float](repeating: 1, count: 6))
        if expected.crs {
            let centre = try #require(reader.centre, "\(kind): no location")
            let judged = expectedPlaces[1]
            #expect(abs(centre.lon - judged[0]) < 1e-7 && abs(centre.lat - judged[1]) < 1e-7, "\(kind): \(centre) vs gdaltransform \(judged)")
        } else {
            #expect(reader.centre == nil)
        }

        let model = SegmentCommandTests.setup.model
        let out = Self.setup.dir.file("\(kind)-out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let runs: [(name: String, arguments: [String], workers: Int)] = [
            ("mask.tif", [], 0),
            ("logits.tif", ["--output", "logits", "--threads", "1"], 0),
            ("workers.tif", ["--data-path", "worker"], 2),
            ("vllm.tif", ["--tiling", "vllm"], 0),
        ]
        for run in runs {
            let path = out + "/" + run.name
            let (status, log) = try SegmentCommandTests.segment([model, scene, path] + run.arguments, workers: run.workers)
            #expect(status == 0, "\(kind) \(run.name): \(log)")
            if let warning = expected.warning {
                #expect(log.contains("\(scene) \(warning)"), "\(kind) \(run.name): \(log)")
            } else {
                #expect(!log.contains(" has no "), "\(kind) \(run.name): \(log)")
            }
            let output = try RasterDataset.open(path).georeferencing
            #expect(output.geoTransform == input.geoTransform && output.projectionWKT == input.projectionWKT, "\(kind) \(run.name)")
            #expect(output.gcps == input.gcps && output.gcpProjectionWKT == input.gcpProjectionWKT, "\(kind) \(run.name)")
            let inRPC = Self.rpcValues(input), outRPC = Self.rpcValues(output)
            #expect(inRPC.allSatisfy { outRPC[$0.key] == $0.value } && outRPC.count >= inRPC.count, "\(kind) \(run.name): \(output.rpc)")
            let there = try Self.placed(path, pixels: pixels, rpc: expected.rpc, crs: expected.crs)
            #expect(zip(expectedPlaces, there).allSatisfy { zip($0, $1).allSatisfy { abs($0 - $1) < 1e-9 } }, "\(kind) \(run.name): \(there) vs \(expectedPlaces)")
        }
        // Only the outputs: no .RPB, _RPC.TXT, .aux.xml, partial or journal beside them.
        let left = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        #expect(left == runs.map(\.name).sorted(), "\(kind): \(left)")
    }
}
