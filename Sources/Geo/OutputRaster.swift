import Foundation
import Support

/// The output cannot be created or written (directory missing or read-only, disk full).
public struct OutputError: Error, CustomStringConvertible {
    public let description: String
    /// The disk or quota is full (the fix is space, not permissions).
    public let outOfSpace: Bool
    public init(_ description: String, outOfSpace: Bool = false) { self.description = description; self.outOfSpace = outOfSpace }

    /// A failed write or flush of `path`: `errorNumber` when a system call said why (read where it
    /// failed — errno is not looked at later), else the file system's free space decides.
    public static func writeFailed(_ path: String, _ what: String, errorNumber: Int32?) -> OutputError {
        let full = errorNumber.map { $0 == ENOSPC || $0 == EDQUOT } ?? fileSystemIsFull(at: path)
        let reason = errorNumber.map { String(cString: strerror($0)) } ?? (full ? "no space left on the device" : nil)
        return OutputError("\(path): \(what)\(reason.map { ": \($0)" } ?? "")", outOfSpace: full)
    }
}

/// The container of an output: a tiled GeoTIFF, or a Cloud Optimized GeoTIFF (GDAL's COG driver:
/// tiles, overviews and the IFDs ahead of the data, so HTTP range readers fetch only what they show).
public enum OutputFormat: String, Sendable, CaseIterable {
    case gtiff, cog
}

/// The output GeoTIFF, written under a temporary name beside its final path and renamed into
/// place only when complete: a reader never sees a half-written file at the final path.
public final class OutputRaster {
    public let finalPath: String
    public let temporaryPath: String
    private var dataset: RasterDataset?
    public let bands: Int
    public let width: Int
    public let height: Int
    public let format: OutputFormat
    /// The file's block size (256² tiles by default; whole-width strips with TILED=NO).
    private let block: (width: Int, height: Int)
    private let type: RasterDataType
    /// One block's values, reused by the unbuffered writes.
    private var blockBuffer: [UInt8] = []
    /// The COG driver's options (the user's creation options go there, not to the strip writer).
    private let cogOptions: [String]

    /// Default GeoTIFF creation options; user options with the same key replace them.
    public static let defaultOptions = ["COMPRESS=LZW", "TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "BIGTIFF=IF_SAFER"]

    /// Creates the output under `temporaryPath` (default: a hidden per-process name beside `path`).
    public init(
        path: String, width: Int, height: Int, bands: Int, type: RasterDataType,
        georeferencing: Georeferencing, nodata: Double, creationOptions: [String] = [],
        format: OutputFormat = .gtiff, temporaryPath: String? = nil
    ) throws {
        let url = URL(fileURLWithPath: path)
        let directory = try Self.checkDirectory(of: path)
        finalPath = path
        self.temporaryPath = temporaryPath ?? directory + "/." + url.lastPathComponent + ".partial-\(getpid()).tif"
        self.bands = bands
        self.width = width
        self.height = height
        self.type = type
        self.format = format
        // Masks' overviews keep class values (nearest); float overviews average.
        let cogDefaults = ["COMPRESS=LZW", "BIGTIFF=IF_SAFER", "OVERVIEWS=AUTO", "RESAMPLING=\(type == .byte ? "NEAREST" : "AVERAGE")"]
        cogOptions = Self.merging(creationOptions, into: cogDefaults)
        let options = format == .cog ? Self.defaultOptions : Self.merging(creationOptions, into: Self.defaultOptions)
        let created: RasterDataset
        do {
            created = try RasterDataset.create(self.temporaryPath, width: width, height: height, bands: bands, type: type, options: options)
        } catch {
            throw OutputError("\(path): \(error)")
        }
        dataset = created
        block = (try? created.blockSize(band: 0)) ?? (width, 1)
        do {
            try created.setGeoreferencing(georeferencing)
            for band in 0..<bands { try created.setNoDataValue(nodata, band: band) }
        } catch {
            discard()
            throw error
        }
    }

    /// `defaults` with the keys `options` set replaced by them.
    static func merging(_ options: [String], into defaults: [String]) -> [String] {
        func key(_ option: String) -> String { option.split(separator: "=", maxSplits: 1).first.map(String.init)?.uppercased() ?? "" }
        let userKeys = Set(options.map(key))
        return defaults.filter { !userKeys.contains(key($0)) } + options
    }

    /// The COG's temporary name, beside the GeoTIFF it is copied from.
    var cogTemporaryPath: String { temporaryPath + ".cog" }

    /// The output's directory, which must exist and be writable.
    public static func checkDirectory(of path: String) throws -> String {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw OutputError("\(path): the output directory \(directory) does not exist")
        }
        guard access(directory, W_OK) == 0 else { throw OutputError("\(path): the output directory \(directory) is not writable") }
        return directory
    }

