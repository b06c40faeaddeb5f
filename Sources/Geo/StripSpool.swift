import CKernels
import Foundation

/// Finished rows of a journaled `segment` run, appended to a raw file beside the output and
/// fsynced strip by strip; the GeoTIFF (tiled, compressed) is written from it once at the end.
/// A compressed GeoTIFF cannot be reopened safely after a crash (blocks rewritten in place with
/// a directory not yet updated), a raw append-only file can: `--resume` truncates it to the last
/// journaled row and appends again.
///
/// Layout: rows in order, each row of whole bytes (see `Encoding`).
public final class StripSpool {
    /// How a row is stored.
    public enum Encoding: Equatable, Sendable {
        /// float32, band-interleaved (band 0's row, band 1's row, …).
        case floats(bands: Int)
        /// One uint8 per pixel (masks of more than two classes).
        case bytes
        /// Two-class masks (every value 0 or 255), eight pixels a byte: pixel x in bit x % 8 of
        /// byte x / 8. An eighth of the bytes: on a virtual machine the page-cache writes of a
        /// byte-per-pixel spool cost the coordinator as much as blending the tiles.
        case bits

        public var bands: Int { if case .floats(let bands) = self { bands } else { 1 } }
    }

    public let path: String
    public let width: Int
    public let encoding: Encoding
    private let descriptor: Int32
    public private(set) var rows: Int

    public let rowBytes: Int

