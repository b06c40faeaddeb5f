import Foundation
import Geo
import Model
import Tensor
import TestSupport
import Testing

/// `coordinator segment` end to end: real GDAL files, real mpirun with 1–3 workers.
@Suite(.serialized) struct SegmentCommandTests {
    /// A small model and a 500×420 scene with a river and a nodata corner, made once.
    final class Setup: @unchecked Sendable {
        let dir = TemporaryDirectory("segment")
        var model: String { dir.file("model") }
        var scene: String { dir.file("scene.tif") }
        init() {
            var spec = ModelFactory.Spec.small
            spec.embedDim = 64; spec.heads = 2; spec.depth = 2; spec.neckIndices = [0, 1, 1, 1]; spec.decoderChannels = 32
            try! ModelFactory.create(spec, in: dir.file("model"))
            var scene = SceneFactory.Spec()
            scene.width = 500; scene.height = 420; scene.nodataCorner = 0.4
            try! SceneFactory.create(scene, at: dir.file("scene.tif"))
        }
    }
    static let setup = Setup()

    static func segment(_ arguments: [String], workers: Int = 0) throws -> (status: Int32, output: String) {
        if workers == 0 { return try runCommand(product("coordinator"), ["segment"] + arguments + ["--quiet"], timeout: 300) }
        return try runCommand(mpirunPath, ["-np", "1", product("coordinator"), "segment"] + arguments + ["--quiet", "--threads", "1",
                                           ":", "-np", "\(workers)", product("tileworker")], timeout: 300)
    }

    static func pixels(_ path: String) throws -> [Float] {
        let raster = try RasterDataset.open(path)
        return try raster.read(bands: Array(0..<raster.bandCount), window: PixelWindow(x: 0, y: 0, width: raster.width, height: raster.height))
    }

