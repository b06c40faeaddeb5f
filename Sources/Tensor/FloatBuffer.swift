import Foundation

/// Owned, 64-byte aligned float32 storage (cache-line and AVX friendly).
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    public init(count: Int, zeroed: Bool = true) {
        self.count = count
        var raw: UnsafeMutableRawPointer? = nil
        let status = posix_memalign(&raw, 64, max(1, count) * MemoryLayout<Float>.stride)
        guard status == 0, let raw else { fatalError("out of memory allocating \(count) floats") }
        pointer = raw.bindMemory(to: Float.self, capacity: max(1, count))
        if zeroed { pointer.initialize(repeating: 0, count: count) }
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count, zeroed: false)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { free(pointer) }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    public var array: [Float] { Array(buffer) }
}

/// Scratch memory reused from one forward pass to the next: each named slot grows when a larger
/// size is asked for and is otherwise handed back as is, so a steady stream of same-sized tiles
/// allocates nothing after the first.
public final class Scratch: @unchecked Sendable {
    private var slots: [String: FloatBuffer] = [:]

    public init() {}

    /// A buffer of at least `count` floats for `name`; contents are whatever the last user left.
    public func buffer(_ name: String, _ count: Int) -> UnsafeMutablePointer<Float> {
        if let slot = slots[name], slot.count >= count { return slot.pointer }
        let slot = FloatBuffer(count: count, zeroed: true)
        slots[name] = slot
        return slot.pointer
    }

    /// Bytes held by all slots.
    public var bytes: Int { slots.values.reduce(0) { $0 + $1.count * 4 } }
}
