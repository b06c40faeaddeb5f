/// Scaled dot-product multi-head self-attention over one sequence.
public enum Attention {
    /// `qkv` holds `tokens` rows of [q | k | v], each E wide with heads side by side (timm's layout);
    /// writes the heads' outputs side by side into `out` (tokens × E).
    public static func multiHead(
        _ qkv: UnsafePointer<Float>, tokens: Int, embedDim e: Int, heads: Int,
        into out: UnsafeMutablePointer<Float>, scratch: Scratch
    ) {
        let d = e / heads
        let scale = 1 / Float(d).squareRoot()
        let scores = scratch.buffer("attention.scores", tokens * tokens)
        for h in 0..<heads {
            let q = qkv + h * d, k = qkv + e + h * d, v = qkv + 2 * e + h * d
            // scores = q · kᵀ (tokens × tokens); softmax(scale · scores) row-wise; out_h = scores · v.
            BLAS.sgemmUnchecked(m: tokens, n: tokens, k: d, a: q, lda: 3 * e, b: k, ldb: 3 * e, transposeB: true,
                                c: scores, ldc: tokens)
            VectorMath.softmaxRows(scores, rows: tokens, cols: tokens, stride: tokens, scale: scale)
            BLAS.sgemmUnchecked(m: tokens, n: d, k: tokens, a: scores, lda: tokens, b: v, ldb: 3 * e,
                                c: out + h * d, ldc: e)
        }
    }
}