    static func leftovers(in directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.contains("partial") || $0.contains("journal") }
    }

    @Test func maskKeepsGeoreferencingAndNodata() throws {
        let out = Self.setup.dir.file("mask-inprocess.tif")
        let (status, output) = try Self.segment([Self.setup.model, Self.setup.scene, out])
        #expect(status == 0, "\(output)")
        let input = try RasterDataset.open(Self.setup.scene), mask = try RasterDataset.open(out)
        #expect(mask.width == input.width && mask.height == input.height && mask.bandCount == 1)
        #expect(try mask.dataType(band: 0) == .byte)
        #expect(mask.geoTransform == input.geoTransform)
        #expect(try mask.noDataValue(band: 0) == 0)
        // gdalinfo sees the same CRS and geotransform.
        func info(_ path: String) throws -> [String: Any] {
            let (code, json) = try runCommand("/usr/bin/gdalinfo", ["-json", path])
            #expect(code == 0)
            return try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        }
        let a = try info(Self.setup.scene), b = try info(out)
        #expect(a["geoTransform"] as? [Double] == b["geoTransform"] as? [Double])
        #expect((a["coordinateSystem"] as? [String: Any])?["wkt"] as? String == (b["coordinateSystem"] as? [String: Any])?["wkt"] as? String)
        // The nodata corner (top-left) is 0 in the mask; values are only 0 or 255.
        let values = try Self.pixels(out)
        #expect(values[0] == 0 && values[5 * 500 + 5] == 0)
        #expect(Set(values).isSubset(of: [0, 255]))
        #expect(Self.leftovers(in: Self.setup.dir.path).isEmpty)
    }

    /// At a fixed BLAS thread count per worker (results depend on it in the last bits).
    @Test func masksAreBitwiseIdenticalForOneTwoAndThreeWorkers() throws {
        var masks: [[Float]] = []
        for workers in [0, 1, 2, 3] {
            let out = Self.setup.dir.file("mask-\(workers).tif")
            let (status, output) = try Self.segment([Self.setup.model, Self.setup.scene, out] + (workers == 0 ? ["--threads", "1"] : []), workers: workers)
            #expect(status == 0, "\(workers) workers: \(output)")
            if workers > 0 { #expect(output.contains("rank \(workers) on"), "every worker computed tiles: \(output)") }
            masks.append(try Self.pixels(out))
        }
        for (index, mask) in masks.enumerated().dropFirst() {
            #expect(mask == masks[0], "\(index) workers differ from in-process")
        }
        // Probabilities too (float sums are the first to show order effects).
        var probabilities: [[Float]] = []
        for workers in [1, 3] {
            let out = Self.setup.dir.file("probabilities-\(workers).tif")
            let (status, output) = try Self.segment([Self.setup.model, Self.setup.scene, out, "--output", "probabilities"], workers: workers)
            #expect(status == 0, "\(output)")
            probabilities.append(try Self.pixels(out))
        }
        #expect(probabilities[0].elementsEqual(probabilities[1]) { $0 == $1 || ($0.isNaN && $1.isNaN) })
    }

    /// One 224×224 tile at scale 1 and stride 224: the logits bands are exactly the model's
    /// output on the plugin's preprocessing (÷10000, config means/stds, scene-centre lon/lat).
    @Test func singleTileLogitsAreTheModelsOutput() throws {
        let dir = TemporaryDirectory("single")
        var spec = SceneFactory.Spec()
        spec.width = 224; spec.height = 224; spec.nodataCorner = 0
        try SceneFactory.create(spec, at: dir.file("tile.tif"))
        let out = dir.file("logits.tif")
        let (status, output) = try Self.segment([Self.setup.model, dir.file("tile.tif"), out, "--stride", "224", "--scale", "1", "--output", "logits"])
        #expect(status == 0, "\(output)")
        let logits = try Self.pixels(out)
        #expect(logits.count == 2 * 224 * 224)

        let model = try PrithviSegmentationModel(directory: Self.setup.model)
        let raster = try RasterDataset.open(dir.file("tile.tif"))
        let raw = try raster.read(bands: Array(0..<6), window: PixelWindow(x: 0, y: 0, width: 224, height: 224))
        let pre = model.config.preprocessing
        #expect(raw.reduce(0, +) / Float(raw.count) > 1, "the scene is in DN")
        let normalised = raw.enumerated().map { i, v in (v / 10000 - pre.means[i / (224 * 224)]) / pre.stds[i / (224 * 224)] }
        let centre = try #require(try raster.centreLonLat())
        var expected = [Float](repeating: 0, count: 2 * 224 * 224)
        try model.forward(normalised, images: 1, height: 224, width: 224, location: [Float(centre.lon), Float(centre.lat)],
                          into: &expected, scratch: Scratch())
        #expect(maxAbsoluteError(logits, expected) <= 1e-5 * max(1, expected.map(abs).max()!))
    }

    @Test func badInputsFailCleanlyWithoutOutput() throws {
        let dir = TemporaryDirectory("bad")
        let out = dir.file("out.tif")
        func check(_ arguments: [String], status expected: Int32, message: String, output path: String? = nil) throws {
            let (status, output) = try Self.segment(arguments)
            #expect(status == expected, "\(arguments): \(output)")
            #expect(output.contains(message), "\(arguments): \(output)")
            #expect(!FileManager.default.fileExists(atPath: path ?? out), "\(arguments) left an output")
            #expect(Self.leftovers(in: URL(fileURLWithPath: path ?? out).deletingLastPathComponent().path).isEmpty)
        }
        try check([Self.setup.model, dir.file("missing.tif"), out], status: 66, message: "no such file")
        try "hello".write(toFile: dir.file("text.tif"), atomically: true, encoding: .utf8)
        try check([Self.setup.model, dir.file("text.tif"), out], status: 65, message: "not a raster")
        FileManager.default.createFile(atPath: dir.file("empty.tif"), contents: Data())
        try check([Self.setup.model, dir.file("empty.tif"), out], status: 65, message: "not a raster")
        try check([Self.setup.model, Self.setup.scene, out, "--indices", "0,1,2,3,4,9"], status: 65, message: "band index 9")
        try check([Self.setup.model, Self.setup.scene, out, "--indices", "0,1,2"], status: 64, message: "the model takes 6")
        try check([Self.setup.model, Self.setup.scene, dir.file("no/such/dir/out.tif")], status: 73, message: "does not exist",
                  output: dir.file("no/such/dir/out.tif"))
        try FileManager.default.createDirectory(atPath: dir.file("locked"), withIntermediateDirectories: true)
        chmod(dir.file("locked"), 0o555)
        defer { chmod(dir.file("locked"), 0o755) }
        if getuid() != 0 {  // root writes anywhere
            try check([Self.setup.model, Self.setup.scene, dir.file("locked/out.tif")], status: 73, message: "not writable",
                      output: dir.file("locked/out.tif"))
        }
        try check([dir.file("nomodel"), Self.setup.scene, out], status: 65, message: "no such model directory")
    }

    @Test func sceneWithoutGeoreferencingIsSegmentedWithAWarning() throws {
        let dir = TemporaryDirectory("plain")
        var spec = SceneFactory.Spec()
        spec.width = 300; spec.height = 260; spec.georeferenced = false
        try SceneFactory.create(spec, at: dir.file("plain.tif"))
        let (status, output) = try Self.segment([Self.setup.model, dir.file("plain.tif"), dir.file("mask.tif")])
        #expect(status == 0, "\(output)")
        #expect(output.contains("has no geotransform or GCPs: the output will have no georeferencing either; the model is given no location"))
        let mask = try RasterDataset.open(dir.file("mask.tif"))
        #expect(mask.projectionWKT == nil && mask.geoTransform == nil)
    }

    @Test func thirteenBandScenesUseTheirIndices() throws {
        let dir = TemporaryDirectory("l1c")
        var spec = SceneFactory.Spec()
        spec.width = 260; spec.height = 240; spec.bands = 13
        try SceneFactory.create(spec, at: dir.file("l1c.tif"))
        let (status, output) = try Self.segment([Self.setup.model, dir.file("l1c.tif"), dir.file("mask.tif"), "--indices", "1,2,3,8,11,12"])
        #expect(status == 0, "\(output)")
    }

    /// OUT naming IN (directly, through `..`, through a symlink either way, in either tiling)
    /// is a usage error before any work: the input is never replaced by its mask.
    @Test func outputThatIsTheInputIsRefusedAndTheInputKept() throws {
        let dir = TemporaryDirectory("same")
        try FileManager.default.createDirectory(atPath: dir.file("d"), withIntermediateDirectories: true)
        var spec = SceneFactory.Spec()
        spec.width = 240; spec.height = 230
        let input = dir.file("d/in.tif")
        try SceneFactory.create(spec, at: input)
        let original = try Data(contentsOf: URL(fileURLWithPath: input))
        let relative = "./" + URL(fileURLWithPath: dir.path).lastPathComponent + "/d/../d/in.tif"
        let cases: [(String, String, [String])] = [
            (input, input, []),
            (input, dir.file("d/../d/in.tif"), []),
            (input, input, ["--tiling", "vllm"]),
            (input, dir.file("link.tif"), []),
            (dir.file("link.tif"), input, []),
            (input, relative, []),
        ]
        for (source, target, extra) in cases {
            try original.write(to: URL(fileURLWithPath: input))  // each case starts from the scene and the link
            try? FileManager.default.removeItem(atPath: dir.file("link.tif"))
            try FileManager.default.createSymbolicLink(atPath: dir.file("link.tif"), withDestinationPath: input)
            let (status, output) = try runCommand(product("coordinator"), ["segment", Self.setup.model, source, target, "--quiet"] + extra,
                                                  timeout: 300, directory: NSTemporaryDirectory())
            #expect(status == 64, "\(source) → \(target) \(extra): \(output)")
            #expect(output.contains("is the input"), "\(output)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: input)) == original, "\(source) → \(target) \(extra) changed the input")
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: dir.file("link.tif"))) == input, "the link was replaced")
            #expect(Self.leftovers(in: dir.file("d")).isEmpty && Self.leftovers(in: dir.path).isEmpty)
        }
    }

    /// An existing directory as OUT is refused up front (73), not after every tile (70).
    @Test func outputThatIsADirectoryIsRefusedUpFront() throws {
        let dir = TemporaryDirectory("outdir")
        try FileManager.default.createDirectory(atPath: dir.file("out.tif"), withIntermediateDirectories: true)
        for target in [dir.file("out.tif"), dir.path, dir.file("out.tif") + "/"] {
            let (status, output) = try Self.segment([Self.setup.model, Self.setup.scene, target])
            #expect(status == 73, "\(target): \(output)")
            #expect(output.contains("is a directory"), "\(output)")
            #expect(!output.contains("tiles"), "refused before any work: \(output)")
        }
    }
}

