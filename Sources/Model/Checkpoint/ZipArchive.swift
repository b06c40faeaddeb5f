import Foundation

/// One file of a zip archive, as described by the central directory.
public struct ZipEntry: Sendable, Equatable {
    public let name: String
    /// 0 = stored (uncompressed), 8 = deflate, ...
    public let method: UInt16
    /// General-purpose flags (bit 0: encrypted).
    public let flags: UInt16
    public let compressedSize: Int
    public let uncompressedSize: Int
    /// Offset of the entry's local file header.
    public let localHeaderOffset: Int
}

/// A minimal read-only zip reader over a memory-mapped file, enough for `torch.save` archives.
///
/// Layout of a zip file (APPNOTE.TXT), read from the end:
///
///     [local header + data] ... [central directory] [ZIP64 end record] [ZIP64 locator] [end record]
///
/// The end-of-central-directory record (EOCD, 22 bytes + comment) is found by scanning backwards; when a
/// ZIP64 locator sits right before it, the ZIP64 end record supplies the 64-bit entry count, directory
/// size and offset (torch always writes these). Each central-directory entry may carry a ZIP64 "extended
/// information" extra field (id 0x0001) holding the 64-bit sizes/offset whose 32-bit fields are 0xFFFFFFFF.
/// An entry's data starts after its *local* header, whose name/extra lengths can differ from the central
/// directory's: torch pads the local extra field so that tensor data is 64-byte aligned.
///
/// Only STORED entries can be read: torch never compresses, and compressed data could not be memory-mapped.
public final class ZipArchive: @unchecked Sendable {
    public let file: MappedFile
    /// Entries in central-directory order.
    public let entries: [ZipEntry]
    private let index: [String: Int]

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        let bytes = file.bytes
        let path = file.path
        func fail(_ message: String) -> CheckpointError { CheckpointError(file: path, message) }

        // 1. End-of-central-directory record: signature PK\5\6, then at most a 65535-byte comment.
        let eocdSize = 22
        var eocd: Int? = nil
        if bytes.count >= eocdSize {
            let lowest = max(0, bytes.count - eocdSize - 0xFFFF)
            var position = bytes.count - eocdSize
            while position >= lowest {
                if zipLE32(bytes, position) == 0x0605_4B50, let commentLength = zipLE16(bytes, position + 20),
                   position + eocdSize + commentLength <= bytes.count {
                    eocd = position
                    break
                }
                position -= 1
            }
        }
        guard let eocd else {
            let startsLikeZip = zipLE32(bytes, 0) == 0x0403_4B50
            if startsLikeZip {
                throw fail("truncated zip archive: no end-of-central-directory record (the file was cut off)")
            }
            if bytes.count >= 2, bytes[0] == 0x80, bytes[1] <= 5 {
                throw fail("not a zip archive: looks like a legacy (pre-1.6, non-zip) torch.save pickle, which is not supported; re-save it with a current torch")
            }
            throw fail("not a zip archive (no end-of-central-directory record)")
        }
        guard let diskNumber = zipLE16(bytes, eocd + 4), let cdDisk = zipLE16(bytes, eocd + 6),
              let count16 = zipLE16(bytes, eocd + 10), let cdSize32 = zipLE32(bytes, eocd + 12),
              let cdOffset32 = zipLE32(bytes, eocd + 16) else {
            throw fail("truncated zip archive: end-of-central-directory record is cut off")
        }
        var entryCount = count16
        var cdSize = cdSize32
        var cdOffset = cdOffset32
        var cdLimit = eocd  // the central directory must end before the records that follow it

        // 2. ZIP64: a 20-byte locator (PK\6\7) immediately before the EOCD points at the ZIP64 end record (PK\6\6).
        if eocd >= 20, zipLE32(bytes, eocd - 20) == 0x0706_4B50 {
            guard let recordOffset64 = zipLE64(bytes, eocd - 20 + 8), let recordOffset = Int(exactly: recordOffset64),
                  recordOffset <= eocd - 20 - 56, zipLE32(bytes, recordOffset) == 0x0606_4B50,
                  let count64 = zipLE64(bytes, recordOffset + 32), let size64 = zipLE64(bytes, recordOffset + 40),
                  let offset64 = zipLE64(bytes, recordOffset + 48) else {
                throw fail("truncated or corrupt zip archive: the ZIP64 end-of-central-directory record is not where its locator points")
            }
            guard let c = Int(exactly: count64), let s = Int(exactly: size64), let o = Int(exactly: offset64) else {
                throw fail("corrupt zip archive: ZIP64 sizes out of range")
            }
            (entryCount, cdSize, cdOffset, cdLimit) = (c, s, o, recordOffset)
        } else if diskNumber != 0 || cdDisk != 0 {
            throw fail("multi-disk zip archives are not supported")
        }
        guard cdOffset <= cdLimit, cdSize <= cdLimit - cdOffset else {
            throw fail("truncated zip archive: the central directory (\(cdSize) bytes at offset \(cdOffset)) runs past its end record at \(cdLimit) — the file was cut off or corrupted")
        }
        // Every central-directory entry takes at least 46 bytes; this also bounds the allocation below.
        guard entryCount <= cdSize / 46 else {
            throw fail("truncated zip archive: \(entryCount) entries cannot fit in a \(cdSize)-byte central directory")
        }

