import Foundation
import Geo
import TestSupport
import Testing

/// The trained demo model (models/demo-water, scripts/train_demo_model.py) on a held-out
/// generated scene: masks scored against the scene's ground truth. The first end-to-end check
/// in which tiling, scale and blending change a number a test can judge.
@Suite(.serialized) struct DemoModelTests {
    static let model = repositoryRoot + "/models/demo-water"

    /// A held-out scene (seeds below 100 are never trained on) with clouds and a nodata edge.
    final class Setup: @unchecked Sendable {
        let dir = TemporaryDirectory("demo-model")
        var scene: String { dir.file("scene.tif") }
        var truth: String { dir.file("truth.tif") }
        init() {
            var spec = SceneFactory.Spec()
            spec.landscape = .varied; spec.seed = 7; spec.width = 1000; spec.height = 700; spec.cloudCover = 0.1
            try! SceneFactory.create(spec, at: dir.file("scene.tif"), truth: dir.file("truth.tif"))
        }
    }
    static let setup = Setup()

    static func score(_ mask: String) throws -> MaskScore { try MaskScore.compare(mask: mask, truth: setup.truth) }

    @Test func theTrainedModelFindsTheWaterInProcessAndUnderMPI() throws {
        let inProcess = Self.setup.dir.file("mask-0.tif"), underMPI = Self.setup.dir.file("mask-2.tif")
        for (out, workers) in [(inProcess, 0), (underMPI, 2)] {
            let (status, log) = try SegmentCommandTests.segment([Self.model, Self.setup.scene, out], workers: workers)
            #expect(status == 0, "\(log)")
        }
        let score = try Self.score(inProcess)
        #expect(score.classes[1].iou >= 0.9, "\(score.report)")
        #expect(score.classes[0].iou >= 0.9, "\(score.report)")
        #expect(try SegmentCommandTests.pixels(underMPI) == SegmentCommandTests.pixels(inProcess))
        #expect(score.excluded > 0, "clouds and the nodata edge are left out")
    }

    /// Overlapping windows blended (the default) against the plugin's crops without overlap and
    /// against the default's windows without overlap (--stride 224): blending must not cost accuracy.
    @Test func overlapBlendingScoresAtLeastAsWellAsNoOverlap() throws {
        var iou: [String: Double] = [:]
        for (name, extra) in [("default", [String]()), ("vllm", ["--tiling", "vllm"]), ("stride224", ["--stride", "224"])] {
            let out = Self.setup.dir.file("tiling-\(name).tif")
            let (status, log) = try SegmentCommandTests.segment([Self.model, Self.setup.scene, out] + extra)
            #expect(status == 0, "\(log)")
            iou[name] = try Self.score(out).classes[1].iou
        }
        #expect(iou["default"]! >= iou["vllm"]! && iou["default"]! >= iou["stride224"]!, "\(iou)")
    }

    @Test func scoreCommandPrintsTheTableAndJSONAndRefusesOtherGrids() throws {
        let mask = Self.setup.dir.file("mask-score.tif")
        #expect(try SegmentCommandTests.segment([Self.model, Self.setup.scene, mask]).status == 0)
        let coordinator = product("coordinator")
        let (status, table) = try runCommand(coordinator, ["score", mask, Self.setup.truth])
        #expect(status == 0 && table.contains("water") && table.contains("IoU"), "\(table)")
        let (jsonStatus, json) = try runCommand(coordinator, ["score", mask, Self.setup.truth, "--json"])
        #expect(jsonStatus == 0)
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        let classes = object?["classes"] as? [[String: Any]]
        #expect(classes?[1]["name"] as? String == "water")
        #expect(abs((classes?[1]["iou"] as? Double ?? 0) - (try Self.score(mask).classes[1].iou)) < 1e-12)

        var other = SceneFactory.Spec()
        other.width = 300; other.height = 200
        try SceneFactory.create(other, at: Self.setup.dir.file("other.tif"), truth: Self.setup.dir.file("other-truth.tif"))
        let (mismatch, message) = try runCommand(coordinator, ["score", mask, Self.setup.dir.file("other-truth.tif")])
        #expect(mismatch == 65 && message.contains("not on the same grid"), "\(message)")
        let (missing, _) = try runCommand(coordinator, ["score", mask, Self.setup.dir.file("none.tif")])
        #expect(missing == 66)
    }

    @Test func quicklookIsAPictureOfTheSceneWithTheWaterInCyan() throws {
        let mask = Self.setup.dir.file("mask-quicklook.tif"), png = Self.setup.dir.file("quicklook.png")
        #expect(try SegmentCommandTests.segment([Self.model, Self.setup.scene, mask]).status == 0)
        let (status, log) = try runCommand(product("coordinator"), ["quicklook", Self.setup.scene, mask, png, "--max-side", "500"])
        #expect(status == 0, "\(log)")
        let picture = try RasterDataset.open(png)
        #expect(picture.width == 500 && picture.height == 350 && picture.bandCount == 3)
        #expect(!FileManager.default.fileExists(atPath: png + ".aux.xml"))
        // Where the mask says water (sampled every 2nd pixel), the picture is cyan-tinted: blue above red.
        let rgb = try SegmentCommandTests.pixels(png), values = try SegmentCommandTests.pixels(mask)
        var tinted = 0, water = 0
        for y in 0..<350 {
            for x in 0..<500 where values[(2 * y) * 1000 + 2 * x] == 255 {
                water += 1
                let i = y * 500 + x
                if rgb[2 * 500 * 350 + i] > rgb[i] + 60 { tinted += 1 }
            }
        }
        #expect(water > 1000 && tinted == water, "\(tinted) of \(water)")
        for bad in [["--bands", "5,x,3"], ["--bands", "5,x,3,4"], ["--bands", "5,4"], ["--max-side", "4"]] {
            let (code, message) = try runCommand(product("coordinator"), ["quicklook", Self.setup.scene, mask, png] + bad)
            #expect(code == 64, "\(bad): \(message)")
        }
        #expect(try runCommand(product("coordinator"), ["quicklook", Self.setup.scene, mask, Self.setup.dir.file("q.jpg")]).status == 64)
    }
}
