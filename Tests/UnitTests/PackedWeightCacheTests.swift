import Foundation
import Model
import Tensor
import TestSupport
import Testing

/// The packed-weight cache on real files: built beside the checkpoint on first load, mapped on
/// the next, rebuilt when the checkpoint changes or the file is damaged, elsewhere when asked, in
/// memory when nowhere is writable; two loads at once build it once. The logits are bitwise the
/// same whichever way the weights came.
@Suite struct PackedWeightCacheTests {
    /// A copy of the tiny_tl parity fixture in a directory of its own.
    static func model() throws -> TemporaryDirectory {
        let dir = TemporaryDirectory("packed-cache")
        for name in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(atPath: ModelLoadingTests.fixture + "/" + name, toPath: dir.file(name))
        }
        return dir
    }

    static func load(_ dir: String, _ environment: [String: String] = [:]) throws -> (report: String, logits: [Float]) {
        let model = try PrithviSegmentationModel(directory: dir, environment: environment)
        var random = SeededRandom(seed: 3)
        let pixels = random.array(6 * 32 * 32)
        var logits = [Float](repeating: 0, count: model.config.numClasses * 32 * 32)
        try model.forward(pixels, images: 1, height: 32, width: 32, into: &logits, scratch: Scratch())
        return (model.packingReport, logits)
    }

    static let reference: [Float] = {
        let dir = try! model()
        return try! load(dir.path, ["PRITHVI_WEIGHT_CACHE": "off"]).logits
    }()

    @Test func builtOnFirstLoadThenMapped() throws {
        let dir = try Self.model()
        let cache = dir.file(".model.safetensors.packed")
        let first = try Self.load(dir.path)
        #expect(first.report.contains("built \(cache)"), "\(first.report)")
        #expect(FileManager.default.fileExists(atPath: cache))
        let second = try Self.load(dir.path)
        #expect(second.report == "packed weights: mapped \(cache)")
        #expect(first.logits == Self.reference && second.logits == Self.reference)
        // Nothing else is left beside the model (no temporary file).
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == [".model.safetensors.packed", "config.json", "model.safetensors"])
    }

    @Test func aChangedCheckpointOrADamagedFileIsRebuilt() throws {
        let dir = try Self.model()
        let cache = dir.file(".model.safetensors.packed")
        _ = try Self.load(dir.path)
        // Same bytes, new mtime: another checkpoint as far as the cache can tell.
        let later = Date().addingTimeInterval(60)
        try FileManager.default.setAttributes([.modificationDate: later], ofItemAtPath: dir.file("model.safetensors"))
        let touched = try Self.load(dir.path)
        #expect(touched.report.contains("built \(cache)"), "\(touched.report)")
        // Truncated, then garbage: never trusted, rebuilt.
        let size = try #require(try FileManager.default.attributesOfItem(atPath: cache)[.size] as? Int)
        let handle = try #require(FileHandle(forUpdatingAtPath: cache))
        try handle.truncate(atOffset: UInt64(size / 2))
        try handle.close()
        let truncated = try Self.load(dir.path)
        #expect(truncated.report.contains("built \(cache)"), "\(truncated.report)")
        try Data(repeating: 0x41, count: 10_000).write(to: URL(fileURLWithPath: cache))
        let garbage = try Self.load(dir.path)
        #expect(garbage.report.contains("built \(cache)"), "\(garbage.report)")
        #expect([touched, truncated, garbage].allSatisfy { $0.logits == Self.reference })
    }

    /// An index that claims a 2⁴⁰ × 2⁴⁰ matrix (whose size overflows) or one past the file's end is
    /// not trusted, and nothing traps: the cache is rebuilt.
    @Test func anIndexClaimingTooMuchIsRebuilt() throws {
        let dir = try Self.model()
        let cache = dir.file(".model.safetensors.packed")
        _ = try Self.load(dir.path)
        for edit in [["n": 1 << 40, "k": 1 << 40], ["offset": 1 << 30]] {
            var bytes = try Data(contentsOf: URL(fileURLWithPath: cache))
            let offset = bytes[8..<16].withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
            let length = bytes[16..<24].withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
            var footer = try #require(try JSONSerialization.jsonObject(with: bytes[offset..<(offset + length)]) as? [String: Any])
            var entries = try #require(footer["entries"] as? [[String: Any]])
            for (key, value) in edit { entries[0][key] = value }
            footer["entries"] = entries
            let edited = try JSONSerialization.data(withJSONObject: footer)
            bytes = bytes[0..<offset] + edited
            withUnsafeBytes(of: UInt64(edited.count).littleEndian) { bytes.replaceSubrange(16..<24, with: $0) }
            try bytes.write(to: URL(fileURLWithPath: cache))
            let loaded = try Self.load(dir.path)
            #expect(loaded.report.contains("built \(cache)"), "\(edit): \(loaded.report)")
            #expect(loaded.logits == Self.reference)
        }
    }

    /// A preamble whose offsets have the top bit set (≥ 2⁶³ as integers) is rebuilt, not a trap.
    @Test func aPreambleBeyondAnyIntegerIsRebuilt() throws {
        let dir = try Self.model()
        let cache = dir.file(".model.safetensors.packed")
        _ = try Self.load(dir.path)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: cache))
        bytes[15] |= 0x80
        try bytes.write(to: URL(fileURLWithPath: cache))
        let loaded = try Self.load(dir.path)
        #expect(loaded.report.contains("built \(cache)"), "\(loaded.report)")
    }

    /// A load that fails (the config does not fit the weights) publishes no cache and leaves no
    /// temporary or lock: the next, fitting load builds the whole cache at once.
    @Test func aFailedLoadLeavesNoCache() throws {
        let dir = try Self.model()
        let config = dir.file("config.json")
        let good = try String(contentsOfFile: config, encoding: .utf8)
        try good.replacingOccurrences(of: "\"num_classes\": 2", with: "\"num_classes\": 5").write(toFile: config, atomically: true, encoding: .utf8)
        #expect(throws: (any Error).self) { try PrithviSegmentationModel(directory: dir.path, environment: [:]) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["config.json", "model.safetensors"])
        try good.write(toFile: config, atomically: true, encoding: .utf8)
        let loaded = try Self.load(dir.path)
        #expect(loaded.report.contains("packed weights: built") && !loaded.report.contains("missing"), "\(loaded.report)")
        #expect(loaded.logits == Self.reference)
    }

    @Test func anotherDirectoryOrMemoryWhenAsked() throws {
        let dir = try Self.model()
        let elsewhere = TemporaryDirectory("packed-elsewhere")
        let placed = try Self.load(dir.path, ["PRITHVI_WEIGHT_CACHE": elsewhere.path])
        let files = try FileManager.default.contentsOfDirectory(atPath: elsewhere.path)
        #expect(files.count == 1 && files[0].hasSuffix("-model.safetensors.packed"), "\(files)")
        #expect(placed.report.contains("built \(elsewhere.path)/"), "\(placed.report)")
        #expect(!FileManager.default.fileExists(atPath: dir.file(".model.safetensors.packed")))
        // A place that cannot be created: the weights are packed in memory and the report says why.
        let nowhere = try Self.load(dir.path, ["PRITHVI_WEIGHT_CACHE": "/proc/no-such-directory"])
        #expect(nowhere.report.hasPrefix("packed weights: in this process's memory (no writable cache directory: /proc/no-such-directory"), "\(nowhere.report)")
        #expect(placed.logits == Self.reference && nowhere.logits == Self.reference)
    }

    @Test func twoLoadsAtOnceBuildItOnce() async throws {
        let dir = try Self.model()
        let path = dir.path
        let results = try await withThrowingTaskGroup(of: (report: String, logits: [Float]).self) { group in
            for _ in 0..<3 { group.addTask { try Self.load(path) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let built = results.filter { $0.report.contains("packed weights: built") }
        #expect(built.count == 1, "\(results.map(\.report))")
        #expect(results.allSatisfy { $0.logits == Self.reference })
    }
}
