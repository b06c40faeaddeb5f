import CKernels
import Foundation
import Geo
import TestSupport
import Testing

/// The journaled run's spool (rows bit-packed for two-class masks) and the output's unbuffered
/// block writes, against plain byte rows and GDAL's own RasterIO path.
@Suite struct StripSpoolTests {
    /// A 0/255 mask whose rows differ (pixel (r, c) is set when (r·7 + c·3) % 5 < 2).
    static func mask(rows: Int, width: Int, from firstRow: Int = 0) -> [UInt8] {
        (0..<(rows * width)).map { i in ((firstRow + i / width) * 7 + (i % width) * 3) % 5 < 2 ? 255 : 0 }
    }

    @Test(arguments: [0, 1, 7, 8, 9, 31, 32, 33, 6000, 6003])
    func bitPackingRoundTripsEveryLength(n: Int) {
        let values = Self.mask(rows: 1, width: n)
        // Sentinels after the packed bytes and the unpacked ones catch writes past the end.
        var packed = [UInt8](repeating: 0xA5, count: (n + 7) / 8 + 4)
        var unpacked = [UInt8](repeating: 0x5A, count: n + 9)
        let inexact = values.withUnsafeBufferPointer { v in packed.withUnsafeMutableBufferPointer { ck_pack_mask_bits(v.baseAddress, $0.baseAddress, n) } }
        #expect(inexact == 0)
        for i in 0..<n { #expect((packed[i / 8] >> (i % 8)) & 1 == (values[i] == 255 ? 1 : 0)) }
        if n % 8 != 0 { #expect(packed[n / 8] >> (n % 8) == 0, "unused bits of the last byte are 0") }
        #expect(packed[((n + 7) / 8)...].allSatisfy { $0 == 0xA5 })
        packed.withUnsafeBufferPointer { p in unpacked.withUnsafeMutableBufferPointer { ck_unpack_mask_bits(p.baseAddress, $0.baseAddress, n) } }
        #expect(Array(unpacked[..<n]) == values)
        #expect(unpacked[n...].allSatisfy { $0 == 0x5A })
    }

    @Test func packingCountsValuesThatAreNeitherZeroNor255() {
        let values: [UInt8] = [0, 255, 3, 255, 0, 0, 0, 128, 1, 0, 0, 0, 0, 0, 0, 0, 254]
        var packed = [UInt8](repeating: 0, count: 3)
        let inexact = values.withUnsafeBufferPointer { v in packed.withUnsafeMutableBufferPointer { ck_pack_mask_bits(v.baseAddress, $0.baseAddress, 17) } }
        #expect(inexact == 4)
    }

    @Test func bitsSpoolHoldsAnEighthAndResumesAtARow() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("spool")
        let width = 61
        var spool: StripSpool? = try StripSpool(path: path, width: width, encoding: .bits, keepingRows: 0)
        try spool!.append(firstRow: 0, count: 5, floats: nil, bytes: Self.mask(rows: 5, width: width))
        try spool!.append(firstRow: 5, count: 4, floats: nil, bytes: Self.mask(rows: 4, width: width, from: 5))
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == 9 * 8)
        spool = nil
        // A resumed run keeps 5 rows and appends the rest again.
        let resumed = try StripSpool(path: path, width: width, encoding: .bits, keepingRows: 5)
        #expect(resumed.rows == 5)
        try resumed.append(firstRow: 5, count: 6, floats: nil, bytes: Self.mask(rows: 6, width: width, from: 5))
        let output = try OutputRaster(path: dir.file("mask.tif"), width: width, height: 11, bands: 1, type: .byte,
                                      georeferencing: Georeferencing(), nodata: 0)
        try resumed.copy(into: output, chunkRows: 4)
        try output.commit()
        let read = try RasterDataset.open(dir.file("mask.tif")).read(bands: [0], window: PixelWindow(x: 0, y: 0, width: width, height: 11))
        #expect(read.map { UInt8($0) } == Self.mask(rows: 11, width: width))
    }

    @Test func bitsSpoolRefusesAMaskThatIsNotTwoValued() throws {
        let dir = TemporaryDirectory()
        let spool = try StripSpool(path: dir.file("spool"), width: 4, encoding: .bits, keepingRows: 0)
        #expect(throws: OutputError.self) { try spool.append(firstRow: 0, count: 1, floats: nil, bytes: [0, 255, 2, 255]) }
        #expect(spool.rows == 0)
    }

    /// Block-aligned rows go to the driver block by block; the file must hold what RasterIO
    /// writes, for tiles with partial edge blocks and for strips.
    @Test(arguments: [["TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16"], ["TILED=NO", "BLOCKYSIZE=3"], []])
    func blockWritesEqualRasterIO(options: [String]) throws {
        let dir = TemporaryDirectory()
        let (width, height) = (37, 41)
        let values = Self.mask(rows: height, width: width)
        for (name, direct) in [("blocks.tif", true), ("rasterio.tif", false)] {
            let output = try OutputRaster(path: dir.file(name), width: width, height: height, bands: 1, type: .byte,
                                          georeferencing: Georeferencing(), nodata: 0, creationOptions: options)
            // rowsPerWrite rows at a time are whole block rows; odd row counts go through RasterIO.
            var row = 0
            let step = direct ? output.rowsPerWrite : 5
            while row < height {
                let rows = min(step, height - row)
                try output.write(firstRow: row, rows: rows, floats: nil, bytes: Array(values[(row * width)..<((row + rows) * width)]))
                row += rows
            }
            try output.commit()
        }
        let window = PixelWindow(x: 0, y: 0, width: width, height: height)
        let blocks = try RasterDataset.open(dir.file("blocks.tif")).read(bands: [0], window: window)
        #expect(blocks == (try RasterDataset.open(dir.file("rasterio.tif")).read(bands: [0], window: window)))
        #expect(blocks.map { UInt8($0) } == values)
    }
}
