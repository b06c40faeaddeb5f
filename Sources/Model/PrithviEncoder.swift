import Foundation
import Tensor

/// Receives named intermediate results of a forward pass (tests compare them with TerraTorch's).
/// Shapes are this implementation's layouts: tokens [images, tokens, E], maps channels-last
/// [images, h, w, C], logits planar [images, classes, H, W].
public typealias ForwardTrace = (_ name: String, _ values: [Float], _ shape: [Int]) -> Void

/// The Prithvi ViT encoder (TerraTorch `PrithviViT.forward_features`).
final class PrithviEncoder {
    let config: EncoderConfig
    let patchEmbed: LinearWeights
    let clsToken: UnsafePointer<Float>
    let blocks: [TransformerBlock]
    let normWeight, normBias: UnsafePointer<Float>
    let locationScale: Float?
    let temporalScale: Float?
    /// Training-grid position embedding, and interpolated ones per (gridH, gridW) as inputs need them.
    private var positionEmbeddings: [[Int]: [Float]] = [:]
    private let lock = NSLock()

    init(binding binder: WeightBinder, config c: EncoderConfig) {
        config = c
        let e = c.embedDim, p = c.patchSize
        patchEmbed = LinearWeights(
            packed: binder.linear("encoder.patch_embed.proj.weight", [e, c.inChannels, 1, p, p]),
            bias: binder.tensor("encoder.patch_embed.proj.bias", [e]))
        clsToken = binder.tensor("encoder.cls_token", [1, 1, e])
        blocks = (0..<c.depth).map { TransformerBlock(binding: binder, prefix: "encoder.blocks.\($0)", config: c) }
        normWeight = binder.tensor("encoder.norm.weight", [e])
        normBias = binder.tensor("encoder.norm.bias", [e])
        locationScale = c.locationEncoding ? binder.tensor("encoder.location_embed_enc.scale", [1]).pointee : nil
        temporalScale = c.temporalEncoding ? binder.tensor("encoder.temporal_embed_enc.scale", [1]).pointee : nil
        let g = c.gridSize
        positionEmbeddings[[g, g]] = PositionEncoding.sinCos3D(embedDim: e, height: g, width: g)
    }

    func positionEmbedding(gridHeight h: Int, gridWidth w: Int) -> [Float] {
        lock.lock(); defer { lock.unlock() }
        if let cached = positionEmbeddings[[h, w]] { return cached }
        let g = config.gridSize
        let made = PositionEncoding.interpolated(positionEmbeddings[[g, g]]!, embedDim: config.embedDim, grid: g, height: h, width: w)
        positionEmbeddings[[h, w]] = made
        return made
    }

    /// Encodes `images` planar images (C × height × width, sides multiples of the patch size) and
    /// returns, for each requested block index, that block's output [images × tokens × E]
    /// (the last block's replaced by the final LayerNorm, as TerraTorch does).
    /// `location`/`temporal`: two values per image, or nil.
    func forward(
        _ pixels: UnsafePointer<Float>, images: Int, height: Int, width: Int,
        location: [Float]?, temporal: [Float]?, keep: [Int], scratch: Scratch, profile: ForwardProfile? = nil, trace: ForwardTrace?
    ) -> (outputs: [Int: UnsafeMutablePointer<Float>], tokens: Int) {
        let c = config, e = c.embedDim, p = c.patchSize
        let gh = height / p, gw = width / p, patches = gh * gw, tokens = patches + 1
        let positions = positionEmbedding(gridHeight: gh, gridWidth: gw)
        let x = scratch.buffer("encoder.x", images * tokens * e)
        let patchRows = scratch.buffer("encoder.patches", patches * patchEmbed.inFeatures)
        for image in 0..<images {
            let src = pixels + image * c.inChannels * height * width
            Self.patchify(src, channels: c.inChannels, height: height, width: width, patch: p, into: patchRows)
            let rows = x + (image * tokens + 1) * e
            patchEmbed.apply(patchRows, rows: patches, into: rows, scratch: scratch)
            positions.withUnsafeBufferPointer { VectorMath.add($0.baseAddress! + e, into: rows, count: patches * e) }
            var extra = [Float](repeating: 0, count: e)
            if let temporal, let scale = temporalScale {
                let code = PositionEncoding.coordinates(embedDim: e, temporal[2 * image], temporal[2 * image + 1], scale: scale)
                for k in 0..<e { extra[k] += code[k] }
            }
            if let location, let scale = locationScale {
                let code = PositionEncoding.coordinates(embedDim: e, location[2 * image], location[2 * image + 1], scale: scale)
                for k in 0..<e { extra[k] += code[k] }
            }
            if (temporal != nil && temporalScale != nil) || (location != nil && locationScale != nil) {
                extra.withUnsafeBufferPointer { for t in 0..<patches { VectorMath.add($0.baseAddress!, into: rows + t * e, count: e) } }
            }
            let cls = x + image * tokens * e
            for k in 0..<e { cls[k] = clsToken[k] + positions[k] }
        }
        if let trace {
            var gathered: [Float] = []
            for image in 0..<images { gathered += Array(UnsafeBufferPointer(start: x + (image * tokens + 1) * e, count: patches * e)) }
            trace("encoder.patch_tokens", gathered, [images, patches, e])
        }

        var outputs: [Int: UnsafeMutablePointer<Float>] = [:]
        let count = images * tokens * e
        for (index, block) in blocks.enumerated() {
            block.apply(x, images: images, tokens: tokens, scratch: scratch, profile: profile)
            let last = index == blocks.count - 1
            if keep.contains(index) || (trace != nil) {
                let kept = scratch.buffer("encoder.kept.\(index)", count)
                if last {
                    VectorMath.layerNorm(x, rows: images * tokens, dim: e, weight: normWeight, bias: normBias, eps: c.layerNormEps, into: kept)
                } else {
                    kept.update(from: x, count: count)
                }
                if keep.contains(index) { outputs[index] = kept }
                trace?("encoder.features.\(index)", Array(UnsafeBufferPointer(start: kept, count: count)), [images, tokens, e])
            }
        }
        return (outputs, tokens)
    }

    /// Non-overlapping p×p patches of a planar image as rows of a matrix, each row ordered
    /// (channel, ky, kx) like the Conv3d weight it multiplies; rows in raster order of patches.
    static func patchify(_ image: UnsafePointer<Float>, channels: Int, height: Int, width: Int, patch p: Int,
                         into rows: UnsafeMutablePointer<Float>) {
        let gh = height / p, gw = width / p, rowLength = channels * p * p
        for gy in 0..<gh {
            for gx in 0..<gw {
                let row = rows + (gy * gw + gx) * rowLength
                for ch in 0..<channels {
                    for ky in 0..<p {
                        (row + (ch * p + ky) * p).update(from: image + (ch * height + gy * p + ky) * width + gx * p, count: p)
                    }
                }
            }
        }
    }
}
