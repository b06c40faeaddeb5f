import Foundation

// Common surface of the weight-file readers (safetensors, torch zip checkpoints) plus the
// dtype conversion helpers they share. Nothing here runs Python or trusts the file: every
// size, offset and stride read from a file is validated before it is used for pointer arithmetic.

/// A float32 tensor of a checkpoint: row-major, contiguous. `values` point into memory its reader
/// owns (the mapped file, converted copies); the tensor holds the reader, so they stay valid as long
/// as the tensor does. Not Sendable: the reader is not.
public struct CheckpointTensor {
    public let name: String
    public let shape: [Int]
    public let values: UnsafeBufferPointer<Float>
    /// What keeps `values` alive.
    public let owner: AnyObject

    public init(name: String, shape: [Int], values: UnsafeBufferPointer<Float>, owner: AnyObject) {
        self.name = name
        self.shape = shape
        self.values = values
        self.owner = owner
    }

    /// Number of elements (product of `shape`; 1 for a 0-d scalar).
    public var count: Int { values.count }
}

public protocol CheckpointReader: AnyObject {
    var path: String { get }
    /// Tensor names exactly as stored (no prefix stripping), in file order.
    var tensorNames: [String] { get }
    /// Shape without reading data.
    func shape(of name: String) -> [Int]?
    /// Float32 view (zero-copy when the stored data is contiguous float32, little-endian, 4-byte aligned;
    /// a converted copy otherwise).
    func tensor(_ name: String) throws -> CheckpointTensor
    /// The mapping the zero-copy tensors point into.
    var file: MappedFile { get }
}

/// One clear message per failure; messages about a file start with its path.
public struct CheckpointError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
    init(file: String, _ message: String) { self.description = "\(file): \(message)" }
}

/// Element types a checkpoint may store. Everything except `.unsupported` converts to Float32
/// (integers and bools by value; int64 beyond 2^24 loses precision, as any float32 conversion does).
public enum CheckpointDType: Equatable, Hashable, Sendable, CustomStringConvertible {
    case float32, float16, bfloat16, float64
    case int64, int32, int16, int8
    case uint64, uint32, uint16, uint8
    case bool
    /// A type the readers cannot convert (complex, float8, quantized, ...), with its name in the file.
    case unsupported(String)

    /// Bytes per element, nil for unsupported types.
    public var byteSize: Int? {
        switch self {
        case .float64, .int64, .uint64: 8
        case .float32, .int32, .uint32: 4
        case .float16, .bfloat16, .int16, .uint16: 2
        case .int8, .uint8, .bool: 1
        case .unsupported: nil
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float16, .bfloat16, .float64: true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .float32: "float32"
        case .float16: "float16"
        case .bfloat16: "bfloat16"
        case .float64: "float64"
        case .int64: "int64"
        case .int32: "int32"
        case .int16: "int16"
        case .int8: "int8"
        case .uint64: "uint64"
        case .uint32: "uint32"
        case .uint16: "uint16"
        case .uint8: "uint8"
        case .bool: "bool"
        case .unsupported(let name): name
        }
    }
}

/// Opens by extension/content: .safetensors → SafetensorsReader; .pt/.pth/.ckpt/.bin (zip) → TorchCheckpointReader.
/// Files with other extensions are recognised by content (zip magic, or a safetensors JSON header).
public func openCheckpoint(_ path: String) throws -> CheckpointReader {
    let file = try MappedFile(path: path)
    let ext = (path as NSString).pathExtension.lowercased()
    if ext == "safetensors" { return try SafetensorsReader(file: file) }
    let bytes = file.bytes
    let isZip = bytes.count >= 4 && bytes[0] == 0x50 && bytes[1] == 0x4B && bytes[2] == 0x03 && bytes[3] == 0x04
    if isZip { return try TorchCheckpointReader(file: file) }
    // safetensors: 8-byte little-endian header length followed by a JSON object.
    if bytes.count >= 10, bytes[8] == UInt8(ascii: "{") { return try SafetensorsReader(file: file) }
    if ["pt", "pth", "ckpt", "bin"].contains(ext) {
        return try TorchCheckpointReader(file: file)  // throws the precise "not a zip" message
    }
    throw CheckpointError(file: path, "unrecognised checkpoint format (expected .safetensors or a torch.save zip checkpoint)")
}

