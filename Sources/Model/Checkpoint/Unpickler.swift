import Foundation

// A restricted unpickler for the `data.pkl` of torch.save archives.
//
// It understands the pickle opcodes of protocols 0–5 but never imports or runs anything: GLOBAL /
// STACK_GLOBAL only record a (module, name) pair, and calling one (REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ)
// is interpreted for a handful of known torch/collections functions (tensor rebuilds, OrderedDict, ...).
// Every other class becomes an opaque placeholder; REDUCE/NEWOBJ/BUILD on placeholders give placeholders.
//
// Containers live in an arena (`PickleObjects`) and values refer to them by index. Pickle containers
// are mutable and shared through the memo (a dict is memoized empty, then filled by SETITEMS), which the
// indices model directly; and a flat arena cannot overflow the stack when a hostile, deeply nested
// value graph is released.

/// A value produced by the unpickler. Containers and objects are indices into `PickleObjects`.
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer wider than 64 bits (its little-endian two's complement byte count).
    case bigInt(byteCount: Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple(Int)
    case list(Int)
    case set(Int)
    case dict(Int)
    /// A class or function reference (GLOBAL / STACK_GLOBAL), not resolved.
    case global(module: String, name: String)
    case storage(Int)
    case tensor(Int)
    /// Placeholder for an instance of a class we don't model.
    case object(Int)

    var string: String? { if case .string(let s) = self { s } else { nil } }

    /// Integers (and bools, which pickle uses interchangeably in torch's argument tuples).
    var int: Int? {
        switch self {
        case .int(let v): v
        case .bool(let b): b ? 1 : 0
        default: nil
        }
    }
}

/// An insertion-ordered dict; string keys are indexed so repeated keys replace (as in Python).
struct PickleDict {
    var keys: [PickleValue] = []
    var values: [PickleValue] = []
    private var stringIndex: [String: Int] = [:]

    mutating func set(_ key: PickleValue, _ value: PickleValue) {
        if case .string(let s) = key {
            if let i = stringIndex[s] { values[i] = value; return }
            stringIndex[s] = keys.count
        }
        keys.append(key)
        values.append(value)
    }

    func value(forKey key: String) -> PickleValue? { stringIndex[key].map { values[$0] } }
}

/// A storage reference from a persistent id ('storage', StorageType, key, location, numel).
struct PickleStorage {
    let key: String
    let dtype: CheckpointDType
    let location: String
    let numel: Int
}

/// A tensor from torch._utils._rebuild_tensor_v2/v3: a strided view of a storage (nothing read yet).
struct PickleTensor {
    let storageKey: String
    let dtype: CheckpointDType
    let offset: Int
    let shape: [Int]
    let strides: [Int]
}

struct PickleOpaque {
    /// Dotted class or function name, e.g. "pathlib.PosixPath".
    let typeName: String
    /// Set when this stands for a tensor that could not be rebuilt (the reason), so readers can report it.
    var problem: String? = nil
}

/// The arena all container and object values point into.
struct PickleObjects {
    var sequences: [[PickleValue]] = []  // tuples, lists, sets (by the value's case)
    var dicts: [PickleDict] = []
    var storages: [PickleStorage] = []
    var tensors: [PickleTensor] = []
    var opaques: [PickleOpaque] = []

    mutating func newSequence(_ items: [PickleValue]) -> Int { sequences.append(items); return sequences.count - 1 }
    mutating func newDict() -> Int { dicts.append(PickleDict()); return dicts.count - 1 }
    mutating func newOpaque(_ name: String, problem: String? = nil) -> PickleValue {
        opaques.append(PickleOpaque(typeName: name, problem: problem))
        return .object(opaques.count - 1)
    }

    /// Items of a tuple or list (nil for anything else).
    func items(_ value: PickleValue) -> [PickleValue]? {
        switch value {
        case .tuple(let i), .list(let i): sequences[i]
        default: nil
        }
    }
}

struct PickleResult {
    var root: PickleValue
    var objects: PickleObjects
}

struct Unpickler {
    private let data: UnsafeRawBufferPointer
    private var position = 0
    /// Start of the opcode being executed, for error messages.
    private var opcodeStart = 0
    private var stack: [PickleValue] = []
    /// Stack heights at each MARK; values below the innermost mark can't be popped (Python's metastack).
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    private var objects = PickleObjects()

    /// Parses a whole pickle (up to STOP). Errors carry the byte offset and no file name (callers add it).
    static func load(_ data: UnsafeRawBufferPointer) throws -> PickleResult {
        var unpickler = Unpickler(data: data)
        let root = try unpickler.run()
        return PickleResult(root: root, objects: unpickler.objects)
    }

    private init(data: UnsafeRawBufferPointer) { self.data = data }

    // MARK: - Errors and raw reads

    private func corrupt(_ message: String) -> CheckpointError {
        CheckpointError("corrupt pickle: \(message) at byte \(opcodeStart)")
    }

    private mutating func bytes(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard count >= 0, count <= data.count - position else {
            throw corrupt("truncated data (wanted \(count) bytes, \(data.count - position) left)")
        }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: data[position..<(position + count)])
    }

    private mutating func byte() throws -> UInt8 { try bytes(1)[0] }
    private mutating func u16() throws -> Int { Int(UInt16(littleEndian: try bytes(2).loadUnaligned(as: UInt16.self))) }
    private mutating func u32() throws -> Int { Int(UInt32(littleEndian: try bytes(4).loadUnaligned(as: UInt32.self))) }
    private mutating func i32() throws -> Int { Int(Int32(littleEndian: try bytes(4).loadUnaligned(as: Int32.self))) }

    /// A 64-bit length, which must fit in what is left of the data.
    private mutating func length64() throws -> Int {
        let raw = UInt64(littleEndian: try bytes(8).loadUnaligned(as: UInt64.self))
        guard raw <= UInt64(data.count - position) else { throw corrupt("length \(raw) runs past the end of the data") }
        return Int(raw)
    }

    /// Text-protocol argument: bytes up to (not including) the next newline.
    private mutating func line() throws -> String {
        var end = position
        while end < data.count, data[end] != 0x0A { end += 1 }
        guard end < data.count else { throw corrupt("unterminated text argument") }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: data[position..<end]), as: UTF8.self)
        position = end + 1
        return text
    }

    private mutating func utf8(_ count: Int) throws -> String {
        String(decoding: try bytes(count), as: UTF8.self)
    }

    // MARK: - Stack

    private var floor: Int { marks.last ?? 0 }

    private mutating func push(_ value: PickleValue) { stack.append(value) }

    private mutating func pop(_ what: String) throws -> PickleValue {
        guard stack.count > floor else { throw corrupt("stack underflow (\(what))") }
        return stack.removeLast()
    }

    private func top(_ what: String) throws -> PickleValue {
        guard stack.count > floor, let value = stack.last else { throw corrupt("stack underflow (\(what))") }
        return value
    }

    /// Pops everything above the innermost MARK, and the mark.
    private mutating func popMark(_ what: String) throws -> [PickleValue] {
        guard let mark = marks.popLast() else { throw corrupt("\(what) without a MARK") }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    private mutating func memoGet(_ key: Int) throws {
        guard let value = memo[key] else { throw corrupt("memo key \(key) missing") }
        push(value)
    }

    private mutating func memoPut(_ key: Int) throws {
        memo[key] = try top("PUT")
    }

    private mutating func pushTuple(_ items: [PickleValue]) { push(.tuple(objects.newSequence(items))) }

    // MARK: - Main loop

    private mutating func run() throws -> PickleValue {
        while position < data.count {
            opcodeStart = position
            let op = try byte()
            switch op {
            case 0x80:  // PROTO
                let version = try byte()
                guard version <= 5 else { throw corrupt("unsupported pickle protocol \(version)") }
            case 0x95:  // FRAME: a length prefix for the opcodes that follow; they are read normally
                _ = try length64()
            case 0x2E:  // STOP
                return try pop("STOP")
            case 0x28:  // MARK
                marks.append(stack.count)
            case 0x30:  // POP (pops a whole mark frame when the current one is empty, as CPython does)
                if stack.count > floor { stack.removeLast() } else { _ = try popMark("POP") }
            case 0x31:  // POP_MARK
                _ = try popMark("POP_MARK")
            case 0x32:  // DUP
                push(try top("DUP"))

            // Scalars
            case 0x4E: push(.none)  // NONE
            case 0x88: push(.bool(true))  // NEWTRUE
            case 0x89: push(.bool(false))  // NEWFALSE
            case 0x4A: push(.int(try i32()))  // BININT
            case 0x4B: push(.int(Int(try byte())))  // BININT1
            case 0x4D: push(.int(try u16()))  // BININT2
            case 0x8A:  // LONG1
                push(decodeLong(try bytes(Int(try byte()))))
            case 0x8B:  // LONG4
                let count = try i32()
                guard count >= 0 else { throw corrupt("negative LONG4 length") }
                push(decodeLong(try bytes(count)))
            case 0x49:  // INT (text); "00"/"01" are protocol 0's False/True
                let text = try line()
                if text == "00" { push(.bool(false)) } else if text == "01" { push(.bool(true)) } else { push(try parseInt(text)) }
            case 0x4C:  // LONG (text, optional trailing L)
                let text = try line()
                push(try parseInt(text.hasSuffix("L") ? String(text.dropLast()) : text))
            case 0x46:  // FLOAT (text)
                let text = try line()
                guard let value = Double(text.trimmingCharacters(in: .whitespaces)) else { throw corrupt("bad FLOAT \"\(text)\"") }
                push(.float(value))
            case 0x47:  // BINFLOAT: 8 bytes, big-endian
                push(.float(Double(bitPattern: UInt64(bigEndian: try bytes(8).loadUnaligned(as: UInt64.self)))))

            // Strings and bytes
            case 0x58: push(.string(try utf8(try u32())))  // BINUNICODE
            case 0x8C: push(.string(try utf8(Int(try byte()))))  // SHORT_BINUNICODE
            case 0x8D: push(.string(try utf8(try length64())))  // BINUNICODE8
            case 0x56: push(.string(try line()))  // UNICODE (raw-unicode-escape; escapes left as is)
            case 0x53:  // STRING (text, a quoted repr)
                var text = try line()
                if text.count >= 2, let first = text.first, first == "'" || first == "\"", text.last == first {
                    text = String(text.dropFirst().dropLast())
                }
                push(.string(text))
            case 0x54:  // BINSTRING (Python 2 str)
                let count = try i32()
                guard count >= 0 else { throw corrupt("negative BINSTRING length") }
                push(.string(try utf8(count)))
            case 0x55: push(.string(try utf8(Int(try byte()))))  // SHORT_BINSTRING
            case 0x42: push(.bytes(Array(try bytes(try u32()))))  // BINBYTES
            case 0x43: push(.bytes(Array(try bytes(Int(try byte())))))  // SHORT_BINBYTES
            case 0x8E, 0x96: push(.bytes(Array(try bytes(try length64()))))  // BINBYTES8, BYTEARRAY8
            case 0x97:  // NEXT_BUFFER
                throw corrupt("out-of-band buffers (NEXT_BUFFER) are not supported")
            case 0x98:  // READONLY_BUFFER: no-op on the value
                _ = try top("READONLY_BUFFER")

            // Containers
            case 0x29: pushTuple([])  // EMPTY_TUPLE
            case 0x85: pushTuple([try pop("TUPLE1")])  // TUPLE1
            case 0x86:  // TUPLE2
                let b = try pop("TUPLE2"), a = try pop("TUPLE2")
                pushTuple([a, b])
            case 0x87:  // TUPLE3
                let c = try pop("TUPLE3"), b = try pop("TUPLE3"), a = try pop("TUPLE3")
                pushTuple([a, b, c])
            case 0x74: pushTuple(try popMark("TUPLE"))  // TUPLE
            case 0x5D: push(.list(objects.newSequence([])))  // EMPTY_LIST
            case 0x6C: push(.list(objects.newSequence(try popMark("LIST"))))  // LIST
            case 0x8F: push(.set(objects.newSequence([])))  // EMPTY_SET
            case 0x91: push(.set(objects.newSequence(try popMark("FROZENSET"))))  // FROZENSET
            case 0x7D: push(.dict(objects.newDict()))  // EMPTY_DICT
            case 0x64:  // DICT
                let items = try popMark("DICT")
                guard items.count % 2 == 0 else { throw corrupt("DICT with an odd number of items") }
                let id = objects.newDict()
                for i in stride(from: 0, to: items.count, by: 2) { objects.dicts[id].set(items[i], items[i + 1]) }
                push(.dict(id))
            case 0x61:  // APPEND
                let value = try pop("APPEND")
                try append([value], to: try top("APPEND"), "APPEND")
            case 0x65:  // APPENDS
                let items = try popMark("APPENDS")
                try append(items, to: try top("APPENDS"), "APPENDS")
            case 0x90:  // ADDITEMS
                let items = try popMark("ADDITEMS")
                try append(items, to: try top("ADDITEMS"), "ADDITEMS")
            case 0x73:  // SETITEM
                let value = try pop("SETITEM"), key = try pop("SETITEM")
                try setItems([key, value], in: try top("SETITEM"), "SETITEM")
            case 0x75:  // SETITEMS
                let items = try popMark("SETITEMS")
                guard items.count % 2 == 0 else { throw corrupt("SETITEMS with an odd number of items") }
                try setItems(items, in: try top("SETITEMS"), "SETITEMS")

            // Memo
            case 0x68: try memoGet(Int(try byte()))  // BINGET
            case 0x6A: try memoGet(try u32())  // LONG_BINGET
            case 0x67: try memoGet(try memoKey(try line()))  // GET
            case 0x71: try memoPut(Int(try byte()))  // BINPUT
            case 0x72: try memoPut(try u32())  // LONG_BINPUT
            case 0x70: try memoPut(try memoKey(try line()))  // PUT
            case 0x94: try memoPut(memo.count)  // MEMOIZE

            // Classes, calls and persistent ids
            case 0x63:  // GLOBAL "module\nname\n"
                let module = try line(), name = try line()
                push(.global(module: module, name: name))
            case 0x93:  // STACK_GLOBAL
                let name = try pop("STACK_GLOBAL"), module = try pop("STACK_GLOBAL")
                guard let n = name.string, let m = module.string else { throw corrupt("STACK_GLOBAL needs two strings") }
                push(.global(module: m, name: n))
            case 0x52:  // REDUCE: callable(*args)
                let args = try pop("REDUCE"), callable = try pop("REDUCE")
                push(try call(callable, args))
            case 0x81:  // NEWOBJ: cls.__new__(cls, *args)
                let args = try pop("NEWOBJ"), cls = try pop("NEWOBJ")
                push(try call(cls, args))
            case 0x92:  // NEWOBJ_EX: cls.__new__(cls, *args, **kwargs)
                _ = try pop("NEWOBJ_EX")
                let args = try pop("NEWOBJ_EX"), cls = try pop("NEWOBJ_EX")
                push(try call(cls, args))
            case 0x69:  // INST "module\nname\n" with the arguments above a MARK
                let module = try line(), name = try line()
                let args = try popMark("INST")
                let tuple = PickleValue.tuple(objects.newSequence(args))
                push(try call(.global(module: module, name: name), tuple))
            case 0x6F:  // OBJ: class and arguments above a MARK
                let items = try popMark("OBJ")
                guard let cls = items.first else { throw corrupt("OBJ without a class") }
                push(try call(cls, .tuple(objects.newSequence(Array(items.dropFirst())))))
            case 0x62:  // BUILD: obj.__setstate__(state) — ignored (OrderedDict _metadata, object state, ...)
                _ = try pop("BUILD")
                _ = try top("BUILD")
            case 0x82, 0x83, 0x84:  // EXT1, EXT2, EXT4: copyreg extension registry codes
                let code = op == 0x82 ? Int(try byte()) : op == 0x83 ? try u16() : try i32()
                push(objects.newOpaque("copyreg extension \(code)"))
            case 0x51:  // BINPERSID
                push(try persistentLoad(try pop("BINPERSID")))
            case 0x50:  // PERSID (text)
                throw corrupt("unsupported text persistent id (PERSID)")
            default:
                throw corrupt("unknown opcode \(String(format: "0x%02X", op))")
            }
        }
        opcodeStart = position
        throw corrupt("data ends without STOP (truncated)")
    }

    // MARK: - Helpers for opcodes

    private func memoKey(_ text: String) throws -> Int {
        guard let key = Int(text) else { throw corrupt("bad memo key \"\(text)\"") }
        return key
    }

    private func parseInt(_ text: String) throws -> PickleValue {
        if let value = Int(text) { return .int(value) }
        let digits = text.hasPrefix("-") || text.hasPrefix("+") ? text.dropFirst() : Substring(text)
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else {
            throw corrupt("bad integer \"\(text)\"")
        }
        return .bigInt(byteCount: digits.count / 2 + 1)
    }

    /// LONG1/LONG4 payload: little-endian two's complement of any width.
    private func decodeLong(_ bytes: UnsafeRawBufferPointer) -> PickleValue {
        guard !bytes.isEmpty else { return .int(0) }
        guard bytes.count <= 8 else { return .bigInt(byteCount: bytes.count) }
        var value: UInt64 = 0
        for (i, b) in bytes.enumerated() { value |= UInt64(b) << (8 * UInt64(i)) }
        if bytes[bytes.count - 1] & 0x80 != 0, bytes.count < 8 {
            value |= ~UInt64(0) << (8 * UInt64(bytes.count))  // sign-extend
        }
        return .int(Int(Int64(bitPattern: value)))
    }

    private mutating func append(_ items: [PickleValue], to target: PickleValue, _ what: String) throws {
        switch target {
        case .list(let id), .set(let id): objects.sequences[id].append(contentsOf: items)
        case .object: break  // a list/set subclass we don't model: drop the items
        default: throw corrupt("\(what) on a value that is not a list or set")
        }
    }

    private mutating func setItems(_ items: [PickleValue], in target: PickleValue, _ what: String) throws {
        switch target {
        case .dict(let id):
            for i in stride(from: 0, to: items.count, by: 2) { objects.dicts[id].set(items[i], items[i + 1]) }
        case .object: break  // a dict subclass we don't model: drop the items
        default: throw corrupt("\(what) on a value that is not a dict")
        }
    }

    /// ('storage', <storage type global>, key, location, numel) → a storage reference. The data itself is
    /// the archive entry `<top>/data/<key>`.
    private mutating func persistentLoad(_ pid: PickleValue) throws -> PickleValue {
        guard let items = objects.items(pid), items.count >= 5, items[0].string == "storage" else {
            throw corrupt("unsupported persistent id (expected a ('storage', type, key, location, numel) tuple)")
        }
        guard case .global(let module, let name) = items[1] else { throw corrupt("storage type is not a class reference") }
        let key: String
        switch items[2] {
        case .string(let s): key = s
        case .int(let i): key = String(i)
        default: throw corrupt("storage key is not a string")
        }
        let numel = items[4].int ?? -1
        objects.storages.append(PickleStorage(key: key, dtype: Self.storageDType(module: module, name: name),
                                              location: items[3].string ?? "", numel: numel))
        return .storage(objects.storages.count - 1)
    }

    /// Calls a known function, or makes a placeholder. Nothing is ever executed.
    private mutating func call(_ callable: PickleValue, _ args: PickleValue, nesting: Int = 0) throws -> PickleValue {
        // _rebuild_from_type_v2 calls its first argument; a list can contain itself, so bound the recursion.
        guard nesting < 8 else { throw corrupt("tensor rebuild functions nested too deeply") }
        switch callable {
        case .global(let module, let name):
            let arguments = objects.items(args) ?? []
            switch "\(module).\(name)" {
            case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
                return rebuildTensor(arguments, function: name, explicitDType: nil)
            case "torch._utils._rebuild_tensor_v3":
                // (storage, offset, size, stride, requires_grad, hooks, dtype[, metadata]) over an UntypedStorage.
                guard arguments.count >= 7, case .global(module: "torch", name: let dtypeName) = arguments[6] else {
                    return objects.newOpaque("torch.Tensor", problem: "bad arguments to _rebuild_tensor_v3")
                }
                return rebuildTensor(arguments, function: name, explicitDType: Self.torchDType(dtypeName))
            case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
                // (tensor, requires_grad, backward_hooks[, state]) → the tensor itself.
                return arguments.first ?? objects.newOpaque("torch.nn.Parameter", problem: "no tensor argument")
            case "torch._tensor._rebuild_from_type_v2":
                // (func, type, args, state): a Tensor subclass; rebuild the plain tensor with func(*args).
                guard arguments.count >= 3 else { return objects.newOpaque("torch.Tensor", problem: "bad arguments to _rebuild_from_type_v2") }
                return try call(arguments[0], arguments[2], nesting: nesting + 1)
            case "collections.OrderedDict", "builtins.dict", "__builtin__.dict", "collections.defaultdict":
                let id = objects.newDict()
                // OrderedDict([(k, v), ...]) — protocol 2 normally passes () and uses SETITEMS instead.
                if name != "defaultdict", let first = arguments.first, let pairs = objects.items(first) {
                    for pair in pairs {
                        if let kv = objects.items(pair), kv.count == 2 { objects.dicts[id].set(kv[0], kv[1]) }
                    }
                }
                return .dict(id)
            case "torch.Size":
                return arguments.first ?? .tuple(objects.newSequence([]))
            default:
                return objects.newOpaque("\(module).\(name)")
            }
        case .object(let id):
            return objects.newOpaque(objects.opaques[id].typeName)
        default:
            throw corrupt("call of a value that is not a class or function")
        }
    }

    /// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`.
    /// Bad arguments give a placeholder carrying the reason, so that junk in (ignored) optimizer state does
    /// not stop a load, while a reader that finds it in the state dict can report it.
    private mutating func rebuildTensor(_ args: [PickleValue], function: String, explicitDType: CheckpointDType?) -> PickleValue {
        func invalid(_ why: String) -> PickleValue { objects.newOpaque("torch.Tensor", problem: "\(function): \(why)") }
        guard args.count >= 4 else { return invalid("expected at least 4 arguments, got \(args.count)") }
        guard case .storage(let storageID) = args[0] else { return invalid("first argument is not a storage") }
        guard let offset = args[1].int else { return invalid("storage offset is not an integer") }
        guard let sizeItems = objects.items(args[2]), let strideItems = objects.items(args[3]) else {
            return invalid("size/stride are not tuples")
        }
        let shape = sizeItems.compactMap(\.int), strides = strideItems.compactMap(\.int)
        guard shape.count == sizeItems.count, strides.count == strideItems.count else {
            return invalid("size/stride contain non-integers")
        }
        let storage = objects.storages[storageID]
        objects.tensors.append(PickleTensor(storageKey: storage.key, dtype: explicitDType ?? storage.dtype,
                                            offset: offset, shape: shape, strides: strides))
        return .tensor(objects.tensors.count - 1)
    }

    /// Storage classes of torch.save's persistent ids (torch.FloatStorage, ...). torch.UntypedStorage holds
    /// bytes (its tensors come with an explicit dtype through _rebuild_tensor_v3).
    static func storageDType(module: String, name: String) -> CheckpointDType {
        guard module == "torch" || module == "torch.storage" else { return .unsupported("\(module).\(name)") }
        switch name {
        case "FloatStorage": return .float32
        case "HalfStorage": return .float16
        case "BFloat16Storage": return .bfloat16
        case "DoubleStorage": return .float64
        case "LongStorage": return .int64
        case "IntStorage": return .int32
        case "ShortStorage": return .int16
        case "CharStorage": return .int8
        case "ByteStorage", "UntypedStorage": return .uint8
        case "BoolStorage": return .bool
        default: return .unsupported("\(module).\(name)")
        }
    }

    /// `torch.<dtype>` globals (how torch.dtype objects pickle).
    static func torchDType(_ name: String) -> CheckpointDType {
        switch name {
        case "float32", "float": .float32
        case "float16", "half": .float16
        case "bfloat16": .bfloat16
        case "float64", "double": .float64
        case "int64", "long": .int64
        case "int32", "int": .int32
        case "int16", "short": .int16
        case "int8": .int8
        case "uint8": .uint8
        case "uint16": .uint16
        case "uint32": .uint32
        case "uint64": .uint64
        case "bool": .bool
        default: .unsupported("torch.\(name)")
        }
    }
}

