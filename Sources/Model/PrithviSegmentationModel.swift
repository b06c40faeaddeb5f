import Foundation
import Tensor

/// The whole TerraTorch segmentation model: Prithvi encoder → necks → UperNet → head → rescale.
///
/// Weights stay in the checkpoint's mapping (zero-copy for float32 safetensors and torch files);
/// only the decoder's convolutions are repacked, with BatchNorm folded in. `forward` is not
/// reentrant: give each thread its own `Scratch`, and do not share a model across threads.
public final class PrithviSegmentationModel {
    public let config: ModelConfig
    public let weightsPath: String
    /// Keeps the weight mapping alive for the layers' pointers.
    let reader: CheckpointReader?
    let encoder: PrithviEncoder
    let decoder: UperNetDecoder
    let head: SegmentationHead
    /// Checkpoint tensors the model did not use (MAE decoder, auxiliary heads…).
    public let unusedTensors: [String]
    /// Where the packed Linear weights came from (a cache file mapped or built, or memory), and why.
    public let packingReport: String

    /// Loads config and weights from a model directory. `environment` is where the packed-weight
    /// cache reads `PRITHVI_WEIGHT_CACHE`, `XDG_CACHE_HOME` and `HOME` (`PackedWeightCache`).
    public convenience init(directory: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let config = try ModelConfig.load(directory: directory)
        let weights = try ModelDirectory.weightsFile(in: directory)
        try self.init(config: config, reader: try openCheckpoint(weights), environment: environment)
    }

    public convenience init(config: ModelConfig, reader: CheckpointReader,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        try self.init(config: config, binder: try WeightBinder(reader: reader, environment: environment))
    }

    init(config: ModelConfig, binder: WeightBinder) throws {
        self.config = config
        reader = binder.reader
        weightsPath = binder.reader?.path ?? ""
        encoder = PrithviEncoder(binding: binder, config: config.encoder)
        let e = config.encoder.embedDim
        decoder = UperNetDecoder(binding: binder, config: config.decoder, inputChannels: [e, e, e, e])
        head = SegmentationHead(binding: binder, inChannels: config.decoder.channels, channelList: config.headChannelList,
                                numClasses: config.numClasses)
        unusedTensors = try binder.finish()
        packingReport = binder.packingReport
        // The packing read every Linear weight of the checkpoint; the layers now use the packed copy.
        binder.reader?.file.dropResidentPages()
    }

    /// Names and shapes of every tensor a checkpoint for `config` must hold, in loading order
    /// (what `ModelFactory` writes; the loading code is the single source of truth).
    public static func requiredTensors(for config: ModelConfig) -> [(name: String, shape: [Int])] {
        let recorder = WeightBinder()
        _ = try? PrithviSegmentationModel(config: config, binder: recorder)
        return recorder.requested
    }

    public var summary: String {
        let c = config.encoder
        return "\(config.backbone) (embed \(c.embedDim), depth \(c.depth), heads \(c.heads), \(c.inChannels) bands) + UperNet(\(config.decoder.channels)) → \(config.numClasses) classes"
    }

    /// Inputs must be padded to a multiple of twice the patch size (TerraTorch pads with reflection
    /// and crops the output back); this is that multiple.
    public var sideMultiple: Int { 2 * config.encoder.patchSize }

