import Foundation
import Yams

/// A model directory or config that this project cannot run, with the key at fault.
public struct ModelConfigError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Dimensions of the Prithvi ViT encoder.
public struct EncoderConfig: Equatable, Sendable {
    public var embedDim: Int
    public var depth: Int
    public var heads: Int
    public var patchSize: Int
    public var mlpHidden: Int
    public var inChannels: Int
    /// Side of the training input; the position embedding's grid is imageSize / patchSize.
    public var imageSize: Int
    public var locationEncoding: Bool
    public var temporalEncoding: Bool
    public var layerNormEps: Float = 1e-5

    public var gridSize: Int { imageSize / patchSize }
    public var headDim: Int { embedDim / heads }
}

/// UperNet decoder settings.
public struct DecoderConfig: Equatable, Sendable {
    public var channels: Int
    public var scaleModules: Bool
    public var poolScales: [Int]
    public var alignCorners: Bool
}

/// What the model expects of its input pixels (TerraTorch datamodule and the vLLM plugin).
public struct PreprocessingConfig: Equatable, Sendable {
    public var means: [Float]
    public var stds: [Float]
    /// `albumentations.Resize` target of the test transform (448 for Sen1Floods11), if any.
    public var resizeTo: Int?
    /// The plugin's crop (`tiled_inference_parameters.h_crop`, default 512).
    public var pluginCrop: Int
    /// Whether location coordinates are fed to the model (the plugin sends them only when the
    /// config's `input.data` declares `location_coords`).
    public var passesLocation: Bool

    /// Source pixels per model pixel at training time: crop ÷ resize target, 1 without a resize.
    public var trainingScale: Double { resizeTo.map { Double(pluginCrop) / Double($0) } ?? 1 }
}

/// Everything the forward pass and the pre-processing need, read from config.json or config.yaml.
public struct ModelConfig: Equatable, Sendable {
    public var backbone: String
    public var encoder: EncoderConfig
    /// Encoder block outputs fed to the decoder (SelectIndices), non-negative.
    public var neckIndices: [Int]
    public var decoder: DecoderConfig
    public var numClasses: Int
    /// Optional 3×3 conv + ReLU layers of the head before the 1×1 classifier.
    public var headChannelList: [Int]
    public var rescale: Bool
    public var bands: [String]
    public var preprocessing: PreprocessingConfig

    /// Known backbones: (embed, depth, heads, patch, location+time encodings).
    static let backbones: [String: (Int, Int, Int, Int, Bool)] = [
        "prithvi_eo_tiny": (256, 4, 4, 16, false),
        "prithvi_eo_v2_tiny_tl": (192, 12, 3, 16, true),
        "prithvi_eo_v2_100": (768, 12, 12, 16, false),
        "prithvi_eo_v2_100_tl": (768, 12, 12, 16, true),
        "prithvi_eo_v2_300": (1024, 24, 16, 16, false),
        "prithvi_eo_v2_300_tl": (1024, 24, 16, 16, true),
        "prithvi_eo_v2_600": (1280, 32, 16, 14, false),
        "prithvi_eo_v2_600_tl": (1280, 32, 16, 14, true),
    ]

    /// model_args keys that only matter for training or loading pretrained weights.
    static let ignoredModelArgs: Set<String> = [
        "backbone_pretrained", "backbone_ckpt_path", "backbone_drop_path", "backbone_pretrained_bands",
        "head_dropout", "backbone_mask_ratio", "backbone_mean", "backbone_std",
    ]

