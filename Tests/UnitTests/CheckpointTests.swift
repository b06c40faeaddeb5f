import Foundation
import Model
import TestSupport
import Testing

// Fixtures come from scripts/fixtures/make_checkpoint_fixtures.py; expected.json holds, per file, the
// tensor names in order, their stored dtype, shape and every value converted to float32 by torch.
// Corrupted variants are made at test time from copies of the fixtures in a TemporaryDirectory.

private let ckptFixtureDirectory = repositoryRoot + "/Tests/Fixtures/checkpoints"
private func ckptFixture(_ name: String) -> String { ckptFixtureDirectory + "/" + name }

private struct CkptExpectedTensor {
    let name: String
    let dtype: String
    let shape: [Int]
    let values: [Float]?
}

private struct CkptExpectedFile {
    let top: String?
    let metadata: [String: String]
    let tensors: [CkptExpectedTensor]
}

private let ckptExpectedFiles: [String: CkptExpectedFile] = {
    guard let data = FileManager.default.contents(atPath: ckptFixture("expected.json")),
          let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
    var result: [String: CkptExpectedFile] = [:]
    for (file, raw) in json {
        guard let info = raw as? [String: Any], let tensors = info["tensors"] as? [[String: Any]] else { continue }
        result[file] = CkptExpectedFile(
            top: info["top"] as? String,
            metadata: info["metadata"] as? [String: String] ?? [:],
            tensors: tensors.map { t in
                CkptExpectedTensor(name: t["name"] as? String ?? "", dtype: t["dtype"] as? String ?? "",
                                   shape: (t["shape"] as? [NSNumber] ?? []).map(\.intValue),
                                   values: (t["values"] as? [NSNumber])?.map { Float($0.doubleValue) })
            })
    }
    return result
}()

private func ckptExpected(_ file: String) throws -> CkptExpectedFile {
    try #require(ckptExpectedFiles[file], "expected.json has no entry for \(file)")
}

/// The CheckpointError message thrown by `body`, or a marker when it did not throw one.
private func ckptErrorMessage(_ body: () throws -> Any) -> String {
    do {
        _ = try body()
        return "<no error>"
    } catch let error as CheckpointError {
        return error.description
    } catch {
        return "<not a CheckpointError: \(error)>"
    }
}

private func expectCheckpointError(_ path: String, _ phrases: [String], sourceLocation: SourceLocation = #_sourceLocation,
                         _ body: () throws -> Any) {
    let message = ckptErrorMessage(body)
    #expect(message.hasPrefix(path), "message should name \(path): \(message)", sourceLocation: sourceLocation)
    for phrase in phrases {
        #expect(message.contains(phrase), "expected \"\(phrase)\" in: \(message)", sourceLocation: sourceLocation)
    }
}

