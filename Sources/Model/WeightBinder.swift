import Foundation
import Tensor

/// Hands tensors of a checkpoint to the model under their canonical names (prefixes such as
/// `model.` or vLLM's `inference_runner.` stripped), checking shapes, and collects every missing or
/// mis-shaped tensor so that one error can list them all.
public final class WeightBinder {
    /// The checkpoint, or nil for a binder that only records what the model asks for.
    public let reader: CheckpointReader?
    /// Every tensor asked for, in order (names and shapes), when recording.
    public private(set) var requested: [(name: String, shape: [Int])] = []
    private var storedName: [String: String] = [:]
    private var problems: [String] = []
    private var placeholders: [FloatBuffer] = []
    private var used: Set<String> = []
    /// Where packed Linear weights come from and go (nil when recording).
    private let packedCache: PackedWeightCache?
    /// How the packed weights were found or made (`PackedWeightCache.report`), after `finish`.
    public private(set) var packingReport = ""

    static let strippedPrefixes = ["inference_runner.", "model.", "_orig_mod.", "module."]

    public init(reader: CheckpointReader, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.reader = reader
        for name in reader.tensorNames {
            var canonical = name
            while let prefix = Self.strippedPrefixes.first(where: { canonical.hasPrefix($0) }) {
                canonical.removeFirst(prefix.count)
            }
            if let other = storedName[canonical] {
                throw CheckpointError("\(reader.path): tensors \(other) and \(name) both map to \(canonical)")
            }
            storedName[canonical] = name
        }
        packedCache = PackedWeightCache(checkpoint: reader.path, environment: environment)
    }

    /// A binder without a checkpoint: every tensor is "present" as zeros and recorded, so that
    /// building a model lists exactly the tensors its checkpoint must hold.
    public init() {
        reader = nil
        packedCache = nil
    }

    public func has(_ name: String) -> Bool { storedName[name] != nil }

    /// The tensor `name` with exactly `shape`; a problem is recorded (and zeros returned so that
    /// loading can go on to find the others) when it is absent or shaped otherwise.
    public func tensor(_ name: String, _ shape: [Int]) -> UnsafePointer<Float> {
        guard reader != nil else {
            requested.append((name, shape))
            return placeholder(shape)
        }
        if let pointer = optional(name, shape) { return pointer }
        if storedName[name] == nil { problems.append("missing \(name) \(shape)") }
        return placeholder(shape)
    }

    /// Like `tensor`, but absence is not a problem.
    public func optional(_ name: String, _ shape: [Int]) -> UnsafePointer<Float>? {
        guard let reader, let stored = storedName[name] else { return nil }
        used.insert(name)
        do {
            let tensor = try reader.tensor(stored)
            // PyTorch stores 1-element parameters as [1] or as 0-d scalars.
            let squeezed = tensor.shape.filter { $0 != 1 }, expected = shape.filter { $0 != 1 }
            guard tensor.shape == shape || (squeezed == expected && tensor.values.count == shape.reduce(1, *)) else {
                problems.append("\(name) has shape \(tensor.shape), expected \(shape)")
                return placeholder(shape)
            }
            return UnsafePointer(tensor.values.baseAddress!)
        } catch {
            problems.append("\(name): \(error)")
            return placeholder(shape)
        }
    }

    /// A Linear weight `name` of `shape` (PyTorch's [out × in…]: n = shape[0], k = the rest) packed
    /// for the GEMM, from the node's packed-weight cache when it holds it.
    public func linear(_ name: String, _ shape: [Int]) -> PackedMatrix {
        let n = shape[0], k = shape.dropFirst().reduce(1, *)
        // Found in a mapped cache: the checkpoint's tensor (perhaps bf16, to be converted into a
        // float32 copy kept for the reader's lifetime) is never read, only its shape checked.
        if let packedCache, let reader, let stored = storedName[name], reader.shape(of: stored) == shape,
           let matrix = packedCache.cached(name, n: n, k: k) {
            used.insert(name)
            return matrix
        }
        let weight = tensor(name, shape)
        guard let packedCache, reader != nil, problems.isEmpty else {
            // Recording, or the checkpoint is already known not to fit: `finish` throws or the model
            // is only inspected, so no forward pass ever reads this (unpacked, too short) pointer.
            return PackedMatrix(packed: weight, n: n, k: k, owner: self)
        }
        return packedCache.matrix(name, weight: weight, n: n, k: k)
    }

    /// `tensor` copied into an array (for small vectors such as BatchNorm statistics).
    public func array(_ name: String, _ shape: [Int]) -> [Float] {
        Array(UnsafeBufferPointer(start: tensor(name, shape), count: shape.reduce(1, *)))
    }

    private func placeholder(_ shape: [Int]) -> UnsafePointer<Float> {
        let buffer = FloatBuffer(count: shape.reduce(1, *))
        placeholders.append(buffer)
        return UnsafePointer(buffer.pointer)
    }

    /// Throws one error listing every problem met while binding; names of unused tensors are returned
    /// (e.g. the MAE decoder or auxiliary heads) for logging.
    @discardableResult
    public func finish() throws -> [String] {
        if problems.isEmpty {
            packedCache?.finish()
        } else {
            packedCache?.abandon()  // a cache without the matrices after the first problem must not be kept
        }
        packingReport = packedCache?.report ?? ""
        guard problems.isEmpty else {
            let shown = problems.prefix(20).joined(separator: "\n  ")
            let more = problems.count > 20 ? "\n  … and \(problems.count - 20) more" : ""
            throw CheckpointError("\(reader?.path ?? "checkpoint") does not fit the model config (\(problems.count) problem(s)):\n  \(shown)\(more)")
        }
        return storedName.keys.filter { !used.contains($0) }.sorted()
    }
}