    /// Reads `config.json` (vLLM/TerraTorch form) or else `config.yaml` (TerraTorch Lightning form).
    public static func load(directory: String) throws -> ModelConfig {
        let json = directory + "/config.json"
        if FileManager.default.fileExists(atPath: json) {
            guard let data = FileManager.default.contents(atPath: json) else { throw ModelConfigError("\(json): unreadable") }
            let root: Any
            do { root = try JSONSerialization.jsonObject(with: data) } catch {
                throw ModelConfigError("\(json): not valid JSON (\(error.localizedDescription))")
            }
            return try parse(root, source: json)
        }
        let yamlNames = ["config.yaml", "config.yml"]
        for name in yamlNames {
            let path = directory + "/" + name
            guard FileManager.default.fileExists(atPath: path) else { continue }
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ModelConfigError("\(path): unreadable") }
            let root: Any?
            do { root = try Yams.load(yaml: text) } catch { throw ModelConfigError("\(path): not valid YAML (\(error))") }
            return try parse(root as Any, source: path)
        }
        throw ModelConfigError("\(directory): no config.json or config.yaml (is this a model directory?)")
    }

    /// Parses a config already decoded from JSON or YAML. `pretrained_cfg` (vLLM) is unwrapped.
    public static func parse(_ root: Any, source: String) throws -> ModelConfig {
        var reader = ConfigReader(source: source)
        guard var top = root as? [String: Any] else { throw ModelConfigError("\(source): the top level is not a mapping") }
        if let pretrained = top["pretrained_cfg"] {
            guard let unwrapped = pretrained as? [String: Any] else { throw reader.error("pretrained_cfg", "is not a mapping") }
            top = unwrapped
        }
        let model = try reader.dict(top, "model")
        let initArgs = try reader.dict(model, "init_args", path: "model")
        if let factory = initArgs["model_factory"] as? String, factory != "EncoderDecoderFactory" {
            throw reader.error("model.init_args.model_factory", "is \(factory); only EncoderDecoderFactory is supported")
        }
        var args = try reader.dict(initArgs, "model_args", path: "model.init_args")
        // backbone_kwargs / decoder_kwargs / head_kwargs dicts are the unprefixed form of the same keys.
        for prefix in ["backbone", "decoder", "head"] {
            if let kwargs = args.removeValue(forKey: "\(prefix)_kwargs") as? [String: Any] {
                for (key, value) in kwargs { args["\(prefix)_\(key)"] = value }
            }
        }
        reader.path = "model_args"

        let backbone = try reader.string(args, "backbone")
        guard let known = backbones[backbone] else {
            throw reader.error("backbone", "'\(backbone)' is not supported (known: \(backbones.keys.sorted().joined(separator: ", ")))")
        }
        let bands = try reader.optionalStringList(args, "backbone_bands") ?? ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]
        var encoder = EncoderConfig(
            embedDim: try reader.optionalInt(args, "backbone_embed_dim") ?? known.0,
            depth: try reader.optionalInt(args, "backbone_depth") ?? known.1,
            heads: try reader.optionalInt(args, "backbone_num_heads") ?? known.2,
            patchSize: try reader.patchSize(args) ?? known.3,
            mlpHidden: 0,
            inChannels: bands.count,
            imageSize: try reader.optionalInt(args, "backbone_img_size") ?? 224,
            locationEncoding: known.4, temporalEncoding: known.4)
        let mlpRatio = try reader.optionalDouble(args, "backbone_mlp_ratio") ?? 4
        encoder.mlpHidden = Int(Double(encoder.embedDim) * mlpRatio)
        if let coords = try reader.optionalStringList(args, "backbone_coords_encoding") {
            encoder.locationEncoding = coords.contains("location")
            encoder.temporalEncoding = coords.contains("time")
        }
        if let frames = try reader.optionalInt(args, "backbone_num_frames"), frames != 1 {
            throw reader.error("backbone_num_frames", "is \(frames); only single-frame models (1) are supported")
        }
        guard encoder.embedDim > 0, encoder.depth > 0, encoder.heads > 0, encoder.embedDim % encoder.heads == 0 else {
            throw reader.error("backbone_embed_dim", "\(encoder.embedDim) must be a positive multiple of backbone_num_heads \(encoder.heads)")
        }
        guard encoder.embedDim % 16 == 0 else {
            throw reader.error("backbone_embed_dim", "\(encoder.embedDim) must be a multiple of 16 (3-D sin-cos position embedding)")
        }
        guard encoder.imageSize % encoder.patchSize == 0 else {
            throw reader.error("backbone_img_size", "\(encoder.imageSize) is not a multiple of the patch size \(encoder.patchSize)")
        }

        let neckIndices = try reader.necks(args["necks"], depth: encoder.depth)
        let decoderName = try reader.string(args, "decoder")
        guard decoderName == "UperNetDecoder" else {
            throw reader.error("decoder", "'\(decoderName)' is not supported (only UperNetDecoder)")
        }
        let decoder = DecoderConfig(
            channels: try reader.optionalInt(args, "decoder_channels") ?? 256,
            scaleModules: try reader.optionalBool(args, "decoder_scale_modules") ?? false,
            poolScales: try reader.optionalIntList(args, "decoder_pool_scales") ?? [1, 2, 3, 6],
            alignCorners: try reader.optionalBool(args, "decoder_align_corners") ?? true)
        let numClasses = try reader.int(args, "num_classes")
        guard numClasses >= 1 else { throw reader.error("num_classes", "must be at least 1") }
        let headChannels = try reader.optionalIntList(args, "head_channel_list") ?? []
        let rescale = try reader.optionalBool(args, "rescale") ?? true

        let handled: Set<String> = [
            "backbone", "backbone_bands", "backbone_embed_dim", "backbone_depth", "backbone_num_heads", "backbone_patch_size",
            "backbone_img_size", "backbone_mlp_ratio", "backbone_coords_encoding", "backbone_num_frames", "backbone_coords_scale_learn",
            "necks", "decoder", "decoder_channels", "decoder_scale_modules", "decoder_pool_scales", "decoder_align_corners",
            "num_classes", "head_channel_list", "rescale",
        ]
        for key in args.keys.sorted() where !handled.contains(key) && !ignoredModelArgs.contains(key) {
            throw reader.error(key, "is not supported by this implementation")
        }

        reader.path = ""
        let preprocessing = try reader.preprocessing(top, initArgs: initArgs, channels: encoder.inChannels,
                                                     location: encoder.locationEncoding)
        return ModelConfig(backbone: backbone, encoder: encoder, neckIndices: neckIndices, decoder: decoder, numClasses: numClasses,
                           headChannelList: headChannels, rescale: rescale, bands: bands, preprocessing: preprocessing)
    }
}

