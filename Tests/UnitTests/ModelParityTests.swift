import Foundation
import Model
import Tensor
import TestSupport
import Testing

/// The forward pass against TerraTorch, stage by stage, on the committed fixtures
/// (scripts/fixtures/make_parity_fixtures.py; Tests/Fixtures/parity/README.md).
@Suite struct ModelParityTests {
    struct Fixture: CustomTestStringConvertible, Sendable {
        let name: String
        let weights: String
        let seed: UInt32
        var testDescription: String { "\(name)/\(weights)" }
        var directory: String { repositoryRoot + "/Tests/Fixtures/parity/" + name }
    }

    static let fixtures = [
        Fixture(name: "tiny_tl", weights: "model.safetensors", seed: 1),
        Fixture(name: "tiny_tl", weights: "checkpoint.pt", seed: 1),
        Fixture(name: "small_plain", weights: "model.safetensors", seed: 2),
        Fixture(name: "small_plain", weights: "small_plain_epoch3.ckpt", seed: 2),
    ]

    /// The fixture input, regenerated bit-exactly (lowbias32 hash of the flat index).
    static func input(seed: UInt32, count: Int) -> [Float] {
        (0..<count).map { k in
            var x = UInt32(truncatingIfNeeded: UInt64(k) &+ UInt64(seed) &* 0x9E37_79B9)
            x ^= x >> 16; x = x &* 0x7FEB_352D
            x ^= x >> 15; x = x &* 0x846C_A68B
            x ^= x >> 16
            return Float(x >> 8) / Float(1 << 24) * 4 - 2
        }
    }

    static func expected(_ reader: SafetensorsReader, _ name: String) throws -> (values: [Float], shape: [Int]) {
        let tensor = try reader.tensor(name)
        return (Array(tensor.values), tensor.shape)
    }

    @Test(arguments: fixtures)
    func everyStageMatchesTerraTorch(_ fixture: Fixture) throws {
        let config = try ModelConfig.load(directory: fixture.directory)
        let model = try PrithviSegmentationModel(config: config, reader: try openCheckpoint(fixture.directory + "/" + fixture.weights))
        let reference = try SafetensorsReader(path: fixture.directory + "/expected.safetensors")
        let c = config.encoder
        let images = 2, side = 224
        let pixels = Self.input(seed: fixture.seed, count: images * c.inChannels * side * side)
        #expect(Array(pixels.prefix(64)) == (try Self.expected(reference, "input_head").values), "input generator differs")

        let location = c.locationEncoding ? try Self.expected(reference, "location_coords").values : nil
        let temporal = c.temporalEncoding ? try Self.expected(reference, "temporal_coords").values : nil
        var traced: [String: (values: [Float], shape: [Int])] = [:]
        var logits = [Float](repeating: 0, count: images * config.numClasses * side * side)
        try model.forward(pixels, images: images, height: side, width: side, location: location, temporal: temporal,
                          into: &logits, scratch: Scratch()) { name, values, shape in
            // Decoder stages are traced once per image: concatenate along the batch.
            if let previous = traced[name] {
                traced[name] = (previous.values + values, [previous.shape[0] + shape[0]] + shape.dropFirst())
            } else {
                traced[name] = (values, shape)
            }
        }

        // Position embedding: computed here, TerraTorch's buffer in the fixture.
        let positions = PositionEncoding.sinCos3D(embedDim: c.embedDim, height: c.gridSize, width: c.gridSize)
        #expect(maxAbsoluteError(positions, try Self.expected(reference, "encoder.pos_embed").values) < 1e-6)

        var stages = ["encoder.patch_tokens"] + (0..<c.depth).map { "encoder.features.\($0)" }
        stages += (0..<4).map { "decoder.scaled.\($0)" } + (0..<3).map { "decoder.laterals.\($0)" }
        stages += ["decoder.psp", "decoder.output", "head.output", "logits"]
        for stage in stages {
            var ours = try #require(traced[stage], "no trace of \(stage)")
            var (values, shape) = try Self.expected(reference, stage)
            // The fixture keeps decoder stages for image 0 only.
            if shape[0] == 1, ours.shape[0] == images {
                ours = (Array(ours.values.prefix(ours.values.count / images)), [1] + ours.shape.dropFirst())
            }
            // Maps are NCHW in PyTorch and channels-last here.
            if shape.count == 4, stage != "logits" {
                values = planarToChannelsLast(values, images: shape[0], channels: shape[1], height: shape[2], width: shape[3])
                shape = [shape[0], shape[2], shape[3], shape[1]]
            }
            #expect(ours.shape == shape, "\(stage): shape \(ours.shape) vs \(shape)")
            let error = normalisedMaxError(ours.values, values)
            #expect(error <= 1e-4, "\(stage): normalised max error \(error)")
        }

        // The final logits and their argmax, from the output buffer itself.
        let expectedLogits = try Self.expected(reference, "logits").values
        #expect(normalisedMaxError(logits, expectedLogits) <= 1e-4)
        let classes = config.numClasses, plane = side * side
        var disagreements = 0
        for image in 0..<images {
            for p in 0..<plane {
                func argmax(_ v: [Float]) -> Int { (0..<classes).max { v[(image * classes + $0) * plane + p] < v[(image * classes + $1) * plane + p] }! }
                if argmax(logits) != argmax(expectedLogits) { disagreements += 1 }
            }
        }
        #expect(disagreements == 0, "\(disagreements) pixels with a different class")
    }

