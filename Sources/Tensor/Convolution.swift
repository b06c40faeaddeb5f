/// Convolutions on channels-last (NHWC) feature maps: pixel (y, x) is a row of `channels` floats.
/// Every convolution is a handful of large GEMMs, never a 9× im2col copy.

/// A 3×3 (padding 1) or 1×1 convolution with its bias; BatchNorm already folded in.
/// Weights are stored per tap: [taps][out][in], so each tap is one GEMM against `xᵀ`.
public struct ConvWeights {
    public let kernel: Int
    public let inChannels: Int
    public let outChannels: Int
    public let taps: FloatBuffer
    public let bias: FloatBuffer

    /// From PyTorch's Conv2d layout [out][in][k][k], scaling output channel o by `scale[o]` and
    /// adding `shift[o]` (BatchNorm folding: scale = γ/√(var+ε), shift = β − mean·scale).
    public init(pytorch weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, inChannels: Int, outChannels: Int,
                kernel: Int, scale: [Float]? = nil, shift: [Float]? = nil) {
        precondition(kernel == 1 || kernel == 3, "only 1×1 and 3×3 convolutions")
        self.kernel = kernel
        self.inChannels = inChannels
        self.outChannels = outChannels
        let tapCount = kernel * kernel
        taps = FloatBuffer(count: tapCount * outChannels * inChannels, zeroed: false)
        self.bias = FloatBuffer(count: outChannels, zeroed: false)
        for o in 0..<outChannels {
            let s = scale?[o] ?? 1
            for i in 0..<inChannels {
                for t in 0..<tapCount {
                    taps.pointer[(t * outChannels + o) * inChannels + i] = weight[(o * inChannels + i) * tapCount + t] * s
                }
            }
            self.bias.pointer[o] = (bias?[o] ?? 0) * s + (shift?[o] ?? 0)
        }
    }

    /// y = act(conv(x) + b) for an h×w map; `y` rows are `yStride` apart (concatenation for free).
    /// A 3×3 tap (dy, dx) reads the zero-padded map shifted by dy rows and dx pixels; with the padded
    /// map flattened, that is one GEMM over h·(w+2) rows, whose 2 extra pixels per row are dropped.
    public func apply(
        _ x: UnsafePointer<Float>, height h: Int, width w: Int,
        into y: UnsafeMutablePointer<Float>, yStride: Int? = nil, relu: Bool, scratch: Scratch
    ) {
        let ldy = yStride ?? outChannels
        if kernel == 1 {
            for p in 0..<(h * w) { (y + p * ldy).update(from: bias.pointer, count: outChannels) }
            BLAS.sgemmUnchecked(m: h * w, n: outChannels, k: inChannels, a: x, lda: inChannels,
                                b: taps.pointer, ldb: inChannels, transposeB: true, c: y, ldc: ldy, beta: 1)
            if relu { for p in 0..<(h * w) { VectorMath.relu(y + p * ldy, count: outChannels) } }
            return
        }
        let pw = w + 2
        // Padded input plus one spare zero row: the last tap's rows run two pixels past the map.
        let padded = scratch.buffer("conv3x3.padded", (h + 3) * pw * inChannels)
        padded.update(repeating: 0, count: (h + 3) * pw * inChannels)
        for row in 0..<h {
            (padded + ((row + 1) * pw + 1) * inChannels).update(from: x + row * w * inChannels, count: w * inChannels)
        }
        let wide = scratch.buffer("conv3x3.wide", h * pw * outChannels)
        for t in 0..<9 {
            let (dy, dx) = (t / 3, t % 3)
            BLAS.sgemmUnchecked(
                m: h * pw, n: outChannels, k: inChannels, a: padded + (dy * pw + dx) * inChannels, lda: inChannels,
                b: taps.pointer + t * outChannels * inChannels, ldb: inChannels, transposeB: true,
                c: wide, ldc: outChannels, beta: t == 0 ? 0 : 1)
        }
        for row in 0..<h {
            for col in 0..<w {
                let dst = y + (row * w + col) * ldy
                dst.update(from: wide + (row * pw + col) * outChannels, count: outChannels)
                VectorMath.add(bias.pointer, into: dst, count: outChannels)
                if relu { VectorMath.relu(dst, count: outChannels) }
            }
        }
    }
}

/// ConvTranspose2d with kernel 2, stride 2: every input pixel paints a 2×2 block of outputs.
/// Weights repacked from PyTorch's [in][out][2][2] to [in][(dy·2+dx)·out + o], so the whole layer is
/// one GEMM (pixels × in)·(in × 4·out) followed by a scatter of the 4 sub-pixels.
public struct ConvTranspose2x2Weights {
    public let inChannels: Int
    public let outChannels: Int
    public let packed: FloatBuffer
    public let bias: FloatBuffer

    public init(pytorch weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, inChannels: Int, outChannels: Int,
                scale: [Float]? = nil, shift: [Float]? = nil) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        packed = FloatBuffer(count: inChannels * 4 * outChannels, zeroed: false)
        self.bias = FloatBuffer(count: outChannels, zeroed: false)
        for i in 0..<inChannels {
            for o in 0..<outChannels {
                for t in 0..<4 {
                    packed.pointer[i * 4 * outChannels + t * outChannels + o] = weight[(i * outChannels + o) * 4 + t] * (scale?[o] ?? 1)
                }
            }
        }
        for o in 0..<outChannels { self.bias.pointer[o] = (bias?[o] ?? 0) * (scale?[o] ?? 1) + (shift?[o] ?? 0) }
    }

    /// y (2h × 2w × out) from x (h × w × in).
    public func apply(_ x: UnsafePointer<Float>, height h: Int, width w: Int, into y: UnsafeMutablePointer<Float>, scratch: Scratch) {
        let n = 4 * outChannels
        let blocks = scratch.buffer("convT.blocks", h * w * n)
        BLAS.sgemmUnchecked(m: h * w, n: n, k: inChannels, a: x, lda: inChannels, b: packed.pointer, ldb: n, c: blocks, ldc: n)
        let outWidth = 2 * w
        for row in 0..<h {
            for col in 0..<w {
                let block = blocks + (row * w + col) * n
                for t in 0..<4 {
                    let dst = y + ((2 * row + t / 2) * outWidth + 2 * col + t % 2) * outChannels
                    dst.update(from: block + t * outChannels, count: outChannels)
                    VectorMath.add(bias.pointer, into: dst, count: outChannels)
                }
            }
        }
    }
}