        // 3. Central directory entries (PK\1\2).
        var entries: [ZipEntry] = []
        entries.reserveCapacity(entryCount)
        let cdEnd = cdOffset + cdSize
        var p = cdOffset
        for number in 0..<entryCount {
            guard p <= cdEnd - 46, zipLE32(bytes, p) == 0x0201_4B50,
                  let flags = zipLE16(bytes, p + 8), let method = zipLE16(bytes, p + 10),
                  let compressed32 = zipLE32(bytes, p + 20), let uncompressed32 = zipLE32(bytes, p + 24),
                  let nameLength = zipLE16(bytes, p + 28), let extraLength = zipLE16(bytes, p + 30),
                  let commentLength = zipLE16(bytes, p + 32), let localOffset32 = zipLE32(bytes, p + 42) else {
                throw fail("corrupt zip archive: central directory entry \(number) at offset \(p) is damaged")
            }
            let nameStart = p + 46, extraStart = nameStart + nameLength
            let next = extraStart + extraLength + commentLength
            guard next <= cdEnd else { throw fail("corrupt zip archive: central directory entry \(number) runs past the directory") }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[nameStart..<extraStart]), as: UTF8.self)

            // ZIP64 extended information: 64-bit values, in this order, for the fields that are 0xFFFFFFFF.
            var uncompressed = uncompressed32, compressed = compressed32, localOffset = localOffset32
            if uncompressed32 == 0xFFFF_FFFF || compressed32 == 0xFFFF_FFFF || localOffset32 == 0xFFFF_FFFF {
                guard let zip64 = zip64Extra(bytes, from: extraStart, to: extraStart + extraLength) else {
                    throw fail("corrupt zip archive: entry \"\(name)\" lacks its ZIP64 size/offset field")
                }
                var q = zip64.lowerBound
                func next64() -> Int? {
                    guard q + 8 <= zip64.upperBound, let value = zipLE64(bytes, q), let int = Int(exactly: value) else { return nil }
                    q += 8
                    return int
                }
                if uncompressed32 == 0xFFFF_FFFF { guard let v = next64() else { throw fail("corrupt zip archive: bad ZIP64 field in \"\(name)\"") }; uncompressed = v }
                if compressed32 == 0xFFFF_FFFF { guard let v = next64() else { throw fail("corrupt zip archive: bad ZIP64 field in \"\(name)\"") }; compressed = v }
                if localOffset32 == 0xFFFF_FFFF { guard let v = next64() else { throw fail("corrupt zip archive: bad ZIP64 field in \"\(name)\"") }; localOffset = v }
            }
            entries.append(ZipEntry(name: name, method: UInt16(method), flags: UInt16(flags), compressedSize: compressed,
                                    uncompressedSize: uncompressed, localHeaderOffset: localOffset))
            p = next
        }
        self.entries = entries
        var index: [String: Int] = [:]
        for (i, entry) in entries.enumerated() where index[entry.name] == nil { index[entry.name] = i }
        self.index = index
    }

    public func entry(named name: String) -> ZipEntry? {
        index[name].map { entries[$0] }
    }

    /// File offset of a stored entry's data (after its local header), validated against the file size.
    public func dataOffset(of entry: ZipEntry) throws -> Int {
        let bytes = file.bytes
        func fail(_ message: String) -> CheckpointError { CheckpointError(file: file.path, "zip entry \"\(entry.name)\": \(message)") }
        guard entry.flags & 1 == 0 else { throw fail("entry is encrypted") }
        guard entry.method == 0 else {
            let kind = entry.method == 8 ? "deflate" : "method \(entry.method)"
            throw fail("entry is compressed (\(kind)); torch checkpoints store entries uncompressed — was the file re-zipped?")
        }
        guard entry.compressedSize == entry.uncompressedSize else {
            throw fail("stored entry has different compressed (\(entry.compressedSize)) and uncompressed (\(entry.uncompressedSize)) sizes")
        }
        let p = entry.localHeaderOffset
        guard p >= 0, p <= bytes.count - 30 else {
            throw fail("truncated zip archive: local header at offset \(p) is past the end of the file")
        }
        guard zipLE32(bytes, p) == 0x0403_4B50, let nameLength = zipLE16(bytes, p + 26), let extraLength = zipLE16(bytes, p + 28) else {
            throw fail("corrupt zip archive: no local header at offset \(p)")
        }
        let start = p + 30 + nameLength + extraLength
        guard file.slice(offset: start, length: entry.compressedSize) != nil else {
            throw fail("truncated zip archive: \(entry.compressedSize) bytes of data at offset \(start) extend past the end of the file (\(bytes.count) bytes)")
        }
        return start
    }

    /// The bytes of a stored entry, pointing into the mapping (no copy).
    public func contents(of entry: ZipEntry) throws -> UnsafeRawBufferPointer {
        let start = try dataOffset(of: entry)
        guard let slice = file.slice(offset: start, length: entry.compressedSize) else {
            throw CheckpointError(file: file.path, "zip entry \"\(entry.name)\": data outside the file")  // checked above
        }
        return slice
    }
}

// MARK: - Bounds-checked little-endian reads (nil when the field is not entirely inside the buffer)

private func zipLE16(_ b: UnsafeRawBufferPointer, _ offset: Int) -> Int? {
    guard offset >= 0, offset <= b.count - 2 else { return nil }
    return Int(UInt16(littleEndian: b.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

private func zipLE32(_ b: UnsafeRawBufferPointer, _ offset: Int) -> Int? {
    guard offset >= 0, offset <= b.count - 4 else { return nil }
    return Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
}

private func zipLE64(_ b: UnsafeRawBufferPointer, _ offset: Int) -> UInt64? {
    guard offset >= 0, offset <= b.count - 8 else { return nil }
    return UInt64(littleEndian: b.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
}

/// The data range of the ZIP64 extended-information field (header id 0x0001) within an extra area.
private func zip64Extra(_ b: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Range<Int>? {
    var p = start
    while p + 4 <= end, let id = zipLE16(b, p), let size = zipLE16(b, p + 2) {
        let body = p + 4
        guard body + size <= end else { return nil }
        if id == 0x0001 { return body..<(body + size) }
        p = body + size
    }
    return nil
}
