import Foundation
import Geo
import TestSupport
import Testing

/// Sentinel-2 products as IN: generated L1C and L2A products (SAFE directory, zip, MTD XML;
/// baseline 05.09 with the −1000 offset and 03.01 without) give bit for bit the logits and the
/// mask of the equivalent 6-band GeoTIFF, built here from the product's JP2 files with plain GDAL
/// reads (10 m bands as they are, 20 m bands repeated 2×2, the listed offset removed), in-process
/// and under mpirun with workers reading the product themselves or the coordinator shipping pixels.
@Suite(.serialized) struct Sentinel2ProductTests {
    static let modelBands = ["B02", "B03", "B04", "B8A", "B11", "B12"]

    final class Setup: @unchecked Sendable {
        let dir = TemporaryDirectory("sentinel2")
        /// Product path by "level-baseline[-zip]".
        var products: [String: String] = [:]
        /// The equivalent GeoTIFF of each level and baseline, and one that keeps the offset.
        var equivalents: [String: String] = [:]
        var withOffset = ""
        var logits: [String: [UInt32]] = [:]

        init() {
            for level in Sentinel2ProductFactory.Level.allCases {
                for baseline in ["05.09", "03.01"] {
                    var spec = Sentinel2ProductFactory.Spec()
                    spec.level = level; spec.baseline = baseline; spec.width = 420; spec.height = 300
                    let key = "\(level.rawValue)-\(baseline)"
                    let folder = dir.file(key)
                    try! FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                    products[key] = try! Sentinel2ProductFactory.create(spec, in: folder)
                    spec.zip = true
                    try! FileManager.default.createDirectory(atPath: folder + "-zip", withIntermediateDirectories: true)
                    products[key + "-zip"] = try! Sentinel2ProductFactory.create(spec, in: folder + "-zip")
                    let offset = Sentinel2ProductFactory.offset(baseline: baseline)
                    equivalents[key] = dir.file("\(key).tif")
                    try! Self.writeEquivalent(of: products[key]!, level: level, removing: offset, to: equivalents[key]!)
                    if offset != 0 && level == .l2a {
                        withOffset = dir.file("\(key)-offset-kept.tif")
                        try! Self.writeEquivalent(of: products[key]!, level: level, removing: 0, to: withOffset)
                    }
                }
            }
        }

        /// The six model bands on the 10 m grid as Int16 DN (nodata 0), from the JP2 files alone.
        static func writeEquivalent(of safe: String, level: Sentinel2ProductFactory.Level, removing offset: Int, to path: String) throws {
            let granules = try FileManager.default.contentsOfDirectory(atPath: safe + "/GRANULE")
            let images = "\(safe)/GRANULE/\(granules[0])/IMG_DATA"
            func jp2(_ band: String, _ resolution: Int) throws -> String {
                let folder = level == .l2a ? "\(images)/R\(resolution)m" : images
                let suffix = level == .l2a ? "_\(band)_\(resolution)m.jp2" : "_\(band).jp2"
                return folder + "/" + (try FileManager.default.contentsOfDirectory(atPath: folder)).first { $0.hasSuffix(suffix) }!
            }
            let fine = try RasterDataset.open(try jp2("B02", 10))
            let width = fine.width, height = fine.height
            let out = try RasterDataset.create(path, width: width, height: height, bands: 6, type: .int16)
            try out.setGeoTransform(fine.geoTransform!)
            try out.setProjection(wkt: fine.projectionWKT!)
            for (index, band) in Sentinel2ProductTests.modelBands.enumerated() {
                let tenMetre = ["B02", "B03", "B04"].contains(band)
                let raster = try RasterDataset.open(try jp2(band, tenMetre ? 10 : 20))
                let values = try raster.read(bands: [0], window: PixelWindow(x: 0, y: 0, width: raster.width, height: raster.height))
                let factor = tenMetre ? 1 : 2
                let plane = (0..<(width * height)).map { p -> Float in
                    let value = values[(p / width / factor) * raster.width + (p % width) / factor]
                    return value == 0 ? 0 : value - Float(offset)
                }
                try plane.withUnsafeBufferPointer { try out.write(band: index, window: PixelWindow(x: 0, y: 0, width: width, height: height), values: $0) }
                try out.setNoDataValue(0, band: index)
            }
            try out.close()
        }
    }
    static let setup = Setup()

