import Foundation
import Geo
import TestSupport
import Testing

/// Generated scenes and their ground truth: the truth is where the scene's water is, seeds give
/// other landscapes, unknown pixels are the nodata edge and the clouds.
struct SceneFactoryTests {
    static func read(_ path: String) throws -> (values: [Float], width: Int, height: Int, bands: Int) {
        let raster = try RasterDataset.open(path)
        let values = try raster.read(bands: Array(0..<raster.bandCount), window: PixelWindow(x: 0, y: 0, width: raster.width, height: raster.height))
        return (values, raster.width, raster.height, raster.bandCount)
    }

    static func median(_ values: [Float]) -> Float { values.sorted()[values.count / 2] }

    @Test(arguments: [SceneFactory.Landscape.river, .varied])
    func truthFollowsTheScenesWater(landscape: SceneFactory.Landscape) throws {
        let dir = TemporaryDirectory("scene-factory")
        var spec = SceneFactory.Spec()
        spec.width = 400; spec.height = 300; spec.landscape = landscape; spec.seed = 3
        spec.cloudCover = landscape == .varied ? 0.3 : 0
        try SceneFactory.create(spec, at: dir.file("scene.tif"), truth: dir.file("truth.tif"))
        let scene = try Self.read(dir.file("scene.tif")), truth = try Self.read(dir.file("truth.tif"))
        #expect(truth.width == 400 && truth.height == 300 && truth.bands == 1)
        #expect(try RasterDataset.open(dir.file("truth.tif")).geoTransform == RasterDataset.open(dir.file("scene.tif")).geoTransform)
        let n = 400 * 300
        let nir = Array(scene.values[3 * n..<4 * n]), blue = Array(scene.values[0..<n])
        let water = (0..<n).filter { truth.values[$0] == 2 }, land = (0..<n).filter { truth.values[$0] == 1 }
        let unknown = (0..<n).filter { truth.values[$0] == 0 }
        #expect(water.count > n / 50 && land.count > n / 2)
        #expect(Self.median(water.map { nir[$0] }) < 700 && Self.median(land.map { nir[$0] }) > 1500)
        // Unknown: the nodata edge (scene 0) and, in the varied landscape, clouds (bright in every band).
        #expect(unknown.allSatisfy { blue[$0] == 0 || blue[$0] > 1200 })
        #expect(unknown.contains { blue[$0] > 1200 } == (landscape == .varied))
        #expect((0..<n).filter { blue[$0] == 0 }.allSatisfy { truth.values[$0] == 0 })
    }

    @Test func seedsGiveOtherLandscapesAndTheSameSeedTheSameOne() throws {
        let dir = TemporaryDirectory("scene-factory-seeds")
        var spec = SceneFactory.Spec()
        spec.width = 256; spec.height = 256; spec.landscape = .varied
        for (name, seed) in [("a", 11), ("b", 11), ("c", 12)] {
            spec.seed = UInt64(seed)
            try SceneFactory.create(spec, at: dir.file("\(name).tif"), truth: dir.file("\(name)-truth.tif"))
        }
        #expect(try Self.read(dir.file("a.tif")).values == Self.read(dir.file("b.tif")).values)
        let a = try Self.read(dir.file("a-truth.tif")).values, c = try Self.read(dir.file("c-truth.tif")).values
        #expect(zip(a, c).filter { $0 != $1 }.count > a.count / 20)
    }

    @Test func cloudsNeedTheVariedLandscape() {
        var spec = SceneFactory.Spec()
        spec.cloudCover = 0.2
        #expect(throws: SceneError.self) { try SceneFactory.create(spec, at: TemporaryDirectory("scene-factory-clouds").file("x.tif")) }
    }
}
