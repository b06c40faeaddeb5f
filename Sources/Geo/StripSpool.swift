import Foundation

/// Finished rows of a journaled `segment` run, appended to a raw file beside the output and
/// fsynced strip by strip; the GeoTIFF (tiled, compressed) is written from it once at the end.
/// A compressed GeoTIFF cannot be reopened safely after a crash (blocks rewritten in place with
/// a directory not yet updated), a raw append-only file can: `--resume` truncates it to the last
/// journaled row and appends again.
///
/// Layout: rows in order, each row band-interleaved (band 0's row, band 1's row, …), values as
/// uint8 (masks) or float32.
public final class StripSpool {
    public let path: String
    public let width: Int
    public let bands: Int
    public let bytesPerValue: Int
    private let descriptor: Int32
    public private(set) var rows: Int

    public var rowBytes: Int { width * bands * bytesPerValue }

    /// Opens (creating or keeping) the spool, truncated to `rows` rows.
    public init(path: String, width: Int, bands: Int, bytesPerValue: Int, keepingRows rows: Int) throws {
        self.path = path
        self.width = width
        self.bands = bands
        self.bytesPerValue = bytesPerValue
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw OutputError.writeFailed(path, "cannot open", errorNumber: errno) }
        let size = lseek(descriptor, 0, SEEK_END)
        let wanted = off_t(rows) * off_t(width * bands * bytesPerValue)
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
        if let bytes {
            // Masks: one band of bytes, already the spool's layout.
            guard bands == 1, bytesPerValue == 1, bytes.count >= length else {
                throw OutputError("\(path): \(bytes.count) mask bytes for \(count) rows of \(bands) band(s)")
            }
            try bytes.withUnsafeBytes { try write($0, count: length) }
        } else if let floats {
            guard bytesPerValue == 4, floats.count >= bands * count * width else {
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
        } else {
            throw OutputError("\(path): rows \(firstRow)… come without values")
        }
        rows += count
    }

    /// Writes the first `count` bytes of `data` at the end and fsyncs.
    private func write(_ data: UnsafeRawBufferPointer, count: Int) throws {
        let written = Foundation.write(descriptor, data.baseAddress, count)
        // errno means something only when the call returned -1 (a short write sets none).
        if written < 0 { throw OutputError.writeFailed(path, "cannot write", errorNumber: errno) }
        if written != count { throw OutputError.writeFailed(path, "short write (\(written) of \(count) bytes)", errorNumber: nil) }
        if fsync(descriptor) != 0 { throw OutputError.writeFailed(path, "cannot flush", errorNumber: errno) }
    }

    /// Copies every row into `output`, `chunkRows` rows at a time (bounded memory).
    public func copy(into output: OutputRaster, chunkRows: Int = 256) throws {
        var row = 0
        while row < rows {
            let count = min(chunkRows, rows - row)
            var data = [UInt8](repeating: 0, count: count * rowBytes)
            let read = data.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, off_t(row) * off_t(rowBytes)) }
            guard read == data.count else { throw OutputError("\(path): short read at row \(row)") }
            if bytesPerValue == 1 && bands == 1 {
                try output.write(firstRow: row, rows: count, floats: nil, bytes: data)
            } else {
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