    static func bits(_ path: String) throws -> [UInt32] { try SegmentCommandTests.pixels(path).map(\.bitPattern) }

    /// Logits of the equivalent GeoTIFF, computed once per key.
    static func equivalentLogits(_ key: String) throws -> [UInt32] {
        if let known = setup.logits[key] { return known }
        let out = setup.dir.file("\(key)-equivalent-logits.tif")
        let (status, log) = try SegmentCommandTests.segment([SegmentCommandTests.setup.model, setup.equivalents[key]!, out, "--output", "logits"])
        precondition(status == 0, log)
        setup.logits[key] = try bits(out)
        return setup.logits[key]!
    }

    @Test(arguments: ["L2A-05.09", "L2A-03.01", "L1C-05.09-zip", "L1C-03.01-xml", "L2A-05.09-zip"])
    func productsGiveTheEquivalentGeoTIFFsLogits(variant: String) throws {
        let s = Self.setup
        let key = variant.split(separator: "-").prefix(2).joined(separator: "-")
        var input = s.products[variant.hasSuffix("-zip") ? variant : key]!
        if variant.hasSuffix("-xml") { input += "/MTD_MSI\(variant.prefix(3)).xml" }
        let out = s.dir.file("\(variant)-logits.tif")
        let (status, log) = try SegmentCommandTests.segment([SegmentCommandTests.setup.model, input, out, "--output", "logits"])
        #expect(status == 0, "\(log)")
        let offset = key.hasSuffix("05.09") ? "offset -1000 removed" : "no reflectance offset"
        #expect(log.contains("Sentinel-2 Level-\(variant.dropFirst().prefix(2)) baseline \(key.suffix(5)): B2 B3 B4 10 m, B8A B11 B12 20 m on the 10 m grid (420×300, nearest); \(offset)"), "\(log)")
        #expect(try Self.bits(out) == Self.equivalentLogits(key), "\(variant): logits differ from the equivalent GeoTIFF's")
        let mask = try RasterDataset.open(out), reference = try RasterDataset.open(s.equivalents[key]!)
        #expect(mask.geoTransform == reference.geoTransform && mask.width == 420 && mask.height == 300)
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: s.dir.path)).contains { $0.contains(".stack.") })
    }

    @Test func theOffsetMattersAndBaselinesAgree() throws {
        let s = Self.setup
        // The generator stores one scene: with the offset removed, 05.09 and 03.01 are the same raster.
        #expect(try Self.bits(s.equivalents["L2A-05.09"]!) == Self.bits(s.equivalents["L2A-03.01"]!))
        #expect(try Self.bits(s.equivalents["L1C-05.09"]!) == Self.bits(s.equivalents["L2A-05.09"]!))
        let kept = s.dir.file("offset-kept-logits.tif")
        let (status, log) = try SegmentCommandTests.segment([SegmentCommandTests.setup.model, s.withOffset, kept, "--output", "logits"])
        #expect(status == 0, "\(log)")
        #expect(try Self.bits(kept) != Self.equivalentLogits("L2A-05.09"), "keeping the offset changes nothing: the product tests prove nothing")
    }

    /// Workers 0: in-process with the worker-side reader. Tiles go as pixels until a worker has
    /// opened the product, so how many each side read varies; "no worker failed to open it" and
    /// the mask are certain.
    @Test(arguments: [("L2A-05.09-zip", "worker", 0), ("L2A-05.09", "worker", 2), ("L2A-05.09-zip", "worker", 2), ("L1C-05.09", "coordinator", 2)])
    func underMPIWorkersReadTheProductOrGetItsPixels(variant: String, dataPath: String, workers: Int) throws {
        let s = Self.setup
        let key = String(variant.prefix(9))
        let model = SegmentCommandTests.setup.model
        let reference = s.dir.file("\(key)-equivalent-mask.tif"), out = s.dir.file("\(variant)-\(dataPath)-\(workers)-mask.tif")
        var (status, log) = try SegmentCommandTests.segment([model, s.equivalents[key]!, reference, "--threads", "1"])
        #expect(status == 0, "\(log)")
        (status, log) = try SegmentCommandTests.segment([model, s.products[variant]!, out, "--data-path", dataPath], workers: workers)
        #expect(status == 0, "\(log)")
        if dataPath == "coordinator" { #expect(log.contains("; 0 tiles read by the workers"), "\(log)") }
        #expect(!log.contains("cannot read"), "\(log)")
        #expect(try SegmentCommandTests.pixels(out) == SegmentCommandTests.pixels(reference), "\(variant) under mpirun: the mask differs")
    }

    @Test func severalProductsInOneRunAndIncompleteOnesFailAlone() throws {
        let s = Self.setup
        let model = SegmentCommandTests.setup.model
        let broken = s.dir.file("broken")
        try? FileManager.default.removeItem(atPath: broken)
        try FileManager.default.copyItem(atPath: s.dir.file("L2A-03.01"), toPath: broken)
        let safe = try FileManager.default.contentsOfDirectory(atPath: broken)[0]
        let enumerator = FileManager.default.enumerator(atPath: "\(broken)/\(safe)")!
        let b11 = enumerator.compactMap { $0 as? String }.first { $0.hasSuffix("_B11_20m.jp2") }!
        try FileManager.default.removeItem(atPath: "\(broken)/\(safe)/\(b11)")
        let outputs = s.dir.file("masks")
        let (status, log) = try SegmentCommandTests.segment([model, s.products["L2A-05.09"]!, "\(broken)/\(safe)", s.products["L1C-03.01"]! + "/MTD_MSIL1C.xml",
                                                             "--output-dir", outputs])
        #expect(status == 65, "\(log)")
        #expect(log.contains("the band file ") && log.contains("_B11_20m.jp2 of B11 is missing (an incomplete download?)"), "\(log)")
        #expect(log.contains("2 of 3 scene(s) done"), "\(log)")
        let written = try FileManager.default.contentsOfDirectory(atPath: outputs).filter { !$0.hasPrefix(".") }.sorted()
        #expect(written == ["S2B_MSIL1C_20230823T105621_N0301_R008_T30SYJ_20230823T124759.tif", "S2B_MSIL2A_20230823T105621_N0509_R008_T30SYJ_20230823T124759.tif"], "\(written)")
        let reference = s.dir.file("several-reference.tif")
        _ = try SegmentCommandTests.segment([model, s.equivalents["L2A-05.09"]!, reference])
        #expect(try SegmentCommandTests.pixels(outputs + "/" + written[1]) == SegmentCommandTests.pixels(reference))
    }

    @Test func notAProductOrNoSuchBandIsSaid() throws {
        let s = Self.setup
        let model = SegmentCommandTests.setup.model
        let empty = s.dir.file("empty.SAFE")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        var (status, log) = try SegmentCommandTests.segment([model, empty, s.dir.file("o.tif")])
        #expect(status == 65 && log.contains("empty.SAFE: holds no MTD_MSIL1C.xml or MTD_MSIL2A.xml"), "\(status) \(log)")
        (status, log) = try SegmentCommandTests.segment([model, s.products["L2A-05.09"]!, s.dir.file("o.tif"), "--band-file", "BLUE=x.tif"])
        #expect(status == 64 && log.contains("a directory or a glob of band files"), "\(status) \(log)")
        let xml = s.products["L2A-03.01"]! + "/MTD_MSIL2A.xml"
        let garbage = s.dir.file("garbage/S2A_MSIL2A_x.SAFE")
        try FileManager.default.createDirectory(atPath: garbage, withIntermediateDirectories: true)
        try "<not-a-product/>".write(toFile: garbage + "/MTD_MSIL2A.xml", atomically: true, encoding: .utf8)
        (status, log) = try SegmentCommandTests.segment([model, garbage, s.dir.file("o.tif")])
        #expect(status == 65 && log.contains("not a Sentinel-2 product GDAL's SENTINEL2 driver can read"), "\(status) \(log)")
        #expect(Sentinel2Product.isProduct(xml) && Sentinel2Product.isProduct(s.products["L1C-05.09-zip"]!) && !Sentinel2Product.isProduct(s.equivalents["L2A-05.09"]!))
        #expect(!FileManager.default.fileExists(atPath: s.dir.file("o.tif")))
    }
}