    /// Opens (creating or keeping) the spool, truncated to `rows` rows.
    public init(path: String, width: Int, encoding: Encoding, keepingRows rows: Int) throws {
        self.path = path
        self.width = width
        self.encoding = encoding
        switch encoding {
        case .floats(let bands): rowBytes = width * bands * 4
        case .bytes: rowBytes = width
        case .bits: rowBytes = (width + 7) / 8
        }
        let rowBytes = self.rowBytes
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw OutputError.writeFailed(path, "cannot open", errorNumber: errno) }
        let size = lseek(descriptor, 0, SEEK_END)
        let wanted = off_t(rows) * off_t(rowBytes)
        guard size >= wanted else {
            close(descriptor)
            throw OutputError("cannot resume: \(path) holds \(size) bytes, the journal records \(wanted)")
        }
        guard ftruncate(descriptor, wanted) == 0, lseek(descriptor, wanted, SEEK_SET) == wanted else {
            let number = errno  // before close() can change it
            close(descriptor)
            throw OutputError.writeFailed(path, "cannot truncate", errorNumber: number)
        }
        self.rows = rows
    }

    deinit { close(descriptor) }

    /// Appends rows (starting at row `self.rows`) from planar floats [bands × count × width] or
    /// mask bytes [count × width], then fsyncs.
    public func append(firstRow: Int, count: Int, floats: [Float]?, bytes: [UInt8]?) throws {
        guard firstRow == rows else { throw OutputError("\(path): rows \(firstRow)… arrive after \(rows) rows") }
        let length = count * rowBytes
        switch (encoding, bytes, floats) {
        case (.bytes, let bytes?, _):
            guard bytes.count >= count * width else { throw OutputError("\(path): \(bytes.count) mask bytes for \(count) rows") }
            try bytes.withUnsafeBytes { try write($0, count: length) }
        case (.bits, let bytes?, _):
            guard bytes.count >= count * width else { throw OutputError("\(path): \(bytes.count) mask bytes for \(count) rows") }
            if packed.count < length { packed = [UInt8](repeating: 0, count: length) }
            let inexact = bytes.withUnsafeBufferPointer { mask in
                packed.withUnsafeMutableBufferPointer { out in
                    (0..<count).reduce(0) { sum, row in
                        sum + ck_pack_mask_bits(mask.baseAddress! + row * width, out.baseAddress! + row * rowBytes, width)
                    }
                }
            }
            guard inexact == 0 else { throw OutputError("\(path): \(inexact) mask values of rows \(firstRow)… are neither 0 nor 255") }
            try packed.withUnsafeBytes { try write($0, count: length) }
        case (.floats(let bands), _, let floats?):
            guard floats.count >= bands * count * width else {
                throw OutputError("\(path): \(floats.count) floats for \(count) rows of \(bands) band(s)")
            }
            if bands == 1 {
                try floats.withUnsafeBytes { try write($0, count: length) }
            } else {
                // Planar → band-interleaved rows.
                var data = [UInt8](repeating: 0, count: length)
                let plane = count * width
                data.withUnsafeMutableBytes { out in
                    floats.withUnsafeBytes { src in
                        for row in 0..<count {
                            for band in 0..<bands {
                                (out.baseAddress! + (row * bands + band) * width * 4).copyMemory(
                                    from: src.baseAddress! + (band * plane + row * width) * 4, byteCount: width * 4)
                            }
                        }
                    }
                }
                try data.withUnsafeBytes { try write($0, count: length) }
            }
        default:
            throw OutputError("\(path): rows \(firstRow)… come without values of the spool's type")
        }
        rows += count
    }

    /// The packed rows of the last `.bits` append, kept for the next one.
    private var packed: [UInt8] = []

    /// Writes the first `count` bytes of `data` at the end and fsyncs.
    private func write(_ data: UnsafeRawBufferPointer, count: Int) throws {
        let written = Foundation.write(descriptor, data.baseAddress, count)
        // errno means something only when the call returned -1 (a short write sets none).
        if written < 0 { throw OutputError.writeFailed(path, "cannot write", errorNumber: errno) }
        if written != count { throw OutputError.writeFailed(path, "short write (\(written) of \(count) bytes)", errorNumber: nil) }
        if fsync(descriptor) != 0 { throw OutputError.writeFailed(path, "cannot flush", errorNumber: errno) }
    }

    /// Copies every row into `output`, `chunkRows` rows at a time (bounded memory; by default
    /// whole rows of the output's blocks, which it writes without its block cache).
    public func copy(into output: OutputRaster, chunkRows: Int? = nil) throws {
        let chunkRows = chunkRows ?? output.rowsPerWrite
        let bands = encoding.bands
        var data = [UInt8](repeating: 0, count: min(chunkRows, max(rows, 1)) * rowBytes)
        var mask = encoding == .bits ? [UInt8](repeating: 0, count: min(chunkRows, max(rows, 1)) * width) : []
        var row = 0
        while row < rows {
            let count = min(chunkRows, rows - row)
            let wanted = count * rowBytes
            let read = data.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, wanted, off_t(row) * off_t(rowBytes)) }
            guard read == wanted else { throw OutputError("\(path): short read at row \(row)") }
            switch encoding {
            case .bytes:
                try output.write(firstRow: row, rows: count, floats: nil, bytes: data)
            case .bits:
                data.withUnsafeBufferPointer { packed in
                    mask.withUnsafeMutableBufferPointer { out in
                        for r in 0..<count {
                            ck_unpack_mask_bits(packed.baseAddress! + r * rowBytes, out.baseAddress! + r * width, width)
                        }
                    }
                }
                try output.write(firstRow: row, rows: count, floats: nil, bytes: mask)
            case .floats:
                let plane = count * width
                var floats = [Float](repeating: 0, count: bands * plane)
                data.withUnsafeBytes { src in
                    floats.withUnsafeMutableBytes { dst in
                        for r in 0..<count {
                            for band in 0..<bands {
                                (dst.baseAddress! + (band * plane + r * width) * 4).copyMemory(
                                    from: src.baseAddress! + (r * bands + band) * width * 4, byteCount: width * 4)
                            }
                        }
                    }
                }
                try output.write(firstRow: row, rows: count, floats: floats, bytes: nil)
            }
            row += count
        }
    }

    public func remove() { unlink(path) }
}
