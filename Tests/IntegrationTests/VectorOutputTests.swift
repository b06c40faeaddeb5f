import Foundation
import Geo
import TestSupport
import Testing

/// `--vector`: the finished mask's water as polygons (GeoPackage, FlatGeobuf, GeoJSON) in the
/// mask's CRS; `ogrinfo` reads them back, and their areas add up to the mask's water pixels
/// exactly (GDALPolygonize follows pixel edges). Bad requests are usage or output errors before
/// any work.
@Suite(.serialized) struct VectorOutputTests {
    static let dir = TemporaryDirectory("vector")

    static func command(_ tool: String, _ arguments: [String]) throws -> String {
        let (status, output) = try runCommand("/usr/bin/\(tool)", arguments)
        #expect(status == 0, "\(tool) \(arguments): \(output)")
        return output
    }

    @Test(arguments: ["gpkg", "fgb", "geojson"])
    func polygonAreasAddUpToTheMasksWater(format: String) throws {
        let out = Self.dir.file(format)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let mask = out + "/mask.tif", vector = out + "/water.\(format)"
        let scene = SegmentCommandTests.setup.scene
        let (status, log) = try SegmentCommandTests.segment([SegmentCommandTests.setup.model, scene, mask, "--vector", vector])
        #expect(status == 0, "\(log)")

        let raster = try RasterDataset.open(mask)
        let t = try #require(raster.geoTransform).coefficients
        let pixelArea = abs(t[1] * t[5] - t[2] * t[4])
        let labels = try SegmentCommandTests.pixels(mask)
        let water = labels.filter { $0 == 255 }.count
        #expect(water > 0 && water < labels.count / 2, "the scene's mask should hold some water: \(water)")

        let features = try Self.command("ogrinfo", ["-al", "-geom=NO", "-q", vector])
        func values(_ field: String) -> [Double] {
            features.split(separator: "\n").compactMap { line in
                let parts = line.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces).hasPrefix(field + " (") else { return nil }
                return Double(parts[1].trimmingCharacters(in: .whitespaces))
            }
        }
        let areas = values("area"), classes = values("class")
        #expect(!areas.isEmpty && areas.count == classes.count && classes.allSatisfy { $0 == 255 })
        let total = areas.reduce(0, +)
        #expect(abs(total - Double(water) * pixelArea) <= 1e-9 * total, "\(format): \(total) m² vs \(water) px × \(pixelArea)")
        #expect(log.contains("wrote \(vector): \(areas.count) polygons"), "\(log)")
        // The polygons' CRS is the mask's (and so the scene's).
        let crs = try Self.command("gdalsrsinfo", ["-o", "epsg", vector]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(crs == (try Self.command("gdalsrsinfo", ["-o", "epsg", mask])).trimmingCharacters(in: .whitespacesAndNewlines) && crs.hasPrefix("EPSG:"))
        // Nothing but the two outputs (no scratch GeoPackage, no partial).
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).sorted() == ["mask.tif", "water.\(format)"])
    }

    @Test func badVectorRequestsStopBeforeAnyWork() throws {
        let model = SegmentCommandTests.setup.model, scene = SegmentCommandTests.setup.scene
        let mask = Self.dir.file("refused.tif")
        for (arguments, status, fragment) in [
            (["--vector", Self.dir.file("water.shp")], Int32(64), "must end in .gpkg, .fgb or .geojson"),
            (["--vector", Self.dir.file("water.gpkg"), "--output", "logits"], 64, "cannot go with --output logits"),
            (["--vector", mask.replacingOccurrences(of: ".tif", with: ".geojson"), "--tiling", "vllm"], 0, "polygons"),
            (["--vector", Self.dir.file("no/such/dir/water.gpkg")], 73, "does not exist"),
        ] {
            try? FileManager.default.removeItem(atPath: mask)
            let (got, log) = try SegmentCommandTests.segment([model, scene, mask] + arguments)
            #expect(got == status && log.contains(fragment), "\(arguments): \(got) \(log)")
            #expect(FileManager.default.fileExists(atPath: mask) == (status == 0), "\(arguments)")
        }
        let (same, log) = try SegmentCommandTests.segment([model, scene, Self.dir.file("same.gpkg"), "--vector", Self.dir.file("same.gpkg")])
        #expect(same == 64 && log.contains("must differ from IN and OUT"), "\(log)")
    }
}
