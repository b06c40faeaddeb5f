import Foundation
import Geo
import TestSupport
import Testing

/// GDAL validity masks count as nodata: an internal mask, a `.msk` sidecar and an alpha band each
/// give NaN logits and 0 in the mask exactly where GDAL's mask is 0 — in-process, and under mpirun
/// with workers reading their own tiles (so they find the masks themselves).
@Suite(.serialized) struct RasterMaskTests {
    static let width = 520, height = 430

    final class Setup: @unchecked Sendable {
        let dir = TemporaryDirectory("masks")
        let valid: [UInt8]
        var base: String { dir.file("base.tif") }

        init() {
            var spec = SceneFactory.Spec()
            spec.width = RasterMaskTests.width; spec.height = RasterMaskTests.height
            try! SceneFactory.create(spec, at: dir.file("base.tif"))
            // A masked-out disc, a band along the bottom, and scattered pixels.
            var random = SeededRandom(seed: 7)
            valid = (0..<(RasterMaskTests.width * RasterMaskTests.height)).map { p in
                let x = p % RasterMaskTests.width, y = p / RasterMaskTests.width
                let dx = Double(x - 150), dy = Double(y - 140)
                if dx * dx + dy * dy < 60 * 60 || y >= RasterMaskTests.height - 40 { return 0 }
                return Int.random(in: 0..<50, using: &random) == 0 ? 0 : 255
            }
        }

        /// The base scene copied with its georeferencing, plus `extraBands` more bands.
        func copy(to path: String, extraBands: Int = 0, options: [String] = []) throws -> RasterDataset {
            let source = try RasterDataset.open(base)
            let window = PixelWindow(x: 0, y: 0, width: source.width, height: source.height)
            let copy = try RasterDataset.create(path, width: source.width, height: source.height, bands: source.bandCount + extraBands,
                                                type: .int16, options: ["TILED=YES", "COMPRESS=DEFLATE"] + options)
            if let transform = source.geoTransform { try copy.setGeoTransform(transform) }
            if let wkt = source.projectionWKT { try copy.setProjection(wkt: wkt) }
            for band in 0..<source.bandCount {
                let values = try source.read(bands: [band], window: window)
                try values.withUnsafeBufferPointer { try copy.write(band: band, window: window, values: $0) }
            }
            return copy
        }
    }
    static let setup = Setup()

    static func maskedScene(_ kind: String) throws -> String {
        let s = setup
        let path = s.dir.file("\(kind).tif")
        if FileManager.default.fileExists(atPath: path) { return path }
        switch kind {
        case "internal", "sidecar":
            let raster = try s.copy(to: path)
            try raster.writeDatasetMask(s.valid, inside: kind == "internal")
            try raster.close()
            #expect(FileManager.default.fileExists(atPath: path + ".msk") == (kind == "sidecar"))
        default:  // alpha: a seventh band (TIFF ExtraSamples = alpha)
            let raster = try s.copy(to: path, extraBands: 1, options: ["ALPHA=UNASSOCIATED"])
            let alpha = s.valid.map(Float.init)
            try alpha.withUnsafeBufferPointer {
                try raster.write(band: 6, window: PixelWindow(x: 0, y: 0, width: width, height: height), values: $0)
            }
            try raster.setAlpha(band: 6)
            try raster.close()
        }
        return path
    }

    @Test(arguments: ["internal", "sidecar", "alpha"])
    func maskedPixelsAreNodataExactlyWhereGDALsMaskIsZero(kind: String) throws {
        let s = Self.setup
        let scene = try Self.maskedScene(kind)
        let model = SegmentCommandTests.setup.model
        let logits = s.dir.file("\(kind)-logits.tif"), mask = s.dir.file("\(kind)-mask.tif")
        let (status, output) = try SegmentCommandTests.segment([model, scene, logits, "--output", "logits", "--threads", "1"])
        #expect(status == 0, "\(output)")
        let values = try SegmentCommandTests.pixels(logits)
        let plane = Self.width * Self.height
        let nan = (0..<plane).map { values[$0].isNaN }
        let masked = s.valid.map { $0 == 0 }
        let disagree = zip(nan, masked).filter { $0 != $1 }.count
        #expect(disagree == 0, "\(kind): \(disagree) pixels disagree; NaN \(nan.filter { $0 }.count), masked \(masked.filter { $0 }.count)")
        // The mask output, under mpirun with the workers reading (and masking) their own tiles.
        let (maskStatus, maskOutput) = try SegmentCommandTests.segment([model, scene, mask, "--data-path", "worker"], workers: 2)
        #expect(maskStatus == 0, "\(maskOutput)")
        let labels = try SegmentCommandTests.pixels(mask)
        #expect(zip(labels, masked).allSatisfy { !$1 || $0 == 0 }, "\(kind): a masked pixel was labelled water")
        // Unmasked, the same scene labels some of those pixels water: the mask is what hides them.
        let plain = s.dir.file("plain-mask.tif")
        if !FileManager.default.fileExists(atPath: plain) {
            let (plainStatus, plainOutput) = try SegmentCommandTests.segment([model, s.base, plain, "--threads", "1"])
            #expect(plainStatus == 0, "\(plainOutput)")
        }
        let unmasked = try SegmentCommandTests.pixels(plain)
        #expect(zip(unmasked, masked).contains { $1 && $0 != 0 }, "the test's mask hides no water; it proves nothing")
    }
}