/// No seams with the real model and real files.
@Suite(.serialized) struct SeamIntegrationTests {
    /// A scene made of one 224 tile repeated 3×3: tiled at stride 224 and scale 1, every pixel's
    /// logits equal the single tile's.
    @Test func repeatedTileGivesTheSingleTileLogitsEverywhere() throws {
        let dir = TemporaryDirectory("periodic")
        var spec = SceneFactory.Spec()
        spec.width = 224; spec.height = 224; spec.nodataCorner = 0
        try SceneFactory.create(spec, at: dir.file("tile.tif"))
        let tile = try RasterDataset.open(dir.file("tile.tif"))
        let values = try tile.read(bands: Array(0..<6), window: PixelWindow(x: 0, y: 0, width: 224, height: 224))
        let big = try RasterDataset.create(dir.file("repeated.tif"), width: 672, height: 672, bands: 6, type: .int16)
        try big.setGeoTransform(tile.geoTransform!)
        try big.setProjection(wkt: tile.projectionWKT!)
        for band in 0..<6 {
            try values.withUnsafeBufferPointer { all in
                let plane = UnsafeBufferPointer(rebasing: all[(band * 224 * 224)..<((band + 1) * 224 * 224)])
                for ty in 0..<3 { for tx in 0..<3 { try big.write(band: band, window: PixelWindow(x: tx * 224, y: ty * 224, width: 224, height: 224), values: plane) } }
            }
        }
        try big.close()
        let model = SegmentCommandTests.setup.model
        let (status, output) = try SegmentCommandTests.segment([model, dir.file("repeated.tif"), dir.file("stitched.tif"),
                                                                "--stride", "224", "--scale", "1", "--output", "logits"])
        #expect(status == 0, "\(output)")
        let stitched = try SegmentCommandTests.pixels(dir.file("stitched.tif"))
        // The single tile's logits, with the location encoding of the repeated scene's centre.
        let repeated = try RasterDataset.open(dir.file("repeated.tif"))
        let centre = try #require(try repeated.centreLonLat())
        let loaded = try PrithviSegmentationModel(directory: model)
        let pre = loaded.config.preprocessing
        let normalised = values.enumerated().map { i, v in (v / 10000 - pre.means[i / (224 * 224)]) / pre.stds[i / (224 * 224)] }
        var expected = [Float](repeating: 0, count: 2 * 224 * 224)
        try loaded.forward(normalised, images: 1, height: 224, width: 224, location: [Float(centre.lon), Float(centre.lat)],
                           into: &expected, scratch: Scratch())
        var worst: Float = 0
        for k in 0..<2 {
            for y in 0..<672 {
                for x in 0..<672 {
                    worst = max(worst, abs(stitched[(k * 672 + y) * 672 + x] - expected[(k * 224 + y % 224) * 224 + x % 224]))
                }
            }
        }
        #expect(worst <= 1e-5 * max(1, expected.map(abs).max()!), "worst difference \(worst)")
    }

