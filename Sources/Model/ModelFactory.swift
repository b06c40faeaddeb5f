import Foundation

/// Makes model directories with random weights: the full-size Sen1Floods11 architecture for
/// benchmarks, and small models of the same family for demos and tests. Hub downloads are not
/// always possible, and the real loading code must still be exercised on real files.
public enum ModelFactory {
    /// Architecture of a generated model; defaults are the published Prithvi-EO-2.0-300M-TL
    /// Sen1Floods11 fine-tune.
    public struct Spec: Sendable {
        public var backbone = "prithvi_eo_v2_300_tl"
        public var embedDim = 1024
        public var depth = 24
        public var heads = 16
        public var neckIndices = [5, 11, 17, 23]
        public var decoderChannels = 256
        public var numClasses = 2
        public var seed: UInt64 = 0
        public init() {}

        /// A small model of the same family (seconds per scene on a laptop).
        public static var small: Spec {
            var spec = Spec()
            spec.embedDim = 128; spec.depth = 4; spec.heads = 4; spec.neckIndices = [0, 1, 2, 3]; spec.decoderChannels = 64
            return spec
        }
    }

    static let sen1floods11Means: [Double] = [0.1412956, 0.13795798, 0.12353792, 0.30902815, 0.2044958, 0.11912015]
    static let sen1floods11Stds: [Double] = [0.07406382, 0.07370365, 0.08692279, 0.11798815, 0.09772074, 0.07659938]

    /// The vLLM/TerraTorch `config.json` for `spec` (Sen1Floods11 data module and plugin settings).
    public static func configJSON(_ spec: Spec) -> [String: Any] {
        let modelArgs: [String: Any] = [
            "backbone": spec.backbone,
            "backbone_pretrained": false,
            "backbone_embed_dim": spec.embedDim,
            "backbone_depth": spec.depth,
            "backbone_num_heads": spec.heads,
            "backbone_bands": ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"],
            "necks": [["name": "SelectIndices", "indices": spec.neckIndices], ["name": "ReshapeTokensToImage"]],
            "decoder": "UperNetDecoder",
            "decoder_channels": spec.decoderChannels,
            "decoder_scale_modules": true,
            "head_dropout": 0.1,
            "num_classes": spec.numClasses,
            "rescale": true,
        ]
        let pretrained: [String: Any] = [
            "seed_everything": 0,
            "input": [
                "target": "pixel_values",
                "data": [
                    "pixel_values": ["type": "torch.Tensor", "shape": [6, 512, 512]],
                    "location_coords": ["type": "torch.Tensor", "shape": [1, 2]],
                ],
            ],
            "model": [
                "class_path": "terratorch.tasks.SemanticSegmentationTask",
                "init_args": [
                    "model_args": modelArgs,
                    "model_factory": "EncoderDecoderFactory",
                    "loss": "ce",
                    "ignore_index": -1,
                    "tiled_inference_parameters": ["h_crop": 512, "w_crop": 512, "h_stride": 496, "w_stride": 496, "average_patches": true],
                ] as [String: Any],
            ],
            "data": [
                "class_path": "terratorch.datamodules.Sen1Floods11NonGeoDataModule",
                "init_args": [
                    "batch_size": 16,
                    "constant_scale": 0.0001,
                    "no_data_replace": 0,
                    "no_label_replace": -1,
                    "bands": [1, 2, 3, 8, 11, 12],
                    "test_transform": [
                        ["class_path": "albumentations.Resize", "init_args": ["height": 448, "width": 448]],
                        ["class_path": "albumentations.pytorch.ToTensorV2"],
                    ],
                    "means": sen1floods11Means,
                    "stds": sen1floods11Stds,
                ] as [String: Any],
            ],
        ]
        return ["architectures": ["Terratorch"], "num_classes": 0, "pretrained_cfg": pretrained]
    }

    /// Writes `config.json` and `model.safetensors` (random weights, seeded) into `directory`.
    /// Returns the number of parameters written.
    @discardableResult
    public static func create(_ spec: Spec, in directory: String) throws -> Int {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let json = configJSON(spec)
        let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
        let configPath = directory + "/config.json"
        try data.write(to: URL(fileURLWithPath: configPath), options: .atomic)
        let config = try ModelConfig.parse(json, source: configPath)
        let tensors = PrithviSegmentationModel.requiredTensors(for: config)
        let metadata = ["format": "pt", "generator": "prithvi-mpi ModelFactory", "seed": "\(spec.seed)", "weights": "random"]
        try SafetensorsWriter.write(to: directory + "/model.safetensors", tensors: tensors, metadata: metadata) { index, values in
            fill(values, name: tensors[index].name, shape: tensors[index].shape, seed: spec.seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        }
        return tensors.reduce(0) { $0 + $1.shape.reduce(1, *) }
    }

    /// Plausible random values: unit-ish norms and BatchNorm statistics, fan-in scaled weights
    /// (activations stay O(1), no denormals to slow the arithmetic), small biases.
    static func fill(_ values: UnsafeMutableBufferPointer<Float>, name: String, shape: [Int], seed: UInt64) {
        var state = seed | 1
        func uniform() -> Float {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Float((z ^ (z >> 31)) >> 40) / Float(1 << 24) * 2 - 1
        }
        let isNorm = name.contains("norm") || name.hasSuffix(".fpn1.1.weight") || name.hasSuffix(".fpn1.1.bias")
        let fanIn = max(1, shape.dropFirst().reduce(1, *))
        let spread: Float
        var offset: Float = 0
        if name.hasSuffix("running_var") {
            spread = 0.25; offset = 1
        } else if name.hasSuffix("scale") {
            spread = 0; offset = 0.1
        } else if isNorm && name.hasSuffix(".weight") {
            spread = 0.1; offset = 1
        } else if name.hasSuffix("bias") || name.hasSuffix("running_mean") || name.hasSuffix("cls_token") {
            spread = 0.02
        } else {
            spread = (3 / Float(fanIn)).squareRoot()  // uniform with variance 1/fan_in
        }
        for i in values.indices { values[i] = offset + spread * uniform() }
    }
}
