import Foundation

/// A message that could not be decoded: truncated, wrong kind, or from an incompatible build.
public struct WireError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Little-endian binary writer for wire messages.
public struct ByteWriter {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    public mutating func write<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func write(_ value: Double) { write(value.bitPattern) }
    public mutating func write(_ value: Float) { write(value.bitPattern) }
    public mutating func write(_ value: Bool) { write(UInt8(value ? 1 : 0)) }

    public mutating func write(_ value: String) {
        let utf8 = Array(value.utf8)
        write(UInt32(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    /// Raw float32 values (the platform is little-endian: x86_64, aarch64).
    public mutating func write(floats: UnsafeBufferPointer<Float>) {
        write(UInt64(floats.count))
        bytes.append(contentsOf: UnsafeRawBufferPointer(floats))
    }

    public mutating func append(_ raw: [UInt8]) { bytes.append(contentsOf: raw) }

    public mutating func write(floats: [Float]) {
        floats.withUnsafeBufferPointer { write(floats: $0) }
    }
}

/// Reader matching `ByteWriter`; every read checks the remaining length.
public struct ByteReader {
    private let bytes: [UInt8]
    public private(set) var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var remaining: Int { bytes.count - offset }

    private mutating func take(_ count: Int, _ what: String) throws -> Range<Int> {
        guard count >= 0, count <= remaining else {
            throw WireError("message truncated: need \(count) bytes for \(what), \(remaining) left")
        }
        defer { offset += count }
        return offset..<(offset + count)
    }

    public mutating func read<T: FixedWidthInteger>(_: T.Type = T.self) throws -> T {
        let range = try take(MemoryLayout<T>.size, "\(T.self)")
        var value = T.zero
        withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: bytes[range]) }
        return T(littleEndian: value)
    }

    public mutating func read(_: Double.Type = Double.self) throws -> Double { Double(bitPattern: try read(UInt64.self)) }
    public mutating func read(_: Float.Type = Float.self) throws -> Float { Float(bitPattern: try read(UInt32.self)) }
    public mutating func read(_: Bool.Type = Bool.self) throws -> Bool { try read(UInt8.self) != 0 }

    public mutating func read(_: String.Type = String.self) throws -> String {
        let count = Int(try read(UInt32.self))
        let range = try take(count, "string")
        return String(decoding: bytes[range], as: UTF8.self)
    }

    public mutating func readFloats() throws -> [Float] {
        let count = try read(UInt64.self)
        guard count <= UInt64(remaining / 4) else { throw WireError("message truncated: \(count) floats announced, \(remaining) bytes left") }
        let range = try take(Int(count) * 4, "float array")
        return [Float](unsafeUninitializedCapacity: Int(count)) { buffer, initialized in
            bytes.withUnsafeBytes { raw in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[range]))
            }
            initialized = Int(count)
        }
    }

    /// A UInt64 length followed by that many raw bytes.
    public mutating func readBytes() throws -> [UInt8] {
        let count = try read(UInt64.self)
        guard count <= UInt64(remaining) else { throw WireError("message truncated: \(count) bytes announced, \(remaining) left") }
        return Array(bytes[try take(Int(count), "byte array")])
    }

    public func expectEnd(_ what: String) throws {
        guard remaining == 0 else { throw WireError("\(what): \(remaining) unexpected trailing bytes") }
    }
}
