import Foundation
import Geo
import TestSupport
import Testing

/// Band-per-file inputs: HLS S30 and L30 granules (one GeoTIFF per band, plus Fmask and bands the
/// model does not take) made from the 6-band test scene with gdal_translate. A directory, a glob or
/// `--band-file` overrides give exactly the mask of the 6-band GeoTIFF, in-process and under mpirun
/// with workers reading their own tiles; `--cloud-mask Fmask:BITS` makes exactly those pixels nodata.
@Suite(.serialized) struct BandFileTests {
    static let s30 = ["B02", "B03", "B04", "B8A", "B11", "B12"]
    static let l30 = ["B02", "B03", "B04", "B05", "B06", "B07"]

    final class Setup: @unchecked Sendable {
        let dir = TemporaryDirectory("bandfiles")
        let reference: String
        let fmask: [UInt8]
        let width: Int, height: Int

        init() {
            let scene = SegmentCommandTests.setup.scene
            let raster = try! RasterDataset.open(scene)
            width = raster.width; height = raster.height
            for (product, names) in [("S30", BandFileTests.s30), ("L30", BandFileTests.l30)] {
                let folder = dir.file(product)
                try! FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                let stem = folder + "/HLS.\(product).T33TUN.2024100T100000.v2.0."
                for (index, name) in names.enumerated() {
                    let (status, log) = try! runCommand("/usr/bin/gdal_translate", ["-q", "-b", "\(index + 1)", scene, stem + name + ".tif"])
                    precondition(status == 0, log)
                }
                // A band the model does not take, named like one it does not know.
                _ = try! runCommand("/usr/bin/gdal_translate", ["-q", "-b", "1", scene, stem + "B01.tif"])
            }
            // Fmask: cloud (bit 1) in a block, shadow (bit 3) in another, water (bit 5) and
            // snow (bit 4) elsewhere, fill 255 along the right edge.
            let w = width, h = height
            fmask = (0..<(w * h)).map { p in
                let x = p % w, y = p / w
                if x >= w - 12 { return 255 }
                var value: UInt8 = 0
                if (60..<140).contains(x), (50..<120).contains(y) { value |= 1 << 1 }
                if (300..<360).contains(x), (200..<300).contains(y) { value |= 1 << 3 }
                if y % 7 == 0 { value |= 1 << 5 }
                if x % 11 == 0 { value |= 1 << 4 }
                return value
            }
            let mask = try! RasterDataset.create(dir.file("S30/HLS.S30.T33TUN.2024100T100000.v2.0.Fmask.tif"), width: w, height: h, bands: 1, type: .byte)
            if let transform = raster.geoTransform { try! mask.setGeoTransform(transform) }
            if let wkt = raster.projectionWKT { try! mask.setProjection(wkt: wkt) }
            try! mask.setNoDataValue(255, band: 0)
            try! fmask.withUnsafeBufferPointer { try mask.write(band: 0, window: PixelWindow(x: 0, y: 0, width: w, height: h), bytes: $0) }
            try! mask.close()
            reference = dir.file("reference.tif")
            let (status, log) = try! SegmentCommandTests.segment([SegmentCommandTests.setup.model, scene, reference])
            precondition(status == 0, log)
        }
    }
    static let setup = Setup()

    @Test(arguments: [("S30", 0), ("S30", 2), ("L30", 0), ("glob", 0)])
    func granulesGiveTheSixBandScenesMask(product: String, workers: Int) throws {
        let s = Self.setup
        let input = product == "glob" ? s.dir.file("S30") + "/HLS.S30.*.tif" : s.dir.file(product)
        let out = s.dir.file("\(product)-\(workers).tif")
        let (status, log) = try SegmentCommandTests.segment([SegmentCommandTests.setup.model, input, out] + (workers > 0 ? ["--data-path", "worker"] : []), workers: workers)
        #expect(status == 0, "\(log)")
        #expect(log.contains("NIR_NARROW=HLS.\(product == "L30" ? "L30" : "S30").T33TUN.2024100T100000.v2.0.\(product == "L30" ? "B05" : "B8A").tif"), "\(log)")
        #expect(try SegmentCommandTests.pixels(out) == SegmentCommandTests.pixels(s.reference), "\(product): the mask differs from the 6-band scene's")
        let reference = try RasterDataset.open(s.reference), mask = try RasterDataset.open(out)
        #expect(mask.geoTransform == reference.geoTransform && mask.projectionWKT == reference.projectionWKT)
        #expect(!SegmentCommandTests.leftovers(in: s.dir.path).contains { $0.contains("stack") })
        #expect(!((try? FileManager.default.contentsOfDirectory(atPath: s.dir.path)) ?? []).contains { $0.contains(".stack.") })
    }

