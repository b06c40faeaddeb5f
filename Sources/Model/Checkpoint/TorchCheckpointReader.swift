import Foundation

/// Reader for `torch.save` files in the zip format (torch ≥ 1.6): `.pt`, `.pth`, PyTorch-Lightning `.ckpt`,
/// and `pytorch_model.bin`.
///
/// Archive layout (all entries STORED, tensor data 64-byte aligned):
///
///     <top>/data.pkl          the pickled object; tensors reference storages by key
///     <top>/data/<key>        raw little-endian bytes of one storage
///     <top>/byteorder         "little" (absent in old files, which are little-endian)
///     <top>/version, <top>/.format_version, <top>/.storage_alignment, <top>/.data/serialization_id  (ignored)
///
/// `<top>` is named after the saved file ("archive" for in-memory saves), so it is taken from the folder
/// of the `data.pkl` entry. The pickle is parsed by a restricted unpickler that executes nothing (see
/// Unpickler.swift); the tensors of the state dict are then exposed lazily: nothing is copied until
/// `tensor(_:)` is called, and contiguous aligned float32 data is never copied at all.
///
/// The state dict is: the root's `"state_dict"` entry when it is a dict (Lightning checkpoints), else
/// the root itself when all its values are tensors (`torch.save(model.state_dict())`), else the root's
/// `"model_state_dict"`, `"model"` or `"module"` entry when that is a dict holding tensors. Everything else
/// in the file (optimizer state, callbacks, hyper-parameters) is parsed and ignored.
public final class TorchCheckpointReader: CheckpointReader, @unchecked Sendable {
    public let path: String
    public let file: MappedFile
    public let archive: ZipArchive
    /// Folder of `data.pkl` inside the archive, e.g. "checkpoint" for checkpoint.pt ("" if at the root).
    public let archiveFolder: String
    /// Key of the root dict the tensors came from ("state_dict", ...), or nil when the root is the state dict.
    public let stateDictKey: String?
    /// State-dict tensor names in dict (file) order.
    public let tensorNames: [String]
    /// State-dict keys whose values are not tensors (e.g. `_extra_state` objects); not exposed as tensors.
    public let skippedEntries: [String]

    private struct Entry {
        let dtype: CheckpointDType
        let layout: CheckpointLayout
        /// The storage's bytes inside the mapping (bounds already checked against `layout` for known dtypes).
        let storage: UnsafeRawBufferPointer
        let storageName: String
    }