// MARK: - Layout of a stored tensor

/// Where a tensor's elements live inside a byte buffer: element offset and strides (in elements, as
/// torch stores them). Built only through `validated`, so every element index it yields is inside the data.
struct CheckpointLayout: Sendable {
    let shape: [Int]
    let strides: [Int]
    let offset: Int
    /// Product of `shape` (1 for 0-d).
    let elementCount: Int
    /// One past the highest element index touched (0 for an empty tensor).
    let extent: Int

    /// Row-major strides of `shape`.
    static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var step = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[axis] = step
            step = step &* max(shape[axis], 1)  // only used after the shape was validated
        }
        return strides
    }

    /// Checks sizes, strides and offset (all from the file) for negative values and overflow;
    /// the error text has no file name (callers add it).
    static func validated(shape: [Int], strides: [Int], offset: Int) throws -> CheckpointLayout {
        guard shape.count == strides.count else {
            throw CheckpointError("shape \(shape) and stride \(strides) have different ranks")
        }
        guard offset >= 0 else { throw CheckpointError("negative storage offset \(offset)") }
        var count = 1
        for size in shape {
            guard size >= 0 else { throw CheckpointError("negative size in shape \(shape)") }
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            guard !overflow else { throw CheckpointError("shape \(shape) has too many elements") }
            count = product
        }
        var extent = 0
        if count > 0 {
            // Highest index = offset + Σ (size - 1) * stride.
            var highest = offset
            for (size, step) in zip(shape, strides) {
                guard step >= 0 else { throw CheckpointError("negative stride in \(strides)") }
                let (span, o1) = (size - 1).multipliedReportingOverflow(by: step)
                let (sum, o2) = highest.addingReportingOverflow(span)
                guard !o1, !o2 else { throw CheckpointError("stride \(strides) overflows") }
                highest = sum
            }
            guard highest < Int.max else { throw CheckpointError("stride \(strides) overflows") }
            extent = highest + 1
        }
        return CheckpointLayout(shape: shape, strides: strides, offset: offset, elementCount: count, extent: extent)
    }

    static func contiguous(shape: [Int]) throws -> CheckpointLayout {
        try validated(shape: shape, strides: contiguousStrides(shape), offset: 0)
    }

    /// Row-major contiguous (strides of size-1 axes don't matter; torch often stores odd values there).
    var isContiguous: Bool {
        var expected = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) where shape[axis] != 1 {
            if strides[axis] != expected { return false }
            expected = expected &* shape[axis]
        }
        return true
    }

    /// Bytes the data buffer must hold for this layout, or nil on overflow.
    func requiredBytes(elementSize: Int) -> Int? {
        let (bytes, overflow) = extent.multipliedReportingOverflow(by: elementSize)
        return overflow ? nil : bytes
    }
}

// MARK: - Conversion to Float32

