import Foundation
import Tensor

/// Writes float32 tensors as a safetensors file, streaming one tensor at a time (a 1.3 GB model is
/// never held in memory) to a temporary name that is renamed when complete.
public enum SafetensorsWriter {
    /// `tensors` gives names and shapes in file order; `values(i, buffer)` fills tensor i's data.
    public static func write(
        to path: String, tensors: [(name: String, shape: [Int])], metadata: [String: String] = [:],
        values: (Int, UnsafeMutableBufferPointer<Float>) throws -> Void
    ) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for (name, shape) in tensors {
            let bytes = shape.reduce(1, *) * 4
            header[name] = ["dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes]] as [String: Any]
            offset += bytes
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad with spaces so the data buffer starts 8-byte aligned (zero-copy float reads).
        while (8 + json.count) % 8 != 0 { json.append(0x20) }

        let temporary = path + ".partial-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: nil), let file = FileHandle(forWritingAtPath: temporary) else {
            throw CheckpointError("\(path): cannot create")
        }
        do {
            var length = UInt64(json.count).littleEndian
            try file.write(contentsOf: Data(bytes: &length, count: 8))
            try file.write(contentsOf: json)
            for (index, tensor) in tensors.enumerated() {
                let buffer = FloatBuffer(count: tensor.shape.reduce(1, *))
                try values(index, buffer.buffer)
                try file.write(contentsOf: Data(bytesNoCopy: buffer.pointer, count: buffer.count * 4, deallocator: .none))
            }
            try file.synchronize()
            try file.close()
            guard rename(temporary, path) == 0 else { throw CheckpointError("\(path): cannot rename into place: \(String(cString: strerror(errno)))") }
        } catch {
            try? file.close()
            unlink(temporary)
            throw error
        }
    }
}
