import Tensor

/// timm's pre-norm ViT block: x += proj(attn(LN1(x))); x += fc2(GELU(fc1(LN2(x)))).
struct TransformerBlock {
    let norm1Weight, norm1Bias, norm2Weight, norm2Bias: UnsafePointer<Float>
    let qkv, proj, fc1, fc2: LinearWeights
    let heads: Int
    let eps: Float

    init(binding binder: WeightBinder, prefix p: String, config c: EncoderConfig) {
        let e = c.embedDim, hidden = c.mlpHidden
        norm1Weight = binder.tensor("\(p).norm1.weight", [e]); norm1Bias = binder.tensor("\(p).norm1.bias", [e])
        norm2Weight = binder.tensor("\(p).norm2.weight", [e]); norm2Bias = binder.tensor("\(p).norm2.bias", [e])
        qkv = LinearWeights(packed: binder.linear("\(p).attn.qkv.weight", [3 * e, e]), bias: binder.tensor("\(p).attn.qkv.bias", [3 * e]))
        proj = LinearWeights(packed: binder.linear("\(p).attn.proj.weight", [e, e]), bias: binder.tensor("\(p).attn.proj.bias", [e]))
        fc1 = LinearWeights(packed: binder.linear("\(p).mlp.fc1.weight", [hidden, e]), bias: binder.tensor("\(p).mlp.fc1.bias", [hidden]))
        fc2 = LinearWeights(packed: binder.linear("\(p).mlp.fc2.weight", [e, hidden]), bias: binder.tensor("\(p).mlp.fc2.bias", [e]))
        heads = c.heads
        eps = c.layerNormEps
    }

    /// Runs the block in place on `x`: `images` sequences of `tokens` rows of width E.
    /// The GEMMs' inputs are kept with rows 16 floats longer than their width (`GEMM.readsInPlace`):
    /// the GEMM then reads them where they are instead of packing a copy.
    func apply(_ x: UnsafeMutablePointer<Float>, images: Int, tokens: Int, scratch: Scratch, profile: ForwardProfile? = nil) {
        let e = proj.outFeatures, rows = images * tokens, width = fc1.outFeatures
        let ldn = e + 16, ldh = width + 16
        let normed = scratch.buffer("block.normed", rows * ldn)
        let qkvOut = scratch.buffer("block.qkv", rows * 3 * e)
        let attended = scratch.buffer("block.attended", rows * ldn)
        let hidden = scratch.buffer("block.hidden", rows * ldh)

        profile.measure("encoder.layernorm") {
            VectorMath.layerNorm(x, rows: rows, dim: e, weight: norm1Weight, bias: norm1Bias, eps: eps, into: normed, yStride: ldn)
        }
        profile.measure("encoder.qkv") { qkv.apply(normed, rows: rows, xStride: ldn, into: qkvOut, scratch: scratch) }
        profile.measure("encoder.attention") {
            for image in 0..<images {
                Attention.multiHead(qkvOut + image * tokens * 3 * e, tokens: tokens, embedDim: e, heads: heads,
                                    into: attended + image * tokens * ldn, outStride: ldn, scratch: scratch)
            }
        }
        profile.measure("encoder.proj") { proj.apply(attended, rows: rows, xStride: ldn, into: x, accumulate: true, scratch: scratch) }
        profile.measure("encoder.layernorm") {
            VectorMath.layerNorm(x, rows: rows, dim: e, weight: norm2Weight, bias: norm2Bias, eps: eps, into: normed, yStride: ldn)
        }
        profile.measure("encoder.fc1+gelu") {
            fc1.apply(normed, rows: rows, xStride: ldn, into: hidden, yStride: ldh, activation: .gelu, scratch: scratch)
        }
        profile.measure("encoder.fc2") { fc2.apply(hidden, rows: rows, xStride: ldh, into: x, accumulate: true, scratch: scratch) }
    }
}