private func ckptReadBytes(_ path: String) throws -> [UInt8] {
    [UInt8](try #require(FileManager.default.contents(atPath: path), "cannot read \(path)"))
}

private func ckptWriteBytes(_ bytes: [UInt8], _ path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

private func ckptOccurrences(of pattern: [UInt8], in bytes: [UInt8]) -> [Int] {
    guard !pattern.isEmpty, bytes.count >= pattern.count else { return [] }
    return (0...(bytes.count - pattern.count)).filter { start in
        bytes[start..<(start + pattern.count)].elementsEqual(pattern)
    }
}

private func ckptLE16(_ b: [UInt8], _ at: Int) -> Int { Int(b[at]) | Int(b[at + 1]) << 8 }

/// Offset of the central-directory header of `name` (walks PK\1\2 records by their name fields).
private func ckptCentralDirectoryHeader(_ bytes: [UInt8], named name: String) -> Int? {
    ckptOccurrences(of: [0x50, 0x4B, 0x01, 0x02], in: bytes).first { p in
        let length = ckptLE16(bytes, p + 28)
        return p + 46 + length <= bytes.count && String(decoding: bytes[(p + 46)..<(p + 46 + length)], as: UTF8.self) == name
    }
}

private func ckptCheckValues(_ reader: CheckpointReader, _ file: CkptExpectedFile, sourceLocation: SourceLocation = #_sourceLocation) throws {
    for want in file.tensors {
        guard let values = want.values else { continue }
        #expect(reader.shape(of: want.name) == want.shape, "shape of \(want.name)", sourceLocation: sourceLocation)
        let tensor = try reader.tensor(want.name)
        #expect(tensor.name == want.name, sourceLocation: sourceLocation)
        #expect(tensor.shape == want.shape, "tensor shape of \(want.name)", sourceLocation: sourceLocation)
        #expect(Array(tensor.values) == values, "values of \(want.name) (\(want.dtype))", sourceLocation: sourceLocation)
    }
}

private func ckptDTypeName(_ dtype: CheckpointDType?) -> String {
    switch dtype {
    case .float32?: "f32"
    case .float16?: "f16"
    case .bfloat16?: "bf16"
    case .float64?: "f64"
    case .int64?: "i64"
    case .int32?: "i32"
    case .uint8?: "u8"
    case .bool?: "bool"
    case .unsupported("torch.ComplexFloatStorage")?: "complex64"
    default: "other: \(String(describing: dtype))"
    }
}

// MARK: - Torch checkpoints

@Suite struct CheckpointTorchTests {
    @Test(arguments: ["plain_state_dict.pt", "protocol4.pt", "zip64_repacked.pt"])
    func stateDictMatchesTorch(_ name: String) throws {
        let want = try ckptExpected(name)
        let reader = try TorchCheckpointReader(path: ckptFixture(name))
        #expect(reader.tensorNames == want.tensors.map(\.name))
        #expect(reader.archiveFolder == want.top)
        #expect(reader.stateDictKey == nil)
        #expect(reader.skippedEntries.isEmpty)
        for t in want.tensors { #expect(ckptDTypeName(reader.dtype(of: t.name)) == t.dtype, "dtype of \(t.name)") }
        try ckptCheckValues(reader, want)
    }

    @Test func everyDtypeConverts() throws {
        let reader = try TorchCheckpointReader(path: ckptFixture("plain_state_dict.pt"))
        #expect(try Array(reader.tensor("bn.num_batches_tracked").values) == [7])
        #expect(try reader.tensor("bn.num_batches_tracked").shape == [])
        #expect(try Array(reader.tensor("i32").values) == [-3, 0, 5])
        #expect(try Array(reader.tensor("u8").values) == [0, 255, 17])
        #expect(try Array(reader.tensor("bool").values) == [1, 0, 1])
        #expect(try Array(reader.tensor("scalar").values) == [3.25])
        let empty = try reader.tensor("empty")
        #expect(empty.shape == [0, 4] && empty.values.isEmpty)
        for name in ["f16", "bf16", "f64", "bn.num_batches_tracked"] { #expect(!reader.isZeroCopy(name), "\(name)") }
    }

    @Test func viewsOfOneStorage() throws {
        let reader = try TorchCheckpointReader(path: ckptFixture("plain_state_dict.pt"))
        // base = arange(24) * 0.5; a = base[2:8].view(2, 3), b = base[10:22].view(3, 4), strided = base[1::5].
        let a = try reader.tensor("shared.a"), b = try reader.tensor("shared.b")
        #expect(Array(a.values) == (2..<8).map { Float($0) * 0.5 })
        #expect(Array(b.values) == (10..<22).map { Float($0) * 0.5 })
        #expect(try Array(reader.tensor("shared.strided").values) == [1, 6, 11, 16, 21].map { Float($0) * 0.5 })
        // Both contiguous views are zero-copy into the same storage, 8 elements apart.
        #expect(reader.isZeroCopy("shared.a") && reader.isZeroCopy("shared.b"))
        let pa = try #require(a.values.baseAddress), pb = try #require(b.values.baseAddress)
        #expect(pb - pa == 8)
        #expect(reader.file.contains(UnsafeRawPointer(pa)))
        // Non-contiguous views are copied (transpose, strided slice, broadcast stride 0).
        for name in ["transposed", "f16.transposed", "shared.strided", "sliced", "expanded"] {
            #expect(!reader.isZeroCopy(name), "\(name)")
        }
        #expect(reader.shape(of: "transposed") == [5, 3])
    }

    @Test func float32IsZeroCopyAndConvertedCopiesAreCached() throws {
        let reader = try TorchCheckpointReader(path: ckptFixture("plain_state_dict.pt"))
        #expect(reader.isZeroCopy("f32.weight") && reader.isZeroCopy("param"))
        let weight = try reader.tensor("f32.weight")
        #expect(reader.file.contains(UnsafeRawPointer(try #require(weight.values.baseAddress))))
        let first = try reader.tensor("transposed"), second = try reader.tensor("transposed")
        #expect(first.values.baseAddress == second.values.baseAddress)
        #expect(!reader.file.contains(UnsafeRawPointer(try #require(first.values.baseAddress))))
    }

    @Test func aTensorKeepsItsMemoryAfterItsReaderIsDropped() throws {
        // The reader (its mapping, its converted copies) lives as long as a tensor taken from it.
        func take(_ name: String) throws -> CheckpointTensor { try TorchCheckpointReader(path: ckptFixture("plain_state_dict.pt")).tensor(name) }
        let mapped = try take("f32.weight"), copied = try take("transposed")
        let reference = try TorchCheckpointReader(path: ckptFixture("plain_state_dict.pt"))
        #expect(Array(mapped.values) == Array(try reference.tensor("f32.weight").values))
        #expect(Array(copied.values) == Array(try reference.tensor("transposed").values))
        #expect((mapped.owner as? TorchCheckpointReader)?.file.contains(UnsafeRawPointer(try #require(mapped.values.baseAddress))) == true)
    }

    @Test func misalignedFloat32IsCopied() throws {
        // Python's zipfile does not align entries, so some float32 storages start at odd offsets.
        let reader = try TorchCheckpointReader(path: ckptFixture("zip64_repacked.pt"))
        let contiguousF32 = reader.tensorNames.filter {
            reader.dtype(of: $0) == .float32 && !["transposed", "shared.strided", "sliced", "expanded", "empty"].contains($0)
        }
        #expect(contiguousF32.contains { !reader.isZeroCopy($0) })
    }

    @Test func lightningCheckpointYieldsOnlyTheStateDict() throws {
        let name = "tiny-epoch=03.ckpt"
        let want = try ckptExpected(name)
        let reader = try TorchCheckpointReader(path: ckptFixture(name))
        #expect(reader.archiveFolder == "tiny-epoch=03")
        #expect(reader.archiveFolder != "archive")
        #expect(reader.stateDictKey == "state_dict")
        #expect(reader.tensorNames == want.tensors.map(\.name))
        #expect(reader.tensorNames.count == 7)
        #expect(!reader.tensorNames.contains { $0.contains("exp_avg") || !$0.hasPrefix("model.") })
        try ckptCheckValues(reader, want)
        #expect(try Array(reader.tensor("model.1.num_batches_tracked").values) == [1])
    }

    @Test func unsupportedDtypeFailsOnlyThatTensor() throws {
        let path = ckptFixture("complex.pt")
        let reader = try TorchCheckpointReader(path: path)
        #expect(reader.tensorNames == ["real", "complex"])
        #expect(reader.dtype(of: "complex") == .unsupported("torch.ComplexFloatStorage"))
        #expect(reader.shape(of: "complex") == [2])
        #expect(try Array(reader.tensor("real").values) == [1, -2])
        expectCheckpointError(path, ["complex", "unsupported dtype", "ComplexFloatStorage"]) { try reader.tensor("complex") }
        expectCheckpointError(path, ["no tensor named \"nope\""]) { try reader.tensor("nope") }
    }

    @Test func openCheckpointPicksTheReader() throws {
        #expect(try openCheckpoint(ckptFixture("plain_state_dict.pt")) is TorchCheckpointReader)
        #expect(try openCheckpoint(ckptFixture("tiny-epoch=03.ckpt")) is TorchCheckpointReader)
        #expect(try openCheckpoint(ckptFixture("mixed.safetensors")) is SafetensorsReader)
        // By content when the extension says nothing.
        let dir = TemporaryDirectory("ckpt")
        try FileManager.default.copyItem(atPath: ckptFixture("mixed.safetensors"), toPath: dir.file("weights.data"))
        try FileManager.default.copyItem(atPath: ckptFixture("protocol4.pt"), toPath: dir.file("weights.bin"))
        #expect(try openCheckpoint(dir.file("weights.data")) is SafetensorsReader)
        let torch = try openCheckpoint(dir.file("weights.bin"))
        #expect(torch is TorchCheckpointReader)
        #expect(torch.path == dir.file("weights.bin"))
        #expect(torch.tensorNames.first == "f32.weight")
    }

    @Test func zipEntriesOfATorchFile() throws {
        let archive = try ZipArchive(path: ckptFixture("plain_state_dict.pt"))
        let names = archive.entries.map(\.name)
        #expect(names.contains("plain_state_dict/data.pkl"))
        #expect(names.contains("plain_state_dict/byteorder"))
        let byteorder = try #require(archive.entry(named: "plain_state_dict/byteorder"))
        #expect(String(decoding: try archive.contents(of: byteorder), as: UTF8.self) == "little")
        // torch aligns storage data to 64 bytes through the local headers' extra fields.
        let storage = try #require(archive.entry(named: "plain_state_dict/data/0"))
        #expect(try archive.dataOffset(of: storage) % 64 == 0)
        #expect(archive.entries.allSatisfy { $0.method == 0 })
    }
}

// MARK: - safetensors

@Suite struct CheckpointSafetensorsTests {
    @Test func mixedDtypes() throws {
        let name = "mixed.safetensors"
        let want = try ckptExpected(name)
        let reader = try SafetensorsReader(path: ckptFixture(name))
        #expect(reader.metadata == want.metadata)
        #expect(reader.metadata["format"] == "pt")
        #expect(reader.tensorNames == want.tensors.map(\.name))  // by data offset
        for t in want.tensors { #expect(ckptDTypeName(reader.dtype(of: t.name)) == t.dtype, "\(t.name)") }
        try ckptCheckValues(reader, want)
        #expect(try Array(reader.tensor("head.i64").values) == [-2, 0, 40_000_000_000])
        #expect(try reader.tensor("scalar").shape == [])
        #expect(try reader.tensor("empty").values.isEmpty)
    }

    @Test func float32IsZeroCopy() throws {
        let reader = try SafetensorsReader(path: ckptFixture("mixed.safetensors"))
        #expect(reader.isZeroCopy("encoder.f32") && reader.isZeroCopy("scalar"))
        for name in ["encoder.f16", "encoder.bf16", "head.f64", "head.i64"] { #expect(!reader.isZeroCopy(name), "\(name)") }
        let tensor = try reader.tensor("encoder.f32")
        let start = try #require(tensor.values.baseAddress)
        #expect(reader.file.contains(UnsafeRawPointer(start)))
        #expect(reader.file.contains(UnsafeRawPointer(start + tensor.values.count - 1)))
        let converted = try reader.tensor("encoder.f16")
        #expect(!reader.file.contains(UnsafeRawPointer(try #require(converted.values.baseAddress))))
    }

    /// A safetensors file from a JSON header (padded with spaces so the data starts at `dataAlignment` mod 4).
    private func craft(_ path: String, header: String, data: [UInt8], dataMisalignment: Int = 0) throws {
        var json = Array(header.utf8)
        while (8 + json.count) % 4 != dataMisalignment { json.append(0x20) }
        var bytes = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) }
        bytes += json + data
        try ckptWriteBytes(bytes, path)
    }

    private func bytes<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

    @Test func misalignedFloat32IsCopied() throws {
        let dir = TemporaryDirectory("ckpt")
        let path = dir.file("odd.safetensors")
        try craft(path, header: #"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#,
                  data: bytes([Float(1.5), -2, 3, 4e-30]), dataMisalignment: 1)
        let reader = try SafetensorsReader(path: path)
        #expect(!reader.isZeroCopy("w"))
        #expect(try Array(reader.tensor("w").values) == [1.5, -2, 3, 4e-30])
        #expect(reader.metadata.isEmpty)
    }

    @Test func halfAndBFloat16SpecialValues() throws {
        let dir = TemporaryDirectory("ckpt")
        let path = dir.file("special.safetensors")
        // f16: 1, -2, 65504 (max), smallest subnormal, -0, +inf, NaN;  bf16: 1, -inf, 3.0e38-ish, 2^-133 (subnormal)
        let f16: [UInt16] = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x8000, 0x7C00, 0x7E00]
        let bf16: [UInt16] = [0x3F80, 0xFF80, 0x7F61, 0x0001]
        try craft(path, header: #"{"h":{"dtype":"F16","shape":[7],"data_offsets":[0,14]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[14,22]},"__metadata__":{"k":"v"}}"#,
                  data: bytes(f16) + bytes(bf16))
        let reader = try SafetensorsReader(path: path)
        #expect(reader.metadata == ["k": "v"])
        let h = Array(try reader.tensor("h").values)
        #expect(Array(h[0..<4]) == [1, -2, 65504, 0x1p-24])
        #expect(h[4] == 0 && h[4].sign == .minus)
        #expect(h[5] == .infinity && h[6].isNaN)
        let b = Array(try reader.tensor("b").values)
        #expect(b == [1, -.infinity, Float(bitPattern: 0x7F61_0000), Float(bitPattern: 0x0001_0000)])
    }

    @Test func headerProblems() throws {
        let dir = TemporaryDirectory("ckpt")
        let short = dir.file("short.safetensors")
        try ckptWriteBytes([1, 2, 3], short)
        expectCheckpointError(short, ["truncated", "8-byte"]) { try SafetensorsReader(path: short) }

        let long = dir.file("long.safetensors")
        try ckptWriteBytes(withUnsafeBytes(of: UInt64(1000).littleEndian) { Array($0) } + Array("{}".utf8), long)
        expectCheckpointError(long, ["truncated", "header length 1000"]) { try SafetensorsReader(path: long) }

        let notJSON = dir.file("bad.safetensors")
        try craft(notJSON, header: "{nope", data: [])
        expectCheckpointError(notJSON, ["not valid JSON"]) { try SafetensorsReader(path: notJSON) }

        let span = dir.file("span.safetensors")
        try craft(span, header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])
        expectCheckpointError(span, ["\"w\"", "span 4 bytes", "needs 8"]) { try SafetensorsReader(path: span) }

        let fractional = dir.file("frac.safetensors")
        try craft(fractional, header: #"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])
        expectCheckpointError(fractional, ["shape is not a list of integers"]) { try SafetensorsReader(path: fractional) }
    }

    @Test func tensorPastTheEndOfTheFile() throws {
        let dir = TemporaryDirectory("ckpt")
        let path = dir.file("cut.safetensors")
        try ckptWriteBytes(Array(try ckptReadBytes(ckptFixture("mixed.safetensors")).dropLast(4)), path)
        expectCheckpointError(path, ["extends past the end of the file", "truncated"]) { try SafetensorsReader(path: path) }
    }

    @Test func unsupportedDtype() throws {
        let dir = TemporaryDirectory("ckpt")
        let path = dir.file("f8.safetensors")
        try craft(path, header: #"{"q":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]},"w":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#,
                  data: [1, 2] + bytes([Float(0.5)]))
        let reader = try SafetensorsReader(path: path)
        #expect(reader.tensorNames == ["q", "w"])
        #expect(reader.shape(of: "q") == [2])
        #expect(try Array(reader.tensor("w").values) == [0.5])
        expectCheckpointError(path, ["\"q\"", "unsupported dtype F8_E4M3"]) { try reader.tensor("q") }
    }
}

// MARK: - Files that must be rejected with one clear message

@Suite struct CheckpointErrorTests {
    let dir = TemporaryDirectory("ckpt-errors")

    /// A copy of `name` in the temporary directory, with `edit` applied to its bytes.
    private func corrupted(_ name: String, as newName: String, _ edit: (inout [UInt8]) throws -> Void) throws -> String {
        var bytes = try ckptReadBytes(ckptFixture(name))
        try edit(&bytes)
        let path = dir.file(newName)
        try ckptWriteBytes(bytes, path)
        return path
    }

    /// Offset of data.pkl's data in plain_state_dict.pt.
    private func pickleStart() throws -> Int {
        let archive = try ZipArchive(path: ckptFixture("plain_state_dict.pt"))
        return try archive.dataOffset(of: try #require(archive.entry(named: "plain_state_dict/data.pkl")))
    }

    @Test func missingEmptyAndDirectory() throws {
        let missing = dir.file("nope.pt")
        expectCheckpointError(missing, ["no such file"]) { try openCheckpoint(missing) }
        expectCheckpointError(missing, ["no such file"]) { try SafetensorsReader(path: missing) }
        let empty = dir.file("empty.safetensors")
        try ckptWriteBytes([], empty)
        expectCheckpointError(empty, ["file is empty"]) { try openCheckpoint(empty) }
        expectCheckpointError(empty, ["file is empty"]) { try TorchCheckpointReader(path: empty) }
        expectCheckpointError(dir.path, ["directory"]) { try MappedFile(path: dir.path) }
    }

    @Test func notAZip() throws {
        let text = dir.file("notes.pt")
        try ckptWriteBytes(Array("just some text, not a checkpoint\n".utf8), text)
        expectCheckpointError(text, ["not a zip archive"]) { try openCheckpoint(text) }
        let legacy = dir.file("legacy.pt")
        try ckptWriteBytes([0x80, 0x02, 0x8A, 0x0A] + [UInt8](repeating: 0, count: 40), legacy)
        expectCheckpointError(legacy, ["legacy", "not supported"]) { try openCheckpoint(legacy) }
        let other = dir.file("weights.xyz")
        try ckptWriteBytes(Array("hello".utf8), other)
        expectCheckpointError(other, ["unrecognised checkpoint format"]) { try openCheckpoint(other) }
    }

    @Test func truncatedZip() throws {
        let half = try corrupted("plain_state_dict.pt", as: "half.pt") { $0.removeLast($0.count / 2) }
        expectCheckpointError(half, ["truncated zip archive", "end-of-central-directory"]) { try openCheckpoint(half) }
    }

    @Test func centralDirectoryCutOff() throws {
        // Keep the end record (last 22 bytes) but drop half of the central directory before it.
        let cut = try corrupted("plain_state_dict.pt", as: "cd-cut.pt") { bytes in
            let cd = try #require(ckptOccurrences(of: [0x50, 0x4B, 0x01, 0x02], in: bytes).first)
            let eocd = Array(bytes.suffix(22))
            let end = bytes.count - 22 - 20 - 56  // start of the ZIP64 end record torch writes
            bytes = Array(bytes[..<(cd + (end - cd) / 2)]) + eocd
        }
        expectCheckpointError(cut, ["truncated zip archive", "central directory"]) { try TorchCheckpointReader(path: cut) }
        // The same with torch's ZIP64 records kept: the locator now points past the moved record.
        let cut64 = try corrupted("plain_state_dict.pt", as: "cd-cut64.pt") { bytes in
            let cd = try #require(ckptOccurrences(of: [0x50, 0x4B, 0x01, 0x02], in: bytes).first)
            bytes = Array(bytes[..<(cd + 100)]) + Array(bytes.suffix(22 + 20 + 56))
        }
        expectCheckpointError(cut64, ["truncated"]) { try TorchCheckpointReader(path: cut64) }
    }

    @Test func noDataPkl() throws {
        let path = try corrupted("plain_state_dict.pt", as: "nopkl.pt") { bytes in
            for p in ckptOccurrences(of: Array("data.pkl".utf8), in: bytes) { bytes[p + 7] = UInt8(ascii: "x") }
        }
        expectCheckpointError(path, ["no data.pkl"]) { try TorchCheckpointReader(path: path) }
    }

    @Test func corruptPickle() throws {
        let start = try pickleStart()
        let unknown = try corrupted("plain_state_dict.pt", as: "op.pt") { $0[start + 2] = 0xFE }
        expectCheckpointError(unknown, ["plain_state_dict/data.pkl", "unknown opcode 0xFE at byte 2"]) { try TorchCheckpointReader(path: unknown) }
        let underflow = try corrupted("plain_state_dict.pt", as: "underflow.pt") { $0[start + 2] = UInt8(ascii: "s") }
        expectCheckpointError(underflow, ["stack underflow", "at byte 2"]) { try TorchCheckpointReader(path: underflow) }
        // BINGET 99 ('c' of the following GLOBAL is the key) before anything was memoized.
        let memo = try corrupted("plain_state_dict.pt", as: "memo.pt") { $0[start + 2] = UInt8(ascii: "h") }
        expectCheckpointError(memo, ["memo key 99 missing at byte 2"]) { try TorchCheckpointReader(path: memo) }
        let archive = try ZipArchive(path: ckptFixture("plain_state_dict.pt"))
        let pickleSize = try #require(archive.entry(named: "plain_state_dict/data.pkl")).uncompressedSize
        let noStop = try corrupted("plain_state_dict.pt", as: "nostop.pt") { $0[start + pickleSize - 1] = UInt8(ascii: "N") }
        expectCheckpointError(noStop, ["without STOP"]) { try TorchCheckpointReader(path: noStop) }
    }

    @Test func storageEntryMissing() throws {
        // Rename ".../data/0" (the storage of "f32.weight") to ".../data/Z" in both headers.
        let path = try corrupted("plain_state_dict.pt", as: "nostorage.pt") { bytes in
            for p in ckptOccurrences(of: Array("plain_state_dict/data/0".utf8), in: bytes) { bytes[p + 22] = UInt8(ascii: "Z") }
        }
        expectCheckpointError(path, ["\"f32.weight\"", "storage entry \"plain_state_dict/data/0\" is missing"]) {
            try TorchCheckpointReader(path: path)
        }
    }

    @Test func storageTooSmall() throws {
        // Shrink the recorded size of storage 0 (12 floats) to one float.
        let path = try corrupted("plain_state_dict.pt", as: "small.pt") { bytes in
            let header = try #require(ckptCentralDirectoryHeader(bytes, named: "plain_state_dict/data/0"))
            for field in [20, 24] { bytes[(header + field)..<(header + field + 4)] = [4, 0, 0, 0] }
        }
        expectCheckpointError(path, ["\"f32.weight\"", "has only 4 bytes"]) { try TorchCheckpointReader(path: path) }
    }

    @Test func compressedEntry() throws {
        let path = try corrupted("plain_state_dict.pt", as: "deflated.pt") { bytes in
            let header = try #require(ckptCentralDirectoryHeader(bytes, named: "plain_state_dict/data.pkl"))
            bytes[header + 10] = 8  // method: deflate
        }
        expectCheckpointError(path, ["plain_state_dict/data.pkl", "compressed (deflate)"]) { try TorchCheckpointReader(path: path) }
    }

    @Test func bigEndianArchive() throws {
        let archive = try ZipArchive(path: ckptFixture("plain_state_dict.pt"))
        let start = try archive.dataOffset(of: try #require(archive.entry(named: "plain_state_dict/byteorder")))
        let path = try corrupted("plain_state_dict.pt", as: "big.pt") { bytes in
            bytes[start..<(start + 6)] = ArraySlice(Array("big   ".utf8))
        }
        expectCheckpointError(path, ["byteorder is \"big\"", "little-endian"]) { try TorchCheckpointReader(path: path) }
    }

    @Test func noStateDict() throws {
        let path = ckptFixture("no_state_dict.pt")
        expectCheckpointError(path, ["no state dict found", "\"epoch\""]) { try TorchCheckpointReader(path: path) }
    }
}

// MARK: - The restricted unpickler, on pickles written by CPython's pickle module

@Suite struct CheckpointUnpicklerTests {
    private func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            out.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        return out
    }

    // pickle.dumps({'x': 42, 'y': [1.5, True, None], 'z': (1,), 'big': 2**70, 'neg': -300, 's': {3}, 'b': b'ab',
    //               'f': frozenset([7]), 'ns': argparse.Namespace(a=1), 'od': OrderedDict([('k', 2)]),
    //               'i32': -5, 'u16': 60000}, protocol=P)
    static let protocol0 = "286470300a56780a70310a4934320a7356790a70320a286c70330a46312e350a614930310a614e6173567a0a70340a2849310a7470350a73566269670a70360a4c313138303539313632303731373431313330333432344c0a73566e65670a70370a492d3330300a7356730a70380a635f5f6275696c74696e5f5f0a7365740a70390a28286c7031300a49330a61747031310a527031320a7356620a7031330a635f636f646563730a656e636f64650a7031340a285661620a7031350a566c6174696e310a7031360a747031370a527031380a7356660a7031390a635f5f6275696c74696e5f5f0a66726f7a656e7365740a7032300a28286c7032310a49370a61747032320a527032330a73566e730a7032340a63636f70795f7265670a5f7265636f6e7374727563746f720a7032350a286361726770617273650a4e616d6573706163650a7032360a635f5f6275696c74696e5f5f0a6f626a6563740a7032370a4e747032380a527032390a28647033300a56610a7033310a49310a736273566f640a7033320a63636f6c6c656374696f6e730a4f726465726564446963740a7033330a2874527033340a566b0a7033350a49320a7373566933320a7033360a492d350a73567531360a7033370a4936303030300a732e"
    static let protocol2 = "80027d71002858010000007871014b2a58010000007971025d710328473ff8000000000000884e6558010000007a71044b01857105580300000062696771068a0900000000000000004058030000006e656771074ad4feffff5801000000737108635f5f6275696c74696e5f5f0a7365740a71095d710a4b036185710b52710c580100000062710d635f636f646563730a656e636f64650a710e58020000006162710f58060000006c6174696e3171108671115271125801000000667113635f5f6275696c74696e5f5f0a66726f7a656e7365740a71145d71154b076185711652711758020000006e7371186361726770617273650a4e616d6573706163650a71192981711a7d711b580100000061711c4b01736258020000006f64711d63636f6c6c656374696f6e730a4f726465726564446963740a711e2952711f58010000006b71204b0273580300000069333271214afbffffff580300000075313671224d60ea752e"
    static let protocol5 = "800595ca000000000000007d94288c0178944b2a8c0179945d9428473ff8000000000000884e658c017a944b0185948c03626967948a090000000000000000408c036e6567944ad4feffff8c0173948f94284b03908c01629443026162948c016694284b0791948c026e73948c086172677061727365948c094e616d6573706163659493942981947d948c0161944b0173628c026f64948c0b636f6c6c656374696f6e73948c0b4f726465726564446963749493942952948c016b944b02738c03693332944afbffffff8c03753136944d60ea752e"

    @Test func protocol0TextOpcodes() throws {
        #expect(try describePickle(bytes(Self.protocol0)) ==
            "{'x': 42, 'y': [1.5, True, None], 'z': (1,), 'big': <12-byte int>, 'neg': -300, 's': <__builtin__.set>, "
            + "'b': <_codecs.encode>, 'f': <__builtin__.frozenset>, 'ns': <copy_reg._reconstructor>, 'od': {'k': 2}, "
            + "'i32': -5, 'u16': 60000}")
    }

    @Test func protocol2() throws {
        #expect(try describePickle(bytes(Self.protocol2)) ==
            "{'x': 42, 'y': [1.5, True, None], 'z': (1,), 'big': <9-byte int>, 'neg': -300, 's': <__builtin__.set>, "
            + "'b': <_codecs.encode>, 'f': <__builtin__.frozenset>, 'ns': <argparse.Namespace>, 'od': {'k': 2}, "
            + "'i32': -5, 'u16': 60000}")
    }

    @Test func protocol5FramesAndMemoize() throws {
        #expect(try describePickle(bytes(Self.protocol5)) ==
            "{'x': 42, 'y': [1.5, True, None], 'z': (1,), 'big': <9-byte int>, 'neg': -300, 's': set(3), "
            + "'b': b<2 bytes>, 'f': set(7), 'ns': <argparse.Namespace>, 'od': {'k': 2}, 'i32': -5, 'u16': 60000}")
    }

    @Test func torchPickleShowsTensors() throws {
        let archive = try ZipArchive(path: ckptFixture("plain_state_dict.pt"))
        let pickle = try archive.contents(of: try #require(archive.entry(named: "plain_state_dict/data.pkl")))
        let text = try describePickle(Array(pickle))
        #expect(text.hasPrefix("{'f32.weight': tensor(float32, [3, 4], storage '0')"))
        #expect(text.contains("'transposed': tensor(float32, [5, 3], storage '8' stride [1, 5])"))
        #expect(text.contains("'shared.b': tensor(float32, [3, 4], storage '10' +10)"))
    }

    @Test func errorsNameTheByte() {
        #expect(ckptErrorMessage { try describePickle([0x80, 0x02, 0xFF]) } == "corrupt pickle: unknown opcode 0xFF at byte 2")
        #expect(ckptErrorMessage { try describePickle([0x80, 0x02, 0x4E, 0x30, 0x30, 0x2E]) }.contains("POP without a MARK at byte 4"))
        #expect(ckptErrorMessage { try describePickle([0x80, 0x02, 0x2E]) } == "corrupt pickle: stack underflow (STOP) at byte 2")
        #expect(ckptErrorMessage { try describePickle([0x80, 0x02, 0x6A, 1, 0, 0, 0]) } == "corrupt pickle: memo key 1 missing at byte 2")
        #expect(ckptErrorMessage { try describePickle([0x80, 0x02, 0x58, 0xFF, 0, 0, 0, 0x61]) }.contains("truncated data"))
        #expect(ckptErrorMessage { try describePickle([0x80, 0x05, 0x95, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0]) }.contains("runs past the end"))
        #expect(ckptErrorMessage { try describePickle([0x80, 0x02, 0x4E]) } == "corrupt pickle: data ends without STOP (truncated) at byte 3")
        #expect(ckptErrorMessage { try describePickle([0x80, 0x02, 0x4B, 0, 0x4B, 1, 0x4B, 2, 0x73, 0x2E]) }.contains("not a dict"))
        #expect(ckptErrorMessage { try describePickle([0x80, 0x05, 0x97, 0x2E]) }.contains("out-of-band"))
    }

    @Test func unknownClassesBecomePlaceholders() throws {
        // c subprocess\ncall\n (S'rm -rf /'\n tR  — never executed, just a placeholder; BUILD on it is ignored.
        let evil = Array("csubprocess\ncall\n(S'rm -rf /'\ntR}bN}b.".utf8)
        #expect(try describePickle(evil) == "None")
        let kept = Array("(csubprocess\ncall\n(S'x'\ntR}bl.".utf8)
        #expect(try describePickle(kept) == "[<subprocess.call>]")
    }
}
