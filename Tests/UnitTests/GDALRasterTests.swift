import Foundation
import Geo
import Model
import Pipeline
import TestSupport
import Testing

@Suite struct GDALRasterTests {
    static let transform = GeoTransform([399_960, 10, 0, 4_500_000, 0, -10])

    /// Writes a 3-band Int16 GeoTIFF in UTM 33N whose pixel (b, r, c) is b·1000 + r·10 + c.
    static func writeSample(_ path: String, width: Int = 37, height: Int = 23) throws {
        let raster = try RasterDataset.create(path, width: width, height: height, bands: 3, type: .int16,
                                              options: ["COMPRESS=LZW", "TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16"])
        try raster.setGeoTransform(transform)
        try raster.setProjection(wkt: try wktForEPSG(32633))
        for band in 0..<3 {
            try raster.setNoDataValue(-9999, band: band)
            // Two windows, to exercise windowed writes.
            for (y, rows) in [(0, 10), (10, height - 10)] {
                let values = (0..<(rows * width)).map { i in Float(band * 1000 + (y + i / width) * 10 + i % width) }
                try values.withUnsafeBufferPointer {
                    try raster.write(band: band, window: PixelWindow(x: 0, y: y, width: width, height: rows), values: $0)
                }
            }
        }
        try raster.close()
    }

