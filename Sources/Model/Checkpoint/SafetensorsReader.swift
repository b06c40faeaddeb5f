import Foundation

/// Reader for the safetensors format (https://github.com/huggingface/safetensors):
///
///     [8 bytes: header length N, little-endian u64][N bytes: JSON header][data buffer]
///
/// The header maps tensor names to `{"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}`, with
/// offsets relative to the start of the data buffer, plus an optional `"__metadata__": {string: string}`.
/// The file is memory-mapped; F32 tensors are returned without copying (the writer pads the header so
/// the data buffer is 8-byte aligned), other dtypes are converted to a Float32 copy on first access.
public final class SafetensorsReader: CheckpointReader, @unchecked Sendable {
    public let path: String
    /// The mapping every zero-copy tensor points into.
    public let file: MappedFile
    /// The header's `__metadata__` (empty when absent).
    public let metadata: [String: String]
    /// Tensor names in the order of their data in the file (JSON object order is not preserved by
    /// JSONSerialization, and safetensors itself defines no other order).
    public let tensorNames: [String]

    private struct Entry {
        let dtype: CheckpointDType
        let layout: CheckpointLayout
        /// Absolute byte range in the file, already checked to lie inside it.
        let start: Int
        let length: Int
    }

    private let entries: [String: Entry]
    private let converted = CheckpointCopyCache()

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    /// Parses and validates the header of an already mapped file; tensor data is not read.
    public init(file: MappedFile) throws {
        self.file = file
        path = file.path
        let path = file.path
        func fail(_ message: String) -> CheckpointError { CheckpointError(file: path, message) }

        let bytes = file.bytes
        guard bytes.count >= 8 else {
            throw fail("truncated safetensors file: \(bytes.count) bytes, shorter than the 8-byte header length")
        }
        let headerLength = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw fail("truncated safetensors file: header length \(headerLength) exceeds the \(bytes.count - 8) bytes after the length field")
        }
        // The reference implementation refuses headers above 100 MB; so do we (it is all JSON in memory).
        guard headerLength <= 100_000_000 else { throw fail("safetensors header of \(headerLength) bytes is implausibly large") }
        let dataStart = 8 + Int(headerLength)
        let dataSize = bytes.count - dataStart

        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(bytes[8..<dataStart]), options: [])
        } catch {
            throw fail("safetensors header is not valid JSON")
        }
        guard let header = json as? [String: Any] else { throw fail("safetensors header is not a JSON object") }

        var metadata: [String: String] = [:]
        if let raw = header["__metadata__"] {
            guard let dict = raw as? [String: Any] else { throw fail("safetensors __metadata__ is not an object") }
            for (key, value) in dict {
                guard let text = value as? String else { throw fail("safetensors __metadata__[\"\(key)\"] is not a string") }
                metadata[key] = text
            }
        }
        self.metadata = metadata

        var entries: [String: Entry] = [:]
        for (name, raw) in header where name != "__metadata__" {
            func bad(_ message: String) -> CheckpointError { fail("tensor \"\(name)\": \(message)") }
            guard let info = raw as? [String: Any] else { throw bad("header entry is not an object") }
            guard let dtypeName = info["dtype"] as? String else { throw bad("missing dtype") }
            guard let shape = Self.integers(info["shape"]) else { throw bad("shape is not a list of integers") }
            guard let offsets = Self.integers(info["data_offsets"]), offsets.count == 2 else {
                throw bad("data_offsets is not a pair of integers")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end else { throw bad("invalid data_offsets [\(begin), \(end)]") }
            guard end <= dataSize else {
                throw bad("data range [\(begin), \(end)) extends past the end of the file (data buffer has \(dataSize) bytes; truncated file?)")
            }
            let dtype = Self.dtype(named: dtypeName)
            let layout: CheckpointLayout
            do { layout = try CheckpointLayout.contiguous(shape: shape) } catch { throw bad("\(error)") }
            if let size = dtype.byteSize {
                let (needed, overflow) = layout.elementCount.multipliedReportingOverflow(by: size)
                guard !overflow, needed == end - begin else {
                    throw bad("data_offsets span \(end - begin) bytes but shape \(shape) of \(dtypeName) needs \(overflow ? "too many" : String(needed))")
                }
            }
            entries[name] = Entry(dtype: dtype, layout: layout, start: dataStart + begin, length: end - begin)
        }
        self.entries = entries
        tensorNames = entries.map { (name: $0.key, start: $0.value.start) }
            .sorted { $0.start != $1.start ? $0.start < $1.start : $0.name < $1.name }
            .map(\.name)
    }

    public func shape(of name: String) -> [Int]? { entries[name]?.layout.shape }

    /// The stored element type, nil for an unknown name.
    public func dtype(of name: String) -> CheckpointDType? { entries[name]?.dtype }

    /// Whether `tensor(name)` returns a view into the mapping rather than a converted copy.
    public func isZeroCopy(_ name: String) -> Bool {
        guard let entry = entries[name] else { return false }
        return Self.zeroCopyPossible(entry, base: file.baseAddress)
    }

    public func tensor(_ name: String) throws -> CheckpointTensor {
        guard let entry = entries[name] else { throw CheckpointError(file: path, "no tensor named \"\(name)\"") }
        guard let data = file.slice(offset: entry.start, length: entry.length) else {
            throw CheckpointError(file: path, "tensor \"\(name)\": data range outside the file")  // validated in init
        }
        if Self.zeroCopyPossible(entry, base: file.baseAddress) {
            let count = entry.layout.elementCount
            guard count > 0, let start = data.baseAddress else {
                return CheckpointTensor(name: name, shape: entry.layout.shape, values: UnsafeBufferPointer(start: nil, count: 0), owner: self)
            }
            let floats = start.bindMemory(to: Float.self, capacity: count)
            return CheckpointTensor(name: name, shape: entry.layout.shape, values: UnsafeBufferPointer(start: floats, count: count), owner: self)
        }
        guard entry.dtype.byteSize != nil else {
            throw CheckpointError(file: path, "tensor \"\(name)\": unsupported dtype \(entry.dtype)")
        }
        do {
            let values = try converted.buffer(for: name, count: entry.layout.elementCount) { out in
                try CheckpointConversion.toFloat32(data, dtype: entry.dtype, layout: entry.layout, into: out)
            }
            return CheckpointTensor(name: name, shape: entry.layout.shape, values: values, owner: self)
        } catch let error as CheckpointError {
            throw CheckpointError(file: path, "tensor \"\(name)\": \(error.description)")
        }
    }

    // MARK: - Helpers

    private static func zeroCopyPossible(_ entry: Entry, base: UnsafeRawPointer) -> Bool {
        #if _endian(little)
        return entry.dtype == .float32 && Int(bitPattern: base + entry.start) % MemoryLayout<Float>.alignment == 0
        #else
        return false
        #endif
    }

    /// Safetensors dtype names (see `Dtype` in the reference implementation).
    private static func dtype(named name: String) -> CheckpointDType {
        switch name {
        case "F32": .float32
        case "F16": .float16
        case "BF16": .bfloat16
        case "F64": .float64
        case "I64": .int64
        case "I32": .int32
        case "I16": .int16
        case "I8": .int8
        case "U64": .uint64
        case "U32": .uint32
        case "U16": .uint16
        case "U8": .uint8
        case "BOOL": .bool
        default: .unsupported(name)
        }
    }

    /// A JSON array of non-fractional numbers as Ints (JSONSerialization yields NSNumbers).
    private static func integers(_ value: Any?) -> [Int]? {
        guard let array = value as? [Any] else { return nil }
        var result: [Int] = []
        result.reserveCapacity(array.count)
        for item in array {
            // Rejects fractions and values beyond Int64 (whose int64Value would not round-trip).
            guard let number = item as? NSNumber, Double(number.int64Value) == number.doubleValue else { return nil }
            result.append(Int(number.int64Value))
        }
        return result
    }
}