/// Element conversions shared by the readers. The scalar ones are public for code that handles
/// half-precision data itself.
public enum CheckpointConversion {
    /// IEEE half → float, by bits (portable: `Float16` is not available on every platform).
    @inline(__always)
    public static func float16ToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exponent = UInt32((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            // Zero or subnormal: mantissa · 2^-24, exact in float32.
            let magnitude = Float(mantissa) * 0x1p-24
            return sign != 0 ? -magnitude : magnitude
        }
        if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }  // inf / NaN
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))  // rebias 15 → 127
    }

    /// bfloat16 is the top half of a float32.
    @inline(__always)
    public static func bfloat16ToFloat(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

    /// Copies the elements `layout` selects from `data` (little-endian `dtype`) into `out` in row-major
    /// order, converting to Float32. Reads are unaligned-safe. `out.count` must equal `layout.elementCount`.
    static func toFloat32(_ data: UnsafeRawBufferPointer, dtype: CheckpointDType, layout: CheckpointLayout,
                          into out: UnsafeMutableBufferPointer<Float>) throws {
        guard let size = dtype.byteSize else { throw CheckpointError("unsupported dtype \(dtype)") }
        guard out.count == layout.elementCount, let needed = layout.requiredBytes(elementSize: size),
              needed <= data.count else {
            throw CheckpointError("tensor data (\(data.count) bytes) is too small for its \(dtype) layout")
        }
        guard layout.elementCount > 0, let base = data.baseAddress else { return }
        switch dtype {
        case .float32: gather(base, 4, layout, out) { Float(bitPattern: UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))) }
        case .float16: gather(base, 2, layout, out) { float16ToFloat(UInt16(littleEndian: $0.loadUnaligned(as: UInt16.self))) }
        case .bfloat16: gather(base, 2, layout, out) { bfloat16ToFloat(UInt16(littleEndian: $0.loadUnaligned(as: UInt16.self))) }
        case .float64: gather(base, 8, layout, out) { Float(Double(bitPattern: UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)))) }
        case .int64: gather(base, 8, layout, out) { Float(Int64(littleEndian: $0.loadUnaligned(as: Int64.self))) }
        case .int32: gather(base, 4, layout, out) { Float(Int32(littleEndian: $0.loadUnaligned(as: Int32.self))) }
        case .int16: gather(base, 2, layout, out) { Float(Int16(littleEndian: $0.loadUnaligned(as: Int16.self))) }
        case .int8: gather(base, 1, layout, out) { Float($0.load(as: Int8.self)) }
        case .uint64: gather(base, 8, layout, out) { Float(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        case .uint32: gather(base, 4, layout, out) { Float(UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))) }
        case .uint16: gather(base, 2, layout, out) { Float(UInt16(littleEndian: $0.loadUnaligned(as: UInt16.self))) }
        case .uint8: gather(base, 1, layout, out) { Float($0.load(as: UInt8.self)) }
        case .bool: gather(base, 1, layout, out) { $0.load(as: UInt8.self) != 0 ? 1 : 0 }
        case .unsupported: break  // excluded by the byteSize guard
        }
    }
}

extension CheckpointConversion {
    /// Walks `layout` in row-major order (an odometer over the axes), reading each element with `read`.
    @inline(__always)
    fileprivate static func gather(_ base: UnsafeRawPointer, _ elementSize: Int, _ layout: CheckpointLayout,
                                   _ out: UnsafeMutableBufferPointer<Float>, _ read: (UnsafeRawPointer) -> Float) {
        let count = layout.elementCount
        if layout.isContiguous {
            let start = base + layout.offset * elementSize
            for i in 0..<count { out[i] = read(start + i * elementSize) }
            return
        }
        let rank = layout.shape.count
        let shape = layout.shape, strides = layout.strides
        var index = [Int](repeating: 0, count: rank)
        var source = layout.offset
        for i in 0..<count {
            out[i] = read(base + source * elementSize)
            // Advance the odometer: bump the last axis, carrying into earlier ones.
            var axis = rank - 1
            // Wrapping arithmetic: the walk itself stays inside the validated extent, but a size-1 axis may
            // carry an arbitrary stride from the file, which is added and immediately subtracted again.
            while axis >= 0 {
                index[axis] += 1
                source &+= strides[axis]
                if index[axis] < shape[axis] { break }
                source &-= strides[axis] &* shape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }
}

/// Owns the Float32 copies a reader hands out, so `CheckpointTensor.values` stay valid while the reader
/// lives; each tensor is converted once and reused on later requests. Thread-safe.
final class CheckpointCopyCache: @unchecked Sendable {
    private let lock = NSLock()
    private var buffers: [String: UnsafeMutableBufferPointer<Float>] = [:]

    /// The cached copy for `name`, or a new one filled by `fill` (a buffer of `count` floats).
    func buffer(for name: String, count: Int,
                fill: (UnsafeMutableBufferPointer<Float>) throws -> Void) throws -> UnsafeBufferPointer<Float> {
        lock.lock()
        defer { lock.unlock() }
        if let cached = buffers[name] { return UnsafeBufferPointer(cached) }
        guard count > 0 else { return UnsafeBufferPointer(start: nil, count: 0) }
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        do {
            try fill(buffer)
        } catch {
            buffer.deallocate()
            throw error
        }
        buffers[name] = buffer
        return UnsafeBufferPointer(buffer)
    }

    deinit { for buffer in buffers.values { buffer.deallocate() } }
}