    /// Writes `rows` rows from `firstRow`: planar floats [bands × rows × width] or mask bytes.
    public func write(firstRow: Int, rows: Int, floats: [Float]?, bytes: [UInt8]?) throws {
        do {
            try writeRows(firstRow: firstRow, rows: rows, floats: floats, bytes: bytes)
        } catch let error as GDALError {
            throw OutputError.writeFailed(temporaryPath, "cannot write rows \(firstRow)…\(firstRow + rows - 1) (\(error))", errorNumber: nil)
        }
    }

    /// Rows per write that `write` passes straight to the driver (whole rows of blocks, about 256).
    public var rowsPerWrite: Int { max(1, 256 / max(block.height, 1)) * max(block.height, 1) }

    private func writeRows(firstRow: Int, rows: Int, floats: [Float]?, bytes: [UInt8]?) throws {
        guard let dataset else { throw GDALError("\(finalPath): output already closed") }
        let window = PixelWindow(x: 0, y: firstRow, width: width, height: rows)
        let wholeBlockRows = firstRow % block.height == 0 && (rows % block.height == 0 || firstRow + rows == height)
        if let bytes, bands == 1, type == .byte, wholeBlockRows, rows > 0, firstRow + rows <= height, bytes.count >= window.pixelCount {
            try writeBlocks(firstRow: firstRow, rows: rows, bytes: bytes, into: dataset)
            return
        }
        if let bytes {
            try bytes.withUnsafeBufferPointer { try dataset.write(band: 0, window: window, bytes: $0) }
        }
        if let floats {
            let plane = rows * width
            try floats.withUnsafeBufferPointer { all in
                for band in 0..<bands {
                    try dataset.write(band: band, window: window, values: UnsafeBufferPointer(rebasing: all[(band * plane)..<((band + 1) * plane)]))
                }
            }
        }
    }

    /// Whole rows of blocks of a one-band byte raster, block by block straight to the driver
    /// (GDALWriteBlock): through RasterIO every block would first be copied into the block
    /// cache, whose fresh pages cost the kernel more than the LZW of the same rows. Edge blocks
    /// are padded with 0 (nodata), as GDAL pads them.
    private func writeBlocks(firstRow: Int, rows: Int, bytes: [UInt8], into dataset: RasterDataset) throws {
        let (bw, bh) = block
        if blockBuffer.count != bw * bh { blockBuffer = [UInt8](repeating: 0, count: bw * bh) }
        let columns = (width + bw - 1) / bw
        try bytes.withUnsafeBufferPointer { source in
            try blockBuffer.withUnsafeMutableBufferPointer { buffer in
                let (source, buffer) = (source.baseAddress!, buffer.baseAddress!)
                for blockRow in stride(from: firstRow, to: firstRow + rows, by: bh) {
                    let rowsHere = min(bh, firstRow + rows - blockRow)
                    for column in 0..<columns {
                        let x = column * bw, widthHere = min(bw, width - x)
                        if widthHere < bw || rowsHere < bh { buffer.update(repeating: 0, count: bw * bh) }
                        for r in 0..<rowsHere {
                            (buffer + r * bw).update(from: source + (blockRow - firstRow + r) * width + x, count: widthHere)
                        }
                        try dataset.writeBlock(band: 0, x: column, y: blockRow / bh, data: UnsafeRawPointer(buffer))
                    }
                }
            }
        }
    }

    /// Flushes, closes and renames the file into place.
    public func commit() throws {
        guard let dataset else { throw GDALError("\(finalPath): output already closed") }
        self.dataset = nil
        do {
            try dataset.close()
        } catch {
            let failure = OutputError.writeFailed(temporaryPath, "cannot flush the output (\(error))", errorNumber: nil)
            unlink(temporaryPath)
            throw failure
        }
        var finished = temporaryPath
        if format == .cog {
            defer { unlink(temporaryPath) }
            do {
                try RasterDataset.open(temporaryPath).copy(to: cogTemporaryPath, driver: "COG", options: cogOptions)
            } catch {
                unlink(cogTemporaryPath)
                throw OutputError.writeFailed(cogTemporaryPath, "cannot write the COG (\(error))", errorNumber: nil)
            }
            finished = cogTemporaryPath
        }
        guard rename(finished, finalPath) == 0 else {
            let number = errno
            unlink(finished)
            throw OutputError("\(finalPath): cannot move the finished output into place: \(String(cString: strerror(number)))")
        }
    }

    /// Abandons the output: nothing appears at the final path.
    public func discard() {
        if let dataset { try? dataset.close() }
        dataset = nil
        unlink(temporaryPath)
        unlink(cogTemporaryPath)
    }

    deinit { if dataset != nil { discard() } }
}
