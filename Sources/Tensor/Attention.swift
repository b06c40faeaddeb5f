import CKernels

/// Scaled dot-product multi-head self-attention over one sequence.
public enum Attention {
    /// `qkv` holds `tokens` rows of [q | k | v], each E wide with heads side by side (timm's layout);
    /// writes the heads' outputs side by side into `out` (tokens rows of E, `outStride` apart).
    /// Heads run in parallel, one thread each (`ck_attention_head`: a group of query rows at a
    /// time, through the GEMM kernels, its scores never leaving L1).
    public static func multiHead(
        _ qkv: UnsafePointer<Float>, tokens: Int, embedDim e: Int, heads: Int,
        into out: UnsafeMutablePointer<Float>, outStride: Int? = nil, scratch: Scratch
    ) {
        let ldo = outStride ?? e
        let d = e / heads
        let scale = 1 / Float(d).squareRoot()
        let variant = GEMM.variant.rawValue
        let perWorker = Int(ck_attention_scratch_floats(variant, tokens, d))
        let workers = Parallel.workers  // read once: it sizes the scratch and bounds `worker`
        let own = scratch.buffer("attention.scratch", workers * perWorker)
        Parallel.forEachWithWorker(heads, workers: workers) { h, worker in
            ck_attention_head(variant, qkv + h * d, qkv + e + h * d, qkv + 2 * e + h * d, 3 * e, tokens, d, scale,
                              out + h * d, ldo, own + worker * perWorker)
        }
    }
}