    @Test func jsonAndYamlConfigsAgree() throws {
        let directory = repositoryRoot + "/Tests/Fixtures/parity/small_plain"
        let fromJSON = try ModelConfig.load(directory: directory)
        let temporary = TemporaryDirectory()
        try FileManager.default.copyItem(atPath: directory + "/config.yaml", toPath: temporary.file("config.yaml"))
        let fromYAML = try ModelConfig.load(directory: temporary.path)
        #expect(fromJSON.encoder == fromYAML.encoder)
        #expect(fromJSON.decoder == fromYAML.decoder)
        #expect(fromJSON.neckIndices == [1, 2, 3, 4], "negative SelectIndices count from the end")
        #expect(fromJSON.numClasses == 3 && fromYAML.numClasses == 3)
        #expect(fromJSON.preprocessing.means == fromYAML.preprocessing.means)
        #expect(fromJSON.preprocessing.resizeTo == 448)
        #expect(abs(fromJSON.preprocessing.trainingScale - 512.0 / 448.0) < 1e-12)
    }
}

/// Inputs other than 224 (the vLLM plugin runs 448): reflect padding to a multiple of 32 and the
/// bicubic-interpolated position embedding, against TerraTorch (scripts/fixtures/make_plugin_fixtures.py).
@Suite struct LargerInputParityTests {
    /// x[c, y, x] = sin(0.05·(c+1)·x + 0.3·c) + cos(0.07·y − 0.2·c), computed in Double as numpy does.
    static func formulaInput(channels: Int, side: Int) -> [Float] {
        var values = [Float](repeating: 0, count: channels * side * side)
        for c in 0..<channels {
            for y in 0..<side {
                for x in 0..<side {
                    values[(c * side + y) * side + x] = Float(sin(0.05 * Double(c + 1) * Double(x) + 0.3 * Double(c)) + cos(0.07 * Double(y) - 0.2 * Double(c)))
                }
            }
        }
        return values
    }

    @Test(arguments: [448, 512])
    func logitsMatchTerraTorch(side: Int) throws {
        let directory = repositoryRoot + "/Tests/Fixtures/parity/tiny_tl"
        let config = try ModelConfig.load(directory: directory)
        let model = try PrithviSegmentationModel(config: config, reader: try openCheckpoint(directory + "/model.safetensors"))
        let reference = try SafetensorsReader(path: repositoryRoot + "/Tests/Fixtures/plugin/tiny_tl-sizes.safetensors")
        let expected = try reference.tensor("logits_\(side)")
        let classes = config.numClasses
        var logits = [Float](repeating: 0, count: classes * side * side)
        try model.forward(Self.formulaInput(channels: 6, side: side), images: 1, height: side, width: side,
                          location: Array(try reference.tensor("location").values), into: &logits, scratch: Scratch())
        // The fixture keeps every 8th pixel of each class plane.
        let step = 8, kept = side / step
        var ours: [Float] = []
        for k in 0..<classes { for y in stride(from: 0, to: side, by: step) { for x in stride(from: 0, to: side, by: step) { ours.append(logits[(k * side + y) * side + x]) } } }
        #expect(expected.shape == [classes, kept, kept])
        let theirs = Array(expected.values)
        let scale = theirs.map { abs($0) }.max() ?? 1
        #expect(maxAbsoluteError(ours, theirs) / scale < 1e-4, "normalised error at \(side)")
    }
}
