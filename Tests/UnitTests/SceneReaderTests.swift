import Foundation
import Geo
import TestSupport
import Testing

/// Reading model tiles from the raster layouts and types Sentinel-2 products come in.
@Suite struct SceneReaderTests {
    static let means: [Float] = [0.1412956, 0.13795798, 0.12353792, 0.30902815, 0.2044958, 0.11912015]
    static let stds: [Float] = [0.07406382, 0.07370365, 0.08692279, 0.11798815, 0.09772074, 0.07659938]

    static func scene(_ dir: TemporaryDirectory, _ name: String, _ change: (inout SceneFactory.Spec) -> Void) throws -> String {
        var spec = SceneFactory.Spec()
        spec.width = 300; spec.height = 260; spec.nodataCorner = 0.3
        change(&spec)
        try SceneFactory.create(spec, at: dir.file(name))
        return dir.file(name)
    }

    /// The first tile's normalised pixels of an Int16 tiled scene (the reference layout).
    static func reference(_ dir: TemporaryDirectory) throws -> [Float] {
        let path = try scene(dir, "reference.tif") { _ in }
        let reader = try SceneReader(path: path, bands: Array(0..<6), means: means, stds: stds)
        let plan = try TilePlan(sceneWidth: 300, sceneHeight: 260, tileSize: 224, stride: 192)
        return try reader.read(plan.tile(3), plan: plan).pixels
    }

    @Test func stripedUInt16AndFloatReflectanceGiveTheSameModelInput() throws {
        let dir = TemporaryDirectory("reader")
        let expected = try Self.reference(dir)
        let plan = try TilePlan(sceneWidth: 300, sceneHeight: 260, tileSize: 224, stride: 192)
        let variants: [(String, (inout SceneFactory.Spec) -> Void)] = [
            ("striped.tif", { $0.creationOptions = ["TILED=NO", "COMPRESS=LZW"] }),
            ("uint16.tif", { $0.type = .uint16 }),
            ("float.tif", { $0.type = .float32 }),
        ]
        for (name, change) in variants {
            let reader = try SceneReader(path: try Self.scene(dir, name, change), bands: Array(0..<6), means: Self.means, stds: Self.stds)
            #expect(reader.reflectanceDivisor == (name == "float.tif" ? 1 : 10000), "\(name)")
            let pixels = try reader.read(plan.tile(3), plan: plan).pixels
            #expect(maxAbsoluteError(pixels, expected) < 1e-4, "\(name)")
        }
    }

    @Test func largeScenesDecideReflectanceScalingFromTheirSample() throws {
        // Above 512² the ÷10000 decision comes from 16 block-aligned 64×64 windows: tiled, in
        // strips, narrower than a block, with much nodata, integer or float reflectance.
        let dir = TemporaryDirectory("sample")
        let variants: [(String, Float, (inout SceneFactory.Spec) -> Void)] = [
            ("tiled.tif", 10000, { $0.width = 1000; $0.height = 700 }),
            ("strips.tif", 10000, { $0.width = 1000; $0.height = 700; $0.creationOptions = ["TILED=NO", "COMPRESS=DEFLATE"] }),
            ("narrow.tif", 10000, { $0.width = 40; $0.height = 9000 }),
            ("float.tif", 1, { $0.width = 777; $0.height = 901; $0.type = .float32 }),
            ("nodata.tif", 10000, { $0.width = 900; $0.height = 900; $0.nodataCorner = 0.8 }),
        ]
        for (name, divisor, change) in variants {
            let reader = try SceneReader(path: try Self.scene(dir, name, change), bands: Array(0..<6), means: Self.means, stds: Self.stds)
            #expect(reader.reflectanceDivisor == divisor, "\(name)")
        }
    }

    @Test func cloudOptimisedGeoTIFFReadsLikeTheSource() throws {
        let dir = TemporaryDirectory("cog")
        let expected = try Self.reference(dir)
        let (status, output) = try runCommand("/usr/bin/gdal_translate", ["-q", "-of", "COG", dir.file("reference.tif"), dir.file("cog.tif")])
        #expect(status == 0, "\(output)")
        let reader = try SceneReader(path: dir.file("cog.tif"), bands: Array(0..<6), means: Self.means, stds: Self.stds)
        let plan = try TilePlan(sceneWidth: 300, sceneHeight: 260, tileSize: 224, stride: 192)
        #expect(try reader.read(plan.tile(3), plan: plan).pixels == expected)
    }

    @Test func normalisationIsThePlugins() throws {
        let dir = TemporaryDirectory("norm")
        let path = try Self.scene(dir, "scene.tif") { $0.nodataCorner = 0 }
        let reader = try SceneReader(path: path, bands: [5, 4, 3, 2, 1, 0], means: Self.means, stds: Self.stds)
        let plan = try TilePlan(sceneWidth: 300, sceneHeight: 260, tileSize: 224, stride: 192)
        let tile = plan.tile(0)
        let input = try reader.read(tile, plan: plan)
        let raw = try reader.raster.read(bands: [5, 4, 3, 2, 1, 0], window: tile.source)
        for i in stride(from: 0, to: raw.count, by: 997) {
            let band = i / (224 * 224)
            #expect(abs(input.pixels[i] - (raw[i] / 10000 - Self.means[band]) / Self.stds[band]) < 1e-5)
        }
        #expect(input.validCount == 224 * 224)
    }

    @Test func nodataIsMarkedAndFilled() throws {
        let dir = TemporaryDirectory("nodata")
        let path = try Self.scene(dir, "scene.tif") { $0.nodataCorner = 0.5 }
        let reader = try SceneReader(path: path, bands: Array(0..<6), means: Self.means, stds: Self.stds)
        let plan = try TilePlan(sceneWidth: 300, sceneHeight: 260, tileSize: 224, stride: 192)
        let input = try reader.read(plan.tile(0), plan: plan)
        #expect(input.valid[0] == 0 && input.valid[223 * 224 + 223] == 1)
        #expect(input.validCount < 224 * 224 && input.validCount > 0)
        #expect(input.pixels[0] == 0, "nodata is filled with the band mean (0 once normalised)")
        #expect(input.pixels.allSatisfy { $0.isFinite })
    }

    @Test func smallScenesAreReflectPaddedAndScaledTilesResampled() throws {
        let dir = TemporaryDirectory("small")
        let path = try Self.scene(dir, "small.tif") { $0.width = 150; $0.height = 120; $0.nodataCorner = 0 }
        let reader = try SceneReader(path: path, bands: Array(0..<6), means: Self.means, stds: Self.stds)
        let plan = try TilePlan(sceneWidth: 150, sceneHeight: 120, tileSize: 224, stride: 192, scale: 512.0 / 448.0)
        #expect(plan.count == 1 && plan.window == 256)
        let input = try reader.read(plan.tile(0), plan: plan)
        #expect(input.pixels.count == 6 * 224 * 224)
        #expect(input.valid.count == 150 * 120)
        #expect(input.pixels.allSatisfy { $0.isFinite })
    }

    @Test func bandErrorsNameTheBand() throws {
        let dir = TemporaryDirectory("bands")
        let path = try Self.scene(dir, "scene.tif") { _ in }
        let error = #expect(throws: SceneError.self) {
            try SceneReader(path: path, bands: [0, 1, 2, 3, 4, 6], means: Self.means, stds: Self.stds)
        }
        #expect(error?.description.contains("has 6 band(s)") == true && error?.description.contains("band index 6") == true)
    }
}