    @Test func cloudMaskBitsAreNodataExactly() throws {
        let s = Self.setup
        let logits = s.dir.file("clouds.tif"), plain = s.dir.file("plain-logits.tif")
        let model = SegmentCommandTests.setup.model, granule = s.dir.file("S30")
        let fmask = granule + "/HLS.S30.T33TUN.2024100T100000.v2.0.Fmask.tif"
        var (status, log) = try SegmentCommandTests.segment([model, granule, plain, "--output", "logits", "--threads", "1"])
        #expect(status == 0, "\(log)")
        (status, log) = try SegmentCommandTests.segment([model, granule, logits, "--output", "logits", "--threads", "1", "--cloud-mask", fmask + ":1,3"])
        #expect(status == 0, "\(log)")
        let plane = s.width * s.height
        let before = try SegmentCommandTests.pixels(plain), after = try SegmentCommandTests.pixels(logits)
        let expected = (0..<plane).map { p in before[p].isNaN || s.fmask[p] == 255 || s.fmask[p] & 0b1010 != 0 }
        let disagree = (0..<plane).filter { after[$0].isNaN != expected[$0] }.count
        #expect(disagree == 0, "\(disagree) pixels disagree")
        #expect(expected.filter { $0 }.count > before.prefix(plane).filter(\.isNaN).count + 10_000, "the cloud mask hides too little to prove anything")
    }

    @Test func missingOrAmbiguousBandsAreNamed() throws {
        let s = Self.setup
        let model = SegmentCommandTests.setup.model
        let partial = s.dir.file("partial")
        try FileManager.default.createDirectory(atPath: partial, withIntermediateDirectories: true)
        for name in ["B02", "B03", "B04", "B11", "B12"] {
            try? FileManager.default.copyItem(atPath: s.dir.file("S30/HLS.S30.T33TUN.2024100T100000.v2.0.\(name).tif"), toPath: partial + "/\(name).tif")
        }
        let out = s.dir.file("partial.tif")
        var (status, log) = try SegmentCommandTests.segment([model, partial, out])
        #expect(status == 65 && log.contains("no file for the model's band NIR_NARROW (B8A); name it with --band-file NIR_NARROW=FILE"), "\(status) \(log)")
        let nir = s.dir.file("S30/HLS.S30.T33TUN.2024100T100000.v2.0.B8A.tif")
        (status, log) = try SegmentCommandTests.segment([model, partial, out, "--band-file", "NIR_NARROW=\(nir)"])
        #expect(status == 0, "\(log)")
        #expect(try SegmentCommandTests.pixels(out) == SegmentCommandTests.pixels(s.reference))
        try FileManager.default.copyItem(atPath: partial + "/B02.tif", toPath: partial + "/copy.B02.tif")
        (status, log) = try SegmentCommandTests.segment([model, partial, s.dir.file("ambiguous.tif"), "--band-file", "NIR_NARROW=\(nir)"])
        #expect(status == 65 && log.contains("2 files (B02.tif, copy.B02.tif) for the model's band BLUE"), "\(status) \(log)")
        (status, log) = try SegmentCommandTests.segment([model, partial, out, "--cloud-mask", "Fmask.tif"])
        #expect(status == 64 && log.contains("is not FILE:BITS"), "\(status) \(log)")
        (status, log) = try SegmentCommandTests.segment([model, SegmentCommandTests.setup.scene, out, "--band-file", "BLUE=x.tif"])
        #expect(status == 64 && log.contains("a directory or a glob of band files"), "\(status) \(log)")
    }
}
