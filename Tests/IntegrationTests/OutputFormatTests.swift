import Foundation
import Geo
import TestSupport
import Testing

/// `--format cog`: GDAL's COG driver writes the finished output (tiles, overviews, IFDs first) with
/// the same pixels, georeferencing and nodata as the GeoTIFF, in-process and under mpirun; creation
/// options GDAL would ignore with a warning are usage errors before any work.
@Suite(.serialized) struct OutputFormatTests {
    final class Setup: @unchecked Sendable {
        let dir = TemporaryDirectory("formats")
        var scene: String { dir.file("scene.tif") }
        init() {
            var spec = SceneFactory.Spec()
            spec.width = 700; spec.height = 560  // above the COG's 512 px blocks: it gets overviews
            try! SceneFactory.create(spec, at: dir.file("scene.tif"))
        }
    }
    static let setup = Setup()

    static func info(_ path: String) throws -> [String: Any] {
        let (status, output) = try runCommand("/usr/bin/gdalinfo", ["-json", path])
        #expect(status == 0, "\(output)")
        return try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
    }

    @Test(arguments: [("mask", 0), ("logits", 0), ("mask", 2)])
    func cogOutputsAreValidCOGsWithTheGeoTIFFsPixels(kind: String, workers: Int) throws {
        let s = Self.setup
        let model = SegmentCommandTests.setup.model
        let out = s.dir.file("\(kind)-\(workers)")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let common = ["--output", kind, "--threads", "1"]
        let (gtiffStatus, gtiffLog) = try SegmentCommandTests.segment([model, s.scene, out + "/gtiff.tif"] + common, workers: workers)
        #expect(gtiffStatus == 0, "\(gtiffLog)")
        let (cogStatus, cogLog) = try SegmentCommandTests.segment([model, s.scene, out + "/cog.tif", "--format", "cog"] + common, workers: workers)
        #expect(cogStatus == 0, "\(cogLog)")

        // GDAL's reading of the file: COG layout (ghost header found), 512 px tiles, overviews.
        let info = try Self.info(out + "/cog.tif")
        let structure = (info["metadata"] as? [String: Any])?["IMAGE_STRUCTURE"] as? [String: Any]
        #expect(structure?["LAYOUT"] as? String == "COG", "\(structure ?? [:])")
        let bands = try #require(info["bands"] as? [[String: Any]])
        #expect(bands.count == (kind == "mask" ? 1 : 2))
        for band in bands {
            #expect(band["block"] as? [Int] == [512, 512])
            #expect((band["overviews"] as? [[String: Any]])?.count ?? 0 >= 1, "\(band)")
        }

        let gtiff = try RasterDataset.open(out + "/gtiff.tif"), cog = try RasterDataset.open(out + "/cog.tif")
        #expect(cog.geoTransform == gtiff.geoTransform && cog.projectionWKT == gtiff.projectionWKT && cog.geoTransform != nil)
        #expect(try cog.noDataValue(band: 0).map { $0.isNaN ? -1 : $0 } == (kind == "mask" ? 0 : -1))
        let a = try SegmentCommandTests.pixels(out + "/gtiff.tif"), b = try SegmentCommandTests.pixels(out + "/cog.tif")
        #expect(a.count == b.count && zip(a, b).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }, "\(kind): COG pixels differ")
        if kind == "mask" {
            // Nearest overviews: only class values, never a blend of water and land.
            let (status, log) = try runCommand("/usr/bin/gdal_translate", ["-q", "-ovr", "0", out + "/cog.tif", s.dir.file("overview-\(workers).tif")])
            #expect(status == 0, "\(log)")
            let overview = try SegmentCommandTests.pixels(s.dir.file("overview-\(workers).tif"))
            #expect(Set(overview).isSubset(of: [0, 255]) && Set(overview).count == 2, "\(Set(overview))")
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        #expect(left == ["cog.tif", "gtiff.tif"], "\(left)")
    }

    @Test func creationOptionsTheDriverWouldIgnoreAreUsageErrors() throws {
        let s = Self.setup
        let model = SegmentCommandTests.setup.model
        let out = s.dir.file("refused.tif")
        for (arguments, fragment) in [
            (["--format", "cog", "--creation-option", "COMPRESS=NOPE"], "'NOPE' is an unexpected value for COMPRESS"),
            (["--format", "cog", "--creation-option", "TILED=YES"], "TILED=YES is not valid for GDAL's COG driver"),
            (["--creation-option", "BLOCKXSIZE=many"], "BLOCKXSIZE=many is not valid for GDAL's GTiff driver"),
        ] {
            let (status, log) = try SegmentCommandTests.segment([model, s.scene, out] + arguments)
            #expect(status == 64 && log.contains(fragment), "\(arguments): \(status) \(log)")
            #expect(!FileManager.default.fileExists(atPath: out))
        }
        let (status, log) = try SegmentCommandTests.segment([model, s.scene, out, "--format", "cog", "--creation-option", "COMPRESS=DEFLATE", "--creation-option", "BLOCKSIZE=256"])
        #expect(status == 0, "\(log)")
        let info = try Self.info(out)
        #expect(((info["metadata"] as? [String: Any])?["IMAGE_STRUCTURE"] as? [String: Any])?["COMPRESSION"] as? String == "DEFLATE")
        #expect((info["bands"] as? [[String: Any]])?.first?["block"] as? [Int] == [256, 256])
    }
}