    private let entries: [String: Entry]
    private let converted = CheckpointCopyCache()

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    /// Reads the archive directory and the pickle; validates every state-dict tensor against its storage.
    public init(file: MappedFile) throws {
        self.file = file
        path = file.path
        let path = file.path
        func fail(_ message: String) -> CheckpointError { CheckpointError(file: path, message) }

        let archive = try ZipArchive(file: file)
        self.archive = archive

        // data.pkl: the shallowest "…/data.pkl" (torch writes exactly one, at <top>/data.pkl).
        let pickles = archive.entries.filter { $0.name == "data.pkl" || $0.name.hasSuffix("/data.pkl") }
        guard let pickleEntry = pickles.min(by: { $0.name.split(separator: "/").count < $1.name.split(separator: "/").count }) else {
            throw fail("no data.pkl in the zip archive (not a torch.save checkpoint)")
        }
        let prefix = String(pickleEntry.name.dropLast("data.pkl".count))  // "<top>/" or ""
        archiveFolder = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix

        if let byteorder = archive.entry(named: prefix + "byteorder") {
            let text = String(decoding: try archive.contents(of: byteorder), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard text == "little" else {
                throw fail("archive byteorder is \"\(text)\"; only little-endian checkpoints are supported")
            }
        }

        let result: PickleResult
        do {
            result = try Unpickler.load(try archive.contents(of: pickleEntry))
        } catch let error as CheckpointError where !error.description.hasPrefix(path) {
            throw fail("\(pickleEntry.name): \(error.description)")
        }
        let objects = result.objects

        // Locate the state dict.
        guard case .dict(let rootID) = result.root else {
            throw fail("no state dict: the pickled root is \(Self.kind(result.root)), not a dict")
        }
        let root = objects.dicts[rootID]
        func holdsTensors(_ dict: PickleDict) -> Bool {
            dict.values.contains { if case .tensor = $0 { true } else { false } }
        }
        var chosen: (key: String?, dict: PickleDict)? = nil
        if case .dict(let id)? = root.value(forKey: "state_dict") {
            chosen = ("state_dict", objects.dicts[id])
        } else if root.values.allSatisfy({ Self.isTensorLike($0, objects) }) {
            chosen = (nil, root)
        } else {
            for key in ["model_state_dict", "model", "module"] {
                if case .dict(let id)? = root.value(forKey: key), holdsTensors(objects.dicts[id]) {
                    chosen = (key, objects.dicts[id])
                    break
                }
            }
        }
        guard let chosen else {
            let keys = root.keys.prefix(12).map { $0.string.map { "\"\($0)\"" } ?? "<\(Self.kind($0))>" }
            throw fail("no state dict found: the root dict (keys \(keys.joined(separator: ", "))\(root.keys.count > 12 ? ", …" : "")) has no \"state_dict\" entry and is not a dict of tensors")
        }
        stateDictKey = chosen.key

        // Resolve every tensor against its storage entry now, so a damaged file fails at open.
        var names: [String] = []
        var skipped: [String] = []
        var entries: [String: Entry] = [:]
        for (keyValue, value) in zip(chosen.dict.keys, chosen.dict.values) {
            guard let name = keyValue.string else { skipped.append("<\(Self.kind(keyValue)) key>"); continue }
            func bad(_ message: String) -> CheckpointError { fail("tensor \"\(name)\": \(message)") }
            switch value {
            case .tensor(let id):
                let t = objects.tensors[id]
                let layout: CheckpointLayout
                do {
                    layout = try CheckpointLayout.validated(shape: t.shape, strides: t.strides, offset: t.offset)
                } catch let error as CheckpointError { throw bad(error.description) }
                let storageName = prefix + "data/" + t.storageKey
                guard let storageEntry = archive.entry(named: storageName) else {
                    throw bad("storage entry \"\(storageName)\" is missing from the archive")
                }
                let storage = try archive.contents(of: storageEntry)
                if let size = t.dtype.byteSize {
                    guard let needed = layout.requiredBytes(elementSize: size), needed <= storage.count else {
                        throw bad("needs \(layout.extent) \(t.dtype) elements of storage \"\(storageName)\", which has only \(storage.count) bytes (truncated?)")
                    }
                }
                if entries[name] == nil { names.append(name) }
                entries[name] = Entry(dtype: t.dtype, layout: layout, storage: storage, storageName: storageName)
            case .object(let id) where objects.opaques[id].problem != nil:
                throw bad("cannot rebuild the tensor (\(objects.opaques[id].problem ?? ""))")
            default:
                skipped.append(name)
            }
        }
        tensorNames = names
        skippedEntries = skipped
        self.entries = entries
    }

    public func shape(of name: String) -> [Int]? { entries[name]?.layout.shape }

    /// The stored element type, nil for an unknown name.
    public func dtype(of name: String) -> CheckpointDType? { entries[name]?.dtype }

    /// Whether `tensor(name)` returns a view into the mapping rather than a converted copy.
    public func isZeroCopy(_ name: String) -> Bool {
        guard let entry = entries[name] else { return false }
        return zeroCopyStart(entry) != nil
    }

    public func tensor(_ name: String) throws -> CheckpointTensor {
        guard let entry = entries[name] else { throw CheckpointError(file: path, "no tensor named \"\(name)\"") }
        let shape = entry.layout.shape
        if let start = zeroCopyStart(entry) {
            let count = entry.layout.elementCount
            let floats = start.bindMemory(to: Float.self, capacity: count)
            return CheckpointTensor(name: name, shape: shape, values: UnsafeBufferPointer(start: floats, count: count), owner: self)
        }
        guard entry.dtype.byteSize != nil else {
            throw CheckpointError(file: path, "tensor \"\(name)\": unsupported dtype \(entry.dtype)")
        }
        do {
            let values = try converted.buffer(for: name, count: entry.layout.elementCount) { out in
                try CheckpointConversion.toFloat32(entry.storage, dtype: entry.dtype, layout: entry.layout, into: out)
            }
            return CheckpointTensor(name: name, shape: shape, values: values, owner: self)
        } catch let error as CheckpointError {
            throw CheckpointError(file: path, "tensor \"\(name)\": \(error.description)")
        }
    }

    /// First element's address when the tensor can be handed out without a copy: contiguous float32,
    /// little-endian host, 4-byte aligned, not empty.
    private func zeroCopyStart(_ entry: Entry) -> UnsafeRawPointer? {
        #if _endian(little)
        guard entry.dtype == .float32, entry.layout.isContiguous, entry.layout.elementCount > 0,
              let base = entry.storage.baseAddress else { return nil }
        let start = base + entry.layout.offset * 4  // inside the storage: checked at init
        return Int(bitPattern: start) % MemoryLayout<Float>.alignment == 0 ? start : nil
        #else
        return nil
        #endif
    }

    private static func isTensorLike(_ value: PickleValue, _ objects: PickleObjects) -> Bool {
        switch value {
        case .tensor: true
        case .object(let id): objects.opaques[id].problem != nil  // a tensor we failed to rebuild: report it
        default: false
        }
    }

    private static func kind(_ value: PickleValue) -> String {
        switch value {
        case .none: "None"
        case .bool: "a bool"
        case .int, .bigInt: "an int"
        case .float: "a float"
        case .string: "a string"
        case .bytes: "bytes"
        case .tuple: "a tuple"
        case .list: "a list"
        case .set: "a set"
        case .dict: "a dict"
        case .global(let m, let n): "\(m).\(n)"
        case .storage: "a storage"
        case .tensor: "a tensor"
        case .object: "an object"
        }
    }
}
