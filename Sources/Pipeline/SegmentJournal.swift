import Foundation
import Geo

/// The journal of a `segment` run, beside its output: what the run is (input, model, options) and
/// which grid rows of tiles are durably written, one JSON line each, fsynced. After a crash — a
/// worker killed, a node lost, a time limit — `segment --resume` reopens the partial output and
/// continues from the last journaled grid row, giving the same bytes as an uninterrupted run.
/// The journal is locked while a run uses it, so two runs cannot write one output.
public final class SegmentJournal {
    /// Identity of a run: a journal only resumes the run it was written for.
    public struct Header: Codable, Equatable, Sendable {
        /// 2: two-class masks blended from class margins and the 4×4 block-aligned ÷10000
        /// sample; a version-1 journal (earlier builds) cannot be continued bit for bit.
        /// 3: two-class masks spooled eight pixels a byte.
        public var version = 3
        public var input: String
        public var inputBytes: Int64
        public var inputModified: Double
        public var model: String
        public var weightsBytes: Int64
        public var bands: [Int]
        public var tileSize: Int
        public var stride: Int
        public var scale: Double
        public var output: String
        public var batch: Int
        public var width: Int
        public var height: Int

        public init(input: String, inputBytes: Int64, inputModified: Double, model: String, weightsBytes: Int64, bands: [Int],
                    tileSize: Int, stride: Int, scale: Double, output: String, batch: Int, width: Int, height: Int) {
            self.input = input; self.inputBytes = inputBytes; self.inputModified = inputModified; self.model = model
            self.weightsBytes = weightsBytes; self.bands = bands; self.tileSize = tileSize; self.stride = stride; self.scale = scale
            self.output = output; self.batch = batch; self.width = width; self.height = height
        }
    }

    private struct Record: Codable { var gridRow: Int; var rows: Int }

    public let path: String
    public let header: Header
    /// The last grid row whose strip is durably written, nil when none is.
    public private(set) var lastGridRow: Int?
    private let descriptor: Int32

    /// Journal and strip-spool paths for an output: hidden files beside it.
    public static func paths(for output: String) -> (journal: String, partial: String) {
        let url = URL(fileURLWithPath: output)
        let directory = url.deletingLastPathComponent().path
        let name = url.lastPathComponent
        return (directory + "/." + name + ".journal", directory + "/." + name + ".strips")
    }

    /// Starts a new journal (replacing any earlier one).
    public init(creating path: String, header: Header) throws {
        self.path = path
        self.header = header
        descriptor = try Self.openLocked(path, truncate: true)
        var line = try JSONEncoder.sorted.encode(header)
        line.append(0x0A)
        try Self.append(line, to: descriptor, path: path)
    }

    /// Reopens a journal for `--resume`; it must describe the same run.
    public init(resuming path: String, expected: Header) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw SegmentationFailure("nothing to resume: no journal \(path) (the run finished, or never started)", kind: .missingInput)
        }
        self.path = path
        descriptor = try Self.openLocked(path, truncate: false)
        guard let data = FileManager.default.contents(atPath: path) else { throw SegmentationFailure("\(path): unreadable", kind: .missingInput) }
        let lines = data.split(separator: 0x0A)
        guard let first = lines.first, let header = try? JSONDecoder().decode(Header.self, from: Data(first)) else {
            close(descriptor)
            throw SegmentationFailure("\(path) is not a segment journal", kind: .badInput)
        }
        guard header.version == expected.version else {
            close(descriptor)
            throw SegmentationFailure("\(path) was written by another build (journal version \(header.version), this build writes \(expected.version)) and cannot be continued bit for bit; run without --resume to start over", kind: .badInput)
        }
        guard header == expected else {
            close(descriptor)
            throw SegmentationFailure("\(path) records a different run (input, model or options changed); run without --resume to start over", kind: .badInput)
        }
        self.header = header
        // A torn last line (a crash while appending) is ignored: that strip is simply redone.
        for line in lines.dropFirst() {
            guard let record = try? JSONDecoder().decode(Record.self, from: Data(line)) else { continue }
            lastGridRow = max(lastGridRow ?? -1, record.gridRow)
        }
    }

    deinit { close(descriptor) }

    /// Records that the strip ending grid row `gridRow` (rows up to `rows`) is on disk.
    public func record(gridRow: Int, rows: Int) throws {
        var line = try JSONEncoder.sorted.encode(Record(gridRow: gridRow, rows: rows))
        line.append(0x0A)
        try Self.append(line, to: descriptor, path: path)
        lastGridRow = gridRow
    }

    /// The run is complete: the journal goes.
    public func remove() { unlink(path) }

    /// Holds the journal's lock without writing a journal — for runs that cannot resume
    /// (`--tiling vllm`), so that they too never share an output with another run. The lock file
    /// goes when the lock is released, unless a journal was in it already.
    public final class Lock {
        public let path: String
        private var descriptor: Int32
        private let created: Bool

        public init(output: String) throws {
            path = SegmentJournal.paths(for: output).journal
            created = !FileManager.default.fileExists(atPath: path)
            descriptor = try SegmentJournal.openLocked(path, truncate: false)
        }

        public func release() {
            guard descriptor >= 0 else { return }
            var info = stat()
            if created, fstat(descriptor, &info) == 0, info.st_size == 0 { unlink(path) }
            close(descriptor)
            descriptor = -1
        }

        deinit { release() }
    }

    fileprivate static func openLocked(_ path: String, truncate: Bool) throws -> Int32 {
        let descriptor = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw OutputError.writeFailed(path, "cannot open the journal", errorNumber: errno) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw OutputError("\(path) is locked: another segment run is writing the same output")
        }
        if truncate { ftruncate(descriptor, 0) }
        lseek(descriptor, 0, SEEK_END)
        return descriptor
    }

    private static func append(_ data: Data, to descriptor: Int32, path: String) throws {
        let written = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        if written < 0 { throw OutputError.writeFailed(path, "cannot write the journal", errorNumber: errno) }
        if written != data.count { throw OutputError.writeFailed(path, "short write of the journal", errorNumber: nil) }
        if fsync(descriptor) != 0 { throw OutputError.writeFailed(path, "cannot flush the journal", errorNumber: errno) }
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
