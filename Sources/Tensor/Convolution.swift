/// Convolutions on channels-last (NHWC) feature maps: pixel (y, x) is a row of `channels` floats.
/// Every convolution is a handful of large GEMMs, never a 9× im2col copy.

/// A 3×3 (padding 1) or 1×1 convolution with its bias; BatchNorm already folded in.
/// The weights are one GEMM operand of k = taps·in: row `t·in + i` of B holds tap t, input channel i.
public struct ConvWeights {
    public let kernel: Int
    public let inChannels: Int
    public let outChannels: Int
    public let weights: PackedMatrix
    public let bias: FloatBuffer

    /// From PyTorch's Conv2d layout [out][in][k][k], scaling output channel o by `scale[o]` and
    /// adding `shift[o]` (BatchNorm folding: scale = γ/√(var+ε), shift = β − mean·scale).
    public init(pytorch weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, inChannels: Int, outChannels: Int,
                kernel: Int, scale: [Float]? = nil, shift: [Float]? = nil) {
        precondition(kernel == 1 || kernel == 3, "only 1×1 and 3×3 convolutions")
        self.kernel = kernel
        self.inChannels = inChannels
        self.outChannels = outChannels
        let tapCount = kernel * kernel, k = tapCount * inChannels
        let rows = FloatBuffer(count: outChannels * k, zeroed: false)  // [out][tap][in], then packed
        self.bias = FloatBuffer(count: outChannels, zeroed: false)
        for o in 0..<outChannels {
            let s = scale?[o] ?? 1
            for i in 0..<inChannels {
                for t in 0..<tapCount {
                    rows.pointer[o * k + t * inChannels + i] = weight[(o * inChannels + i) * tapCount + t] * s
                }
            }
            self.bias.pointer[o] = (bias?[o] ?? 0) * s + (shift?[o] ?? 0)
        }
        weights = PackedMatrix(packing: rows.pointer, n: outChannels, k: k, transposed: true)
    }

    /// y = act(conv(x) + b) for an h×w map; `y` rows are `yStride` apart (concatenation for free).
    /// A 3×3 tap (dy, dx) of pixel (r, c) reads pixel (r + dy, c + dx) of the zero-padded map: the
    /// GEMM's row for the pixel starts there and its nine taps are nine runs at fixed offsets.
    public func apply(
        _ x: UnsafePointer<Float>, height h: Int, width w: Int,
        into y: UnsafeMutablePointer<Float>, yStride: Int? = nil, relu: Bool, scratch: Scratch
    ) {
        let ldy = yStride ?? outChannels
        let activation: GEMM.Activation = relu ? .relu : .none
        if kernel == 1 {
            GEMM.multiply(x, lda: inChannels, rows: h * w, weights, into: y, ldc: ldy, start: .set, bias: bias.pointer,
                          activation: activation, scratch: scratch)
            return
        }
        let pw = w + 2
        let padded = scratch.buffer("conv3x3.padded", (h + 2) * pw * inChannels)
        padded.update(repeating: 0, count: (h + 2) * pw * inChannels)
        for row in 0..<h {
            (padded + ((row + 1) * pw + 1) * inChannels).update(from: x + row * w * inChannels, count: w * inChannels)
        }
        let starts = (0..<(h * w)).map { p in ((p / w) * pw + p % w) * inChannels }
        let taps = (0..<9).map { t in ((t / 3) * pw + t % 3) * inChannels }
        GEMM.multiply(padded, lda: 0, rowOffsets: starts, rows: h * w, segments: taps, weights, into: y, ldc: ldy,
                      start: .set, bias: bias.pointer, activation: activation, scratch: scratch)
    }
}

/// ConvTranspose2d with kernel 2, stride 2: every input pixel paints a 2×2 block of outputs.
/// Weights rearranged from PyTorch's [in][out][2][2] to B[in][(dy·2+dx)·out + o], so the whole layer
/// is one GEMM (pixels × in)·(in × 4·out) followed by a scatter of the 4 sub-pixels.
public struct ConvTranspose2x2Weights {
    public let inChannels: Int
    public let outChannels: Int
    public let weights: PackedMatrix
    public let bias: FloatBuffer

    public init(pytorch weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, inChannels: Int, outChannels: Int,
                scale: [Float]? = nil, shift: [Float]? = nil) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        let packed = FloatBuffer(count: inChannels * 4 * outChannels, zeroed: false)
        self.bias = FloatBuffer(count: outChannels, zeroed: false)
        for i in 0..<inChannels {
            for o in 0..<outChannels {
                for t in 0..<4 {
                    packed.pointer[i * 4 * outChannels + t * outChannels + o] = weight[(i * outChannels + o) * 4 + t] * (scale?[o] ?? 1)
                }
            }
        }
        for o in 0..<outChannels { self.bias.pointer[o] = (bias?[o] ?? 0) * (scale?[o] ?? 1) + (shift?[o] ?? 0) }
        weights = PackedMatrix(packing: packed.pointer, n: 4 * outChannels, k: inChannels, transposed: false)
    }

    /// y (2h × 2w × out) from x (h × w × in).
    public func apply(_ x: UnsafePointer<Float>, height h: Int, width w: Int, into y: UnsafeMutablePointer<Float>, scratch: Scratch) {
        let n = 4 * outChannels
        let blocks = scratch.buffer("convT.blocks", h * w * n)
        GEMM.multiply(x, lda: inChannels, rows: h * w, weights, into: blocks, ldc: n, start: .set, scratch: scratch)
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