    /// At the default stride the blended logits change no faster at tile edges than elsewhere.
    @Test func overlapsShowNoStepAtTileEdges() throws {
        let dir = TemporaryDirectory("seams")
        let out = dir.file("logits.tif")
        let (status, output) = try SegmentCommandTests.segment([SegmentCommandTests.setup.model, SegmentCommandTests.setup.scene, out, "--output", "logits"])
        #expect(status == 0, "\(output)")
        let raster = try RasterDataset.open(out)
        let w = raster.width, h = raster.height
        let logits = try raster.read(bands: [1], window: PixelWindow(x: 0, y: 0, width: w, height: h))
        let plan = try TilePlan(sceneWidth: w, sceneHeight: h, tileSize: 224, stride: 192, scale: 512.0 / 448.0)
        // Mean absolute step between columns c-1 and c over the rows that hold data.
        func step(_ c: Int) -> Float {
            var sum: Float = 0, count: Float = 0
            for y in (h / 2)..<h where !logits[y * w + c].isNaN && !logits[y * w + c - 1].isNaN {
                sum += abs(logits[y * w + c] - logits[y * w + c - 1]); count += 1
            }
            return count > 0 ? sum / count : 0
        }
        let steps = (1..<w).map(step)
        let typical = steps.sorted()[steps.count / 2]
        let edges = Set(plan.columnOrigins.filter { $0 > 0 } + plan.columnOrigins.map { $0 + plan.window }.filter { $0 < w })
        for edge in edges.sorted() {
            #expect(steps[edge - 1] <= 3 * typical + 1e-4, "column \(edge): step \(steps[edge - 1]) vs typical \(typical)")
        }
    }
}