/// Typed access to a decoded JSON/YAML tree with errors that name the file and the key.
struct ConfigReader {
    let source: String
    var path = ""

    func error(_ key: String, _ problem: String) -> ModelConfigError {
        let full = path.isEmpty || key.hasPrefix(path) ? key : "\(path).\(key)"
        return ModelConfigError("\(source): \(full) \(problem)")
    }

    func dict(_ parent: [String: Any], _ key: String, path: String = "") throws -> [String: Any] {
        let name = path.isEmpty ? key : "\(path).\(key)"
        guard let value = parent[key] else { throw ModelConfigError("\(source): missing \(name)") }
        guard let result = value as? [String: Any] else { throw ModelConfigError("\(source): \(name) is not a mapping") }
        return result
    }

    func string(_ parent: [String: Any], _ key: String) throws -> String {
        guard let value = parent[key] else { throw error(key, "is missing") }
        guard let text = value as? String else { throw error(key, "is not a string") }
        return text
    }

    /// Integers come as Int from YAML and NSNumber from JSON; floats with no fraction are accepted.
    static func integer(_ value: Any) -> Int? {
        if isBoolean(value) { return nil }
        if let int = value as? Int { return int }
        if let double = value as? Double, double.rounded() == double { return Int(double) }
        return nil
    }

    func int(_ parent: [String: Any], _ key: String) throws -> Int {
        guard let value = parent[key] else { throw error(key, "is missing") }
        guard let int = Self.integer(value) else { throw error(key, "is not an integer") }
        return int
    }

    func optionalInt(_ parent: [String: Any], _ key: String) throws -> Int? {
        guard let value = parent[key], !(value is NSNull) else { return nil }
        guard let int = Self.integer(value), int > 0 else { throw error(key, "is not a positive integer") }
        return int
    }

    func optionalDouble(_ parent: [String: Any], _ key: String) throws -> Double? {
        guard let value = parent[key], !(value is NSNull) else { return nil }
        if let int = Self.integer(value) { return Double(int) }
        guard let double = value as? Double else { throw error(key, "is not a number") }
        return double
    }

    /// JSON booleans decode to NSNumber on Linux, where `is Bool` also holds for 0 and 1:
    /// only a char-typed number (or a Swift Bool, from YAML) is a boolean.
    static func isBoolean(_ value: Any) -> Bool {
        if let number = value as? NSNumber { return String(cString: number.objCType) == "c" }
        return value is Bool
    }

    func optionalBool(_ parent: [String: Any], _ key: String) throws -> Bool? {
        guard let value = parent[key], !(value is NSNull) else { return nil }
        guard Self.isBoolean(value), let bool = value as? Bool else { throw error(key, "is not true or false") }
        return bool
    }

    func optionalIntList(_ parent: [String: Any], _ key: String) throws -> [Int]? {
        guard let value = parent[key], !(value is NSNull) else { return nil }
        guard let list = value as? [Any] else { throw error(key, "is not a list") }
        return try list.map { item in
            guard let int = Self.integer(item) else { throw error(key, "holds \(item), not an integer") }
            return int
        }
    }

    func optionalFloatList(_ parent: [String: Any], _ key: String) throws -> [Float]? {
        guard let value = parent[key], !(value is NSNull) else { return nil }
        guard let list = value as? [Any] else { throw error(key, "is not a list") }
        return try list.map { item in
            if let int = Self.integer(item) { return Float(int) }
            guard let double = item as? Double else { throw error(key, "holds \(item), not a number") }
            return Float(double)
        }
    }

    /// Band names, or HLS band numbers written as integers.
    func optionalStringList(_ parent: [String: Any], _ key: String) throws -> [String]? {
        guard let value = parent[key], !(value is NSNull) else { return nil }
        guard let list = value as? [Any] else { throw error(key, "is not a list") }
        return list.map { item in (item as? String) ?? "\(item)" }
    }

