import Foundation
import Geo
import TestSupport
import Testing

/// `MaskScore` from histograms with known answers, and on rasters the test writes.
struct MaskScoreTests {
    static func histogram(_ pairs: [(mask: Int, truth: Int, pixels: Int)]) -> [Int] {
        var histogram = [Int](repeating: 0, count: 256 * 256)
        for pair in pairs { histogram[pair.mask * 256 + pair.truth] += pair.pixels }
        return histogram
    }

    @Test func twoClassMaskAgainstTruth() {
        // Truth: water 2, land 1, unknown 0. Mask: 255 water, 0 land.
        let score = MaskScore(histogram: Self.histogram([
            (255, 2, 80), (0, 2, 20),   // water: 80 found, 20 missed
            (255, 1, 10), (0, 1, 890),  // land: 10 called water
            (255, 0, 7), (0, 0, 13),    // unknown: left out whatever the mask says
        ]))
        #expect(score.scored == 1000 && score.excluded == 20 && score.correct == 970)
        let water = score.classes[1], land = score.classes[0]
        #expect(water.name == "water" && land.name == "land")
        #expect(water.iou == 80.0 / 110 && water.precision == 80.0 / 90 && water.recall == 80.0 / 100)
        #expect(land.iou == 890.0 / 920 && land.precision == 890.0 / 910 && land.recall == 890.0 / 900)
    }

    @Test func multiClassMaskCountsNoPredictionAsAMiss() {
        // Mask class index + 1 (0: no prediction); three classes.
        let score = MaskScore(histogram: Self.histogram([(1, 1, 50), (2, 2, 30), (3, 3, 10), (0, 3, 5), (2, 3, 5)]))
        #expect(score.classes.count == 3 && score.classes[2].name == "class 2")
        #expect(score.classes[2].truePositives == 10 && score.classes[2].falseNegatives == 10)
        #expect(score.classes[1].falsePositives == 5)
        #expect(score.scored == 100 && score.correct == 90)
    }

    @Test func emptyClassesAreNaNNotZero() {
        let score = MaskScore(histogram: Self.histogram([(0, 1, 100)]))
        #expect(score.classes[0].iou == 1)
        #expect(score.classes[1].iou.isNaN && score.classes[1].precision.isNaN)
        #expect(score.report.contains("   -  "))
    }

    @Test func rastersOnTheSameGridAreCompared() throws {
        let dir = TemporaryDirectory("mask-score")
        var spec = SceneFactory.Spec()
        spec.width = 300; spec.height = 200
        try SceneFactory.create(spec, at: dir.file("scene.tif"), truth: dir.file("truth.tif"))
        // A mask made from the truth itself (water 255, the rest 0) scores 1 everywhere.
        let truth = try RasterDataset.open(dir.file("truth.tif"))
        let window = PixelWindow(x: 0, y: 0, width: 300, height: 200)
        let values = try truth.read(bands: [0], window: window).map { UInt8($0 == 2 ? 255 : 0) }
        let mask = try RasterDataset.create(dir.file("mask.tif"), width: 300, height: 200, bands: 1, type: .byte)
        try mask.setGeoTransform(try #require(truth.geoTransform))
        try values.withUnsafeBufferPointer { try mask.write(band: 0, window: window, bytes: $0) }
        try mask.close()
        let score = try MaskScore.compare(mask: dir.file("mask.tif"), truth: dir.file("truth.tif"))
        #expect(score.classes.allSatisfy { $0.iou == 1 } && score.excluded > 0)

        let shifted = try RasterDataset.create(dir.file("shifted.tif"), width: 300, height: 200, bands: 1, type: .byte)
        var t = try #require(truth.geoTransform).coefficients
        t[0] += 10
        try shifted.setGeoTransform(GeoTransform(t))
        try shifted.close()
        #expect(throws: SceneError.self) { try MaskScore.compare(mask: dir.file("shifted.tif"), truth: dir.file("truth.tif")) }
    }
}