// MARK: - Debugging aid

/// A Python-like rendering of a pickle (for instance a checkpoint's `data.pkl`), parsed with the same
/// restricted unpickler the torch reader uses: tensors print as `tensor(float32, [3, 4], storage '0')`,
/// unknown objects as `<pathlib.PosixPath>`. Containers deeper than `maxDepth` print as `...`.
public func describePickle(_ bytes: [UInt8], maxDepth: Int = 12) throws -> String {
    let result = try bytes.withUnsafeBytes { try Unpickler.load($0) }
    var out = ""
    describePickleValue(result.root, result.objects, depth: maxDepth, into: &out)
    return out
}

private func describePickleValue(_ value: PickleValue, _ objects: PickleObjects, depth: Int, into out: inout String) {
    func list(_ items: [PickleValue], _ open: String, _ close: String) {
        guard depth > 0 else { out += "\(open)...\(close)"; return }
        out += open
        for (i, item) in items.enumerated() {
            if i > 0 { out += ", " }
            describePickleValue(item, objects, depth: depth - 1, into: &out)
        }
        if open == "(" && items.count == 1 { out += "," }
        out += close
    }
    switch value {
    case .none: out += "None"
    case .bool(let b): out += b ? "True" : "False"
    case .int(let i): out += String(i)
    case .bigInt(let n): out += "<\(n)-byte int>"
    case .float(let d): out += String(d)
    case .string(let s): out += "'\(s)'"
    case .bytes(let b): out += "b<\(b.count) bytes>"
    case .tuple(let id): list(objects.sequences[id], "(", ")")
    case .list(let id): list(objects.sequences[id], "[", "]")
    case .set(let id): list(objects.sequences[id], "set(", ")")
    case .dict(let id):
        guard depth > 0 else { out += "{...}"; return }
        let dict = objects.dicts[id]
        out += "{"
        for i in dict.keys.indices {
            if i > 0 { out += ", " }
            describePickleValue(dict.keys[i], objects, depth: depth - 1, into: &out)
            out += ": "
            describePickleValue(dict.values[i], objects, depth: depth - 1, into: &out)
        }
        out += "}"
    case .global(let module, let name): out += "\(module).\(name)"
    case .storage(let id): out += "storage(\(objects.storages[id].dtype), '\(objects.storages[id].key)')"
    case .tensor(let id):
        let t = objects.tensors[id]
        out += "tensor(\(t.dtype), \(t.shape), storage '\(t.storageKey)'"
        if t.offset != 0 { out += " +\(t.offset)" }
        if t.strides != CheckpointLayout.contiguousStrides(t.shape) { out += " stride \(t.strides)" }
        out += ")"
    case .object(let id):
        let o = objects.opaques[id]
        out += o.problem.map { "<\(o.typeName): \($0)>" } ?? "<\(o.typeName)>"
    }
}