    @Test func roundTripKeepsPixelsCRSAndGeotransform() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("sample.tif")
        try Self.writeSample(path)
        let raster = try RasterDataset.open(path)
        #expect(raster.width == 37 && raster.height == 23 && raster.bandCount == 3)
        #expect(try raster.dataType(band: 0) == .int16)
        #expect(raster.geoTransform == Self.transform)
        #expect(raster.projectionWKT?.contains("UTM zone 33N") == true)
        #expect(try raster.noDataValue(band: 2) == -9999)
        // Bands 2 and 0, in that order, from an unaligned window.
        let window = PixelWindow(x: 5, y: 7, width: 4, height: 3)
        let values = try raster.read(bands: [2, 0], window: window)
        #expect(values.count == 24)
        #expect(values[0] == 2000 + 7 * 10 + 5)
        #expect(values[11] == 2000 + 9 * 10 + 8)
        #expect(values[12] == 0 + 7 * 10 + 5)
    }

    @Test func gdalinfoSeesTheSameGeoreferencing() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("sample.tif")
        try Self.writeSample(path)
        let (status, output) = try runCommand("/usr/bin/gdalinfo", ["-json", path])
        #expect(status == 0)
        let info = try JSONSerialization.jsonObject(with: Data(output.utf8)) as! [String: Any]
        let gt = info["geoTransform"] as! [Double]
        #expect(gt == Self.transform.coefficients)
        let wkt = (info["coordinateSystem"] as! [String: Any])["wkt"] as! String
        #expect(wkt.contains("ID[\"EPSG\",32633]"))
        let metadata = info["metadata"] as? [String: Any]
        let structure = metadata?["IMAGE_STRUCTURE"] as? [String: String]
        #expect(structure?["COMPRESSION"] == "LZW")
    }

    @Test func centreLonLatIsInWGS84() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("sample.tif")
        try Self.writeSample(path)
        let centre = try #require(try RasterDataset.open(path).centreLonLat())
        // UTM 33N easting ~400 km, northing 4500 km: about 13.8° E, 40.6° N.
        #expect(abs(centre.lon - 13.82) < 0.05)
        #expect(abs(centre.lat - 40.65) < 0.05)
    }

    @Test func badInputsAreClearErrors() throws {
        let dir = TemporaryDirectory()
        let missing = #expect(throws: GDALError.self) { try RasterDataset.open(dir.file("nope.tif")) }
        #expect(missing?.description.contains("no such file") == true)

        let text = dir.file("notes.tif")
        try "not a raster".write(toFile: text, atomically: true, encoding: .utf8)
        let notRaster = #expect(throws: GDALError.self) { try RasterDataset.open(text) }
        #expect(notRaster?.description.contains("not a raster") == true)

        let path = dir.file("sample.tif")
        try Self.writeSample(path)
        let raster = try RasterDataset.open(path)
        let band = #expect(throws: GDALError.self) { try raster.read(bands: [3], window: PixelWindow(x: 0, y: 0, width: 1, height: 1)) }
        #expect(band?.description.contains("band index 3 out of range") == true)
        #expect(throws: GDALError.self) { try raster.read(bands: [0], window: PixelWindow(x: 30, y: 0, width: 8, height: 1)) }
        #expect(throws: GDALError.self) {
            try RasterDataset.create(dir.file("no/such/dir/x.tif"), width: 2, height: 2, bands: 1, type: .byte)
        }
        #expect(throws: GDALError.self) { try RasterDataset.create(dir.file("x.tif"), width: 0, height: 2, bands: 1, type: .byte) }
        #expect(throws: GDALError.self) {
            try RasterDataset.create(dir.file("y.tif"), width: 2, height: 2, bands: 1, type: .byte, options: ["COMPRESS"])
        }
    }

    @Test func rasterWithoutGeoreferencingReportsNone() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("plain.tif")
        let raster = try RasterDataset.create(path, width: 4, height: 4, bands: 1, type: .byte)
        let bytes = [UInt8](repeating: 7, count: 16)
        try bytes.withUnsafeBufferPointer { try raster.write(band: 0, window: PixelWindow(x: 0, y: 0, width: 4, height: 4), bytes: $0) }
        try raster.close()
        let reopened = try RasterDataset.open(path)
        #expect(reopened.geoTransform == nil)
        #expect(reopened.projectionWKT == nil)
        #expect(try reopened.centreLonLat() == nil)
        #expect(try reopened.read(bands: [0], window: PixelWindow(x: 1, y: 1, width: 2, height: 2)) == [7, 7, 7, 7])
    }
    /// A VRT naming `source`'s bands (it could as well name any file the process can read).
    static func vrt(of source: String, width: Int, height: Int, bands: Int) -> String {
        "<VRTDataset rasterXSize=\"\(width)\" rasterYSize=\"\(height)\">" + (1...bands).map { band in
            "<VRTRasterBand dataType=\"Float32\" band=\"\(band)\"><SimpleSource><SourceFilename relativeToVRT=\"0\">\(source)</SourceFilename><SourceBand>\(band)</SourceBand></SimpleSource></VRTRasterBand>"
        }.joined() + "</VRTDataset>"
    }

    @Test func allowedDriversRefuseOtherFormatsAndVirtualPaths() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("sample.tif")
        try Self.writeSample(path)
        #expect(try RasterDataset.open(path, allowedDrivers: ["GTiff"]).bandCount == 3)
        // A COG is a GeoTIFF.
        let (status, output) = try runCommand("/usr/bin/gdal_translate", ["-q", "-of", "COG", path, dir.file("cog.tif")])
        #expect(status == 0, "\(output)")
        #expect(try RasterDataset.open(dir.file("cog.tif"), allowedDrivers: ["GTiff"]).bandCount == 3)
        // A VRT opens with any driver, not with GTiff only, whatever its name.
        try Self.vrt(of: path, width: 37, height: 23, bands: 3).write(toFile: dir.file("indirect.tif"), atomically: true, encoding: .utf8)
        #expect(try RasterDataset.open(dir.file("indirect.tif")).bandCount == 3)
        let refused = #expect(throws: GDALError.self) { try RasterDataset.open(dir.file("indirect.tif"), allowedDrivers: ["GTiff"]) }
        #expect(refused?.description.contains("with the GTiff driver") == true, "\(refused.map { "\($0)" } ?? "")")
        // GDAL's virtual paths, even to a GeoTIFF.
        let memory = "/vsimem/allowed-drivers-\(UUID().uuidString).tif"
        try RasterDataset.create(memory, width: 2, height: 2, bands: 1, type: .byte).close()
        #expect(try RasterDataset.open(memory).width == 2)
        let virtual = #expect(throws: GDALError.self) { try RasterDataset.open(memory, allowedDrivers: ["GTiff"]) }
        #expect(virtual?.description.contains("GDAL virtual file system") == true)
        #expect(throws: GDALError.self) { try RasterDataset.open(path, allowedDrivers: []) }
    }

    /// The jobs the engine creates open their input with SegmentOptions.allowedDrivers.
    @Test func jobsOpenTheirInputWithTheAllowedDrivers() throws {
        let dir = TemporaryDirectory()
        var spec = SceneFactory.Spec()
        spec.width = 240; spec.height = 230
        try SceneFactory.create(spec, at: dir.file("scene.tif"))
        try Self.vrt(of: dir.file("scene.tif"), width: 240, height: 230, bands: 6).write(toFile: dir.file("indirect.tif"), atomically: true, encoding: .utf8)
        let config = try ModelConfig.load(directory: repositoryRoot + "/Tests/Fixtures/parity/tiny_tl")
        for tiling in [TilingMode.overlap, .vllm] {
            var options = SegmentOptions()
            options.tiling = tiling
            _ = try makeTilingJob(id: 1, input: dir.file("indirect.tif"), output: dir.file("any-\(tiling).tif"), config: config, options: options)
            options.allowedDrivers = ["GTiff"]
            let error = #expect(throws: GDALError.self, "\(tiling)") {
                try makeTilingJob(id: 2, input: dir.file("indirect.tif"), output: dir.file("gtiff-\(tiling).tif"), config: config, options: options)
            }
            #expect(error?.description.contains("with the GTiff driver") == true)
            _ = try makeTilingJob(id: 3, input: dir.file("scene.tif"), output: dir.file("scene-\(tiling).tif"), config: config, options: options)
        }
    }
}
