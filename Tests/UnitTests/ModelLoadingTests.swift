import Foundation
import Model
import Tensor
import TestSupport
import Testing

/// Model directories that cannot run fail with one clear message each.
@Suite struct ModelLoadingTests {
    static let fixture = repositoryRoot + "/Tests/Fixtures/parity/tiny_tl"

    /// A copy of the tiny_tl fixture (config.json + one weights file) to break.
    static func copyOfFixture(weights: String = "model.safetensors") throws -> TemporaryDirectory {
        let dir = TemporaryDirectory("model")
        for name in ["config.json", weights] {
            try FileManager.default.copyItem(atPath: fixture + "/" + name, toPath: dir.file(name))
        }
        return dir
    }

    static func loadError(_ directory: String) -> String? {
        do {
            _ = try PrithviSegmentationModel(directory: directory)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func directoryWithoutConfig() throws {
        let dir = try Self.copyOfFixture()
        try FileManager.default.removeItem(atPath: dir.file("config.json"))
        #expect(Self.loadError(dir.path)?.contains("no config.json or config.yaml") == true)
    }

    @Test func directoryWithoutWeights() throws {
        let dir = try Self.copyOfFixture()
        try FileManager.default.removeItem(atPath: dir.file("model.safetensors"))
        #expect(Self.loadError(dir.path)?.contains("no weights") == true)
    }

    @Test func configWhoseDimensionsDoNotMatchTheWeights() throws {
        let dir = try Self.copyOfFixture()
        var text = try String(contentsOfFile: dir.file("config.json"), encoding: .utf8)
        text = text.replacingOccurrences(of: "\"backbone_embed_dim\": 32", with: "\"backbone_embed_dim\": 48")
        try text.write(toFile: dir.file("config.json"), atomically: true, encoding: .utf8)
        let message = try #require(Self.loadError(dir.path))
        #expect(message.contains("does not fit the model config"), "\(message)")
        #expect(message.contains("encoder.patch_embed.proj.weight has shape [32, 6, 1, 16, 16], expected [48, 6, 1, 16, 16]"), "\(message)")
    }

    @Test func unsupportedConfigValuesNameTheirKey() throws {
        let dir = try Self.copyOfFixture()
        let original = try String(contentsOfFile: dir.file("config.json"), encoding: .utf8)
        let cases: [(String, String, String)] = [
            ("\"decoder\": \"UperNetDecoder\"", "\"decoder\": \"FCNDecoder\"", "decoder 'FCNDecoder' is not supported"),
            ("\"backbone\": \"prithvi_eo_v2_300_tl\"", "\"backbone\": \"resnet50\"", "backbone 'resnet50' is not supported"),
            ("\"num_classes\": 2", "\"num_classes\": 2, \"peft_config\": {}", "peft_config is not supported"),
            ("\"backbone_num_heads\": 2", "\"backbone_num_heads\": 3", "must be a positive multiple of backbone_num_heads"),
        ]
        for (find, replace, expected) in cases {
            #expect(original.contains(find), "fixture lacks \(find)")
            try original.replacingOccurrences(of: find, with: replace).write(toFile: dir.file("config.json"), atomically: true, encoding: .utf8)
            let message = Self.loadError(dir.path) ?? "loaded"
            #expect(message.contains(expected), "\(message)")
        }
        try "{ not json".write(toFile: dir.file("config.json"), atomically: true, encoding: .utf8)
        #expect(Self.loadError(dir.path)?.contains("not valid JSON") == true)
    }

    @Test func truncatedSafetensors() throws {
        let dir = try Self.copyOfFixture()
        let data = try Data(contentsOf: URL(fileURLWithPath: dir.file("model.safetensors")))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: dir.file("model.safetensors")))
        let message = try #require(Self.loadError(dir.path))
        #expect(message.contains("model.safetensors"), "\(message)")
        #expect(message.lowercased().contains("truncated") || message.contains("past the end"), "\(message)")
    }

    @Test func corruptPickle() throws {
        let dir = try Self.copyOfFixture(weights: "checkpoint.pt")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file("checkpoint.pt"))))
        // Overwrite the start of data.pkl (just after its local header) with an unknown opcode.
        let name = Array("checkpoint/data.pkl".utf8)
        let start = try #require((0..<(bytes.count - name.count)).first { bytes[$0..<($0 + name.count)].elementsEqual(name) })
        let extra = Int(bytes[start - 2]) | Int(bytes[start - 1]) << 8
        let data = start + name.count + extra
        bytes[data + 2] = 0xFF  // after PROTO 2
        try Data(bytes).write(to: URL(fileURLWithPath: dir.file("checkpoint.pt")))
        let message = try #require(Self.loadError(dir.path))
        #expect(message.contains("checkpoint.pt"), "\(message)")
        #expect(message.contains("opcode"), "\(message)")
    }

    @Test func factoryModelsNeedExactlyTerraTorchsTensors() throws {
        // The tensors the loader asks for are the fixture's TerraTorch state dict, minus buffers
        // that are computed (pos_embed) or unused at inference (num_batches_tracked).
        let config = try ModelConfig.load(directory: Self.fixture)
        let required = Set(PrithviSegmentationModel.requiredTensors(for: config).map(\.name))
        let stored = Set(try SafetensorsReader(path: Self.fixture + "/model.safetensors").tensorNames)
            .filter { !$0.hasSuffix("num_batches_tracked") }
        #expect(required == stored)
    }

    @Test func factoryModelLoadsAndRuns() throws {
        let dir = TemporaryDirectory("factory")
        var spec = ModelFactory.Spec.small
        spec.embedDim = 32; spec.heads = 2; spec.depth = 2; spec.neckIndices = [0, 1, 1, 1]; spec.decoderChannels = 16
        let parameters = try ModelFactory.create(spec, in: dir.path)
        let model = try PrithviSegmentationModel(directory: dir.path)
        #expect(model.unusedTensors.isEmpty)
        #expect(parameters > 0)
        let pixels = [Float](repeating: 0.1, count: 6 * 224 * 224)
        var logits = [Float](repeating: .nan, count: 2 * 224 * 224)
        try model.forward(pixels, images: 1, height: 224, width: 224, location: [-0.4, 39.5], into: &logits, scratch: Scratch())
        #expect(logits.allSatisfy { $0.isFinite })
        #expect(model.config.preprocessing.passesLocation)
        #expect(abs(model.config.preprocessing.trainingScale - 8.0 / 7.0) < 1e-12)
    }
}
