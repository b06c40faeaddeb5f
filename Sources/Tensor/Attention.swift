/// Scaled dot-product multi-head self-attention over one sequence.
public enum Attention {
    /// `qkv` holds `tokens` rows of [q | k | v], each E wide with heads side by side (timm's layout);
    /// writes the heads' outputs side by side into `out` (tokens rows of E, `outStride` apart).
    /// Heads run in parallel, each with single-threaded GEMMs: these 197×197×64 products are too
    /// small to split well.
    public static func multiHead(
        _ qkv: UnsafePointer<Float>, tokens: Int, embedDim e: Int, heads: Int,
        into out: UnsafeMutablePointer<Float>, outStride: Int? = nil, scratch: Scratch
    ) {
        let ldo = outStride ?? e
        let d = e / heads
        let scale = 1 / Float(d).squareRoot()
        let scoresPerWorker = tokens * tokens
        let workers = Parallel.workers  // read once: it sizes the scratch and bounds `worker`
        let scores = scratch.buffer("attention.scores", workers * scoresPerWorker)
        Parallel.forEachWithWorker(heads, workers: workers) { h, worker in
            let s = scores + worker * scoresPerWorker
            let q = qkv + h * d, k = qkv + e + h * d, v = qkv + 2 * e + h * d
            // s = q · kᵀ (tokens × tokens); softmax(scale · s) row-wise; out_h = s · v.
            BLAS.sgemmUnchecked(m: tokens, n: tokens, k: d, a: q, lda: 3 * e, b: k, ldb: 3 * e, transposeB: true, c: s, ldc: tokens)
            VectorMath.softmaxRows(s, rows: tokens, cols: tokens, stride: tokens, scale: scale)
            BLAS.sgemmUnchecked(m: tokens, n: d, k: tokens, a: s, lda: tokens, b: v, ldb: 3 * e, c: out + h * d, ldc: ldo)
        }
    }
}