    /// backbone_patch_size as an int, [p, p] or [1, p, p]; only square patches of one frame.
    func patchSize(_ args: [String: Any]) throws -> Int? {
        guard let value = args["backbone_patch_size"], !(value is NSNull) else { return nil }
        if let int = Self.integer(value) { return int }
        guard let list = try optionalIntList(args, "backbone_patch_size") else { return nil }
        let spatial = list.count == 3 ? Array(list.dropFirst()) : list
        guard spatial.count == 2, spatial[0] == spatial[1], list.count != 3 || list[0] == 1 else {
            throw error("backbone_patch_size", "\(list) is not supported (square patches of one frame only)")
        }
        return spatial[0]
    }

    /// `necks`: SelectIndices(indices) then ReshapeTokensToImage, four outputs for UperNet.
    func necks(_ value: Any?, depth: Int) throws -> [Int] {
        guard let list = value as? [Any], !list.isEmpty else {
            throw error("necks", "is missing: UperNet on a ViT needs [SelectIndices(indices), ReshapeTokensToImage]")
        }
        var indices: [Int]?
        var reshaped = false
        for item in list {
            guard let neck = item as? [String: Any], let name = neck["name"] as? String else {
                throw error("necks", "entries must be mappings with a name")
            }
            switch name {
            case "SelectIndices":
                guard let raw = try optionalIntList(neck, "indices") else { throw error("necks.SelectIndices.indices", "is missing") }
                indices = try raw.map { index in
                    let resolved = index < 0 ? depth + index : index
                    guard resolved >= 0, resolved < depth else {
                        throw error("necks.SelectIndices.indices", "\(index) is outside the encoder's \(depth) blocks")
                    }
                    return resolved
                }
            case "ReshapeTokensToImage":
                if let remove = neck["remove_cls_token"] as? Bool, !remove {
                    throw error("necks.ReshapeTokensToImage.remove_cls_token", "false is not supported")
                }
                reshaped = true
            default:
                throw error("necks", "'\(name)' is not supported (only SelectIndices and ReshapeTokensToImage)")
            }
        }
        guard reshaped else { throw error("necks", "lacks ReshapeTokensToImage") }
        guard let indices, indices.count == 4 else {
            throw error("necks.SelectIndices.indices", "must select exactly 4 encoder outputs for UperNet")
        }
        return indices
    }

    func preprocessing(_ top: [String: Any], initArgs: [String: Any], channels: Int, location: Bool) throws -> PreprocessingConfig {
        guard let data = top["data"] as? [String: Any], let dataArgs = data["init_args"] as? [String: Any] else {
            throw ModelConfigError("\(source): missing data.init_args (the datamodule with means and stds)")
        }
        let scoped = ConfigReader(source: source, path: "data.init_args")
        guard let means = try scoped.optionalFloatList(dataArgs, "means"), let stds = try scoped.optionalFloatList(dataArgs, "stds") else {
            throw scoped.error("means", "and stds are required")
        }
        guard means.count == channels, stds.count == channels else {
            throw scoped.error("means", "and stds have \(means.count) and \(stds.count) values for a \(channels)-band model")
        }
        guard stds.allSatisfy({ $0 > 0 }) else { throw scoped.error("stds", "must all be positive") }
        var resizeTo: Int?
        if let transforms = dataArgs["test_transform"] as? [Any] {
            for case let transform as [String: Any] in transforms {
                guard let classPath = transform["class_path"] as? String, classPath.hasSuffix("Resize") else { continue }
                let args = transform["init_args"] as? [String: Any] ?? [:]
                let t = ConfigReader(source: source, path: "data.init_args.test_transform.Resize")
                let height = try t.int(args, "height"), width = try t.int(args, "width")
                guard height == width, height > 0 else { throw t.error("height", "\(height)×\(width): only square resizes are supported") }
                resizeTo = height
            }
        }
        var crop = 512
        let tiled = (initArgs["tiled_inference_parameters"] ?? initArgs["tiled_inference_paramters"]) as? [String: Any]
        if let tiled {
            let t = ConfigReader(source: source, path: "model.init_args.tiled_inference_parameters")
            crop = try t.optionalInt(tiled, "h_crop") ?? t.optionalInt(tiled, "crop") ?? 512
        }
        var passesLocation = location
        if let input = top["input"] as? [String: Any], let declared = input["data"] as? [String: Any] {
            passesLocation = location && declared["location_coords"] != nil
        }
        return PreprocessingConfig(means: means, stds: stds, resizeTo: resizeTo, pluginCrop: crop, passesLocation: passesLocation)
    }
}