    /// Logits [images × classes × height × width] for `images` normalised planar inputs
    /// [images × bands × height × width]. `location`/`temporal`: two values per image, or nil.
    public func forward(
        _ pixels: UnsafePointer<Float>, images: Int, height: Int, width: Int,
        location: [Float]? = nil, temporal: [Float]? = nil,
        into logits: UnsafeMutablePointer<Float>, scratch: Scratch,
        profile: ForwardProfile? = nil, trace: ForwardTrace? = nil
    ) throws {
        let c = config.encoder
        guard images > 0, height > 0, width > 0 else { throw ModelConfigError("forward: empty input \(images)×\(height)×\(width)") }
        if let location, location.count != 2 * images { throw ModelConfigError("forward: \(location.count) location values for \(images) images") }
        if let temporal, temporal.count != 2 * images { throw ModelConfigError("forward: \(temporal.count) temporal values for \(images) images") }
        // Reflect-pad to the multiple TerraTorch pads to, split evenly (extra pixel bottom/right).
        let multiple = sideMultiple
        let paddedHeight = (height + multiple - 1) / multiple * multiple
        let paddedWidth = (width + multiple - 1) / multiple * multiple
        var input = pixels
        let top = (paddedHeight - height) / 2, left = (paddedWidth - width) / 2
        if paddedHeight != height || paddedWidth != width {
            guard paddedHeight - height < height, paddedWidth - width < width else {
                throw ModelConfigError("forward: a \(height)×\(width) input is too small to reflect-pad to \(paddedHeight)×\(paddedWidth)")
            }
            let padded = scratch.buffer("model.padded", images * c.inChannels * paddedHeight * paddedWidth)
            for plane in 0..<(images * c.inChannels) {
                Padding.reflect(pixels + plane * height * width, height: height, width: width, top: top, left: left,
                                into: padded + plane * paddedHeight * paddedWidth, outHeight: paddedHeight, outWidth: paddedWidth)
            }
            input = UnsafePointer(padded)
        }

        let gh = paddedHeight / c.patchSize, gw = paddedWidth / c.patchSize
        let keep = config.neckIndices
        let (outputs, tokens) = encoder.forward(input, images: images, height: paddedHeight, width: paddedWidth, location: location,
                                                temporal: temporal, keep: keep, scratch: scratch, profile: profile, trace: trace)
        let e = c.embedDim
        let classes = config.numClasses
        let sizes = decoder.levelSizes(gridHeight: gh, gridWidth: gw)
        let (dh, dw) = sizes[0]
        let features = scratch.buffer("model.features", dh * dw * config.decoder.channels)
        let scores = scratch.buffer("model.scores", dh * dw * classes)
        let outHeight = config.rescale ? paddedHeight : dh, outWidth = config.rescale ? paddedWidth : dw
        let full = scratch.buffer("model.full", classes * outHeight * outWidth)
        for image in 0..<images {
            // Necks: the chosen blocks' patch tokens (CLS dropped) are already gh × gw × E maps.
            let maps = keep.map { UnsafePointer(outputs[$0]! + (image * tokens + 1) * e) }
            if let trace {
                for (j, map) in maps.enumerated() { trace("neck.\(j)", Array(UnsafeBufferPointer(start: map, count: gh * gw * e)), [1, gh, gw, e]) }
            }
            _ = profile.measure("decoder") {
                decoder.forward(maps, gridHeight: gh, gridWidth: gw, into: features, scratch: scratch, trace: trace)
            }
            profile.measure("head") {
                head.apply(features, height: dh, width: dw, into: scores, scratch: scratch)
                trace?("head.output", Array(UnsafeBufferPointer(start: scores, count: dh * dw * classes)), [1, dh, dw, classes])
                if config.rescale {
                    Resampling.bilinearToPlanar(scores, inHeight: dh, inWidth: dw, channels: classes, into: full,
                                                outHeight: outHeight, outWidth: outWidth, alignCorners: false)
                } else {
                    for p in 0..<(dh * dw) { for k in 0..<classes { full[k * dh * dw + p] = scores[p * classes + k] } }
                }
                // Centre crop back to the input size (TerraTorch's center_crop after padding).
                let cropHeight = min(height, outHeight), cropWidth = min(width, outWidth)
                let cropTop = max((outHeight - cropHeight) / 2, 0), cropLeft = max((outWidth - cropWidth) / 2, 0)
                let dst = logits + image * classes * cropHeight * cropWidth
                for k in 0..<classes {
                    for row in 0..<cropHeight {
                        (dst + (k * cropHeight + row) * cropWidth).update(
                            from: full + (k * outHeight + cropTop + row) * outWidth + cropLeft, count: cropWidth)
                    }
                }
            }
        }
        if let trace {
            let (h, w) = outputSize(height: height, width: width)
            trace("logits", Array(UnsafeBufferPointer(start: logits, count: images * classes * h * w)), [images, classes, h, w])
        }
    }

    /// Size of the logits for an input of `height × width`.
    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        if config.rescale { return (height, width) }
        let multiple = sideMultiple
        let ph = (height + multiple - 1) / multiple * multiple, pw = (width + multiple - 1) / multiple * multiple
        let dh = config.decoder.scaleModules ? 4 * ph / config.encoder.patchSize : ph / config.encoder.patchSize
        let dw = config.decoder.scaleModules ? 4 * pw / config.encoder.patchSize : pw / config.encoder.patchSize
        return (min(height, dh), min(width, dw))
    }
}
