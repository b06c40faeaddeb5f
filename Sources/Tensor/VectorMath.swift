import CKernels
import Foundation

// Elementwise kernels. The transcendental ones (exp, erf, GELU, softmax) and LayerNorm are in C
// (CKernels: vectorised by clang, with an AVX2+FMA clone) and split across cores here; the
// memory-bound ones (ReLU, adds) are SIMD8 Swift. Each Swift loop handles its tail separately.

public typealias Vec8 = SIMD8<Float>

@inline(__always)
func load8(_ p: UnsafePointer<Float>) -> Vec8 {
    UnsafeRawPointer(p).loadUnaligned(as: Vec8.self)
}

@inline(__always)
func store8(_ v: Vec8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec8.self)
}

public enum VectorMath {
    /// e^x elementwise (Cephes expf).
    public static func exp(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        ck_exp(x, y, count)
    }

    /// erf elementwise (PyTorch's vectorised approximation).
    public static func erf(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        ck_erf(x, y, count)
    }

    /// x · Φ(x) = 0.5 · x · (1 + erf(x / √2)), in place, split across cores.
    public static func gelu(_ data: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forRanges(count, minimum: 16_384) { range in ck_gelu(data + range.lowerBound, range.count) }
    }

    /// Softmax along each of `rows` rows of length `cols` (row stride `stride`), in place,
    /// after multiplying by `scale` (attention's 1/√d folded in).
    public static func softmaxRows(_ data: UnsafeMutablePointer<Float>, rows: Int, cols: Int, stride: Int, scale: Float = 1) {
        ck_softmax_rows(data, rows, cols, stride, scale)
    }

    /// LayerNorm over the last dimension: y = (x − mean) / √(var + eps) · weight + bias,
    /// biased variance as PyTorch computes it. `x` and `y` may be the same. Rows split across cores.
    public static func layerNorm(
        _ x: UnsafePointer<Float>, rows: Int, dim: Int,
        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, eps: Float,
        into y: UnsafeMutablePointer<Float>, yStride: Int? = nil
    ) {
        let ldy = yStride ?? dim
        Parallel.forRanges(rows, minimum: max(1, 16_384 / max(dim, 1))) { range in
            ck_layernorm(x + range.lowerBound * dim, range.count, dim, weight, bias, eps, y + range.lowerBound * ldy, ldy)
        }
    }

    /// dst[i] += src[i].
    public static func add(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) {
        guard count < 262_144 else {  // the decoder's top-down sums: split across the cores
            Parallel.forRanges(count / 8, minimum: 16_384) { r in addSerial(src + 8 * r.lowerBound, into: dst + 8 * r.lowerBound, count: 8 * r.count) }
            let done = count / 8 * 8
            addSerial(src + done, into: dst + done, count: count - done)
            return
        }
        addSerial(src, into: dst, count: count)
    }

    private static func addSerial(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count { store8(load8(dst + i) + load8(src + i), dst + i); i += 8 }
        while i < count { dst[i] += src[i]; i += 1 }
    }

    /// out[i] = a[i] − b[i].
    public static func subtract(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count { store8(load8(a + i) - load8(b + i), out + i); i += 8 }
        while i < count { out[i] = a[i] - b[i]; i += 1 }
    }
}
