import CKernels

/// Convolutions on channels-last (NHWC) feature maps: pixel (y, x) is a row of `channels` floats.
/// Every convolution is a handful of large GEMMs, never a 9× im2col copy.

/// A 3×3 (padding 1) or 1×1 convolution with its bias; BatchNorm already folded in.
/// Direct: one GEMM operand of k = taps·in (row `t·in + i` of B holds tap t, input channel i).
/// Winograd F(2×2, 3×3) (3×3 only, the default): 16 GEMMs over 4×4 input tiles, one per
/// transformed position, 16 multiplications for 2×2 outputs where the direct form has 36.
public struct ConvWeights {
    public let kernel: Int
    public let inChannels: Int
    public let outChannels: Int
    /// The direct form's weights (nil for a Winograd 3×3).
    public let weights: PackedMatrix?
    /// U = G g Gᵀ for the 16 positions of a 4×4 tile, each an in × out GEMM operand.
    public let winograd: [PackedMatrix]?
    public let bias: FloatBuffer

    /// From PyTorch's Conv2d layout [out][in][k][k], scaling output channel o by `scale[o]` and
    /// adding `shift[o]` (BatchNorm folding: scale = γ/√(var+ε), shift = β − mean·scale).
    public init(pytorch weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, inChannels: Int, outChannels: Int,
                kernel: Int, scale: [Float]? = nil, shift: [Float]? = nil, winograd useWinograd: Bool = true) {
        precondition(kernel == 1 || kernel == 3, "only 1×1 and 3×3 convolutions")
        self.kernel = kernel
        self.inChannels = inChannels
        self.outChannels = outChannels
        let tapCount = kernel * kernel
        self.bias = FloatBuffer(count: outChannels, zeroed: false)
        for o in 0..<outChannels { self.bias.pointer[o] = (bias?[o] ?? 0) * (scale?[o] ?? 1) + (shift?[o] ?? 0) }
        if kernel == 3 && useWinograd {
            weights = nil
            winograd = Self.winogradWeights(weight, inChannels: inChannels, outChannels: outChannels, scale: scale)
            return
        }
        winograd = nil
        let k = tapCount * inChannels
        let rows = FloatBuffer(count: outChannels * k, zeroed: false)  // [out][tap][in], then packed
        for o in 0..<outChannels {
            let s = scale?[o] ?? 1
            for i in 0..<inChannels {
                for t in 0..<tapCount {
                    rows.pointer[o * k + t * inChannels + i] = weight[(o * inChannels + i) * tapCount + t] * s
                }
            }
        }
        weights = PackedMatrix(packing: rows.pointer, n: outChannels, k: k, transposed: true)
    }

    /// U = G g Gᵀ, G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1], for every (out, in), in double then rounded once.
    /// (Written without temporaries: it runs at every model load, 4.7 M weights for the 300M model.)
    static func winogradWeights(_ weight: UnsafePointer<Float>, inChannels: Int, outChannels: Int, scale: [Float]?) -> [PackedMatrix] {
        let positions = FloatBuffer(count: 16 * outChannels * inChannels, zeroed: false)  // [position][out][in]
        let plane = outChannels * inChannels
        /// G applied to three values: the four rows of G · (a, b, c).
        func g(_ a: Double, _ b: Double, _ c: Double) -> (Double, Double, Double, Double) {
            (a, (a + b + c) * 0.5, (a - b + c) * 0.5, c)
        }
        for o in 0..<outChannels {
            let s = Double(scale?[o] ?? 1)
            for i in 0..<inChannels {
                let w = weight + (o * inChannels + i) * 9
                // Columns of G g (g's columns through G), then each row of that through G again.
                let c0 = g(Double(w[0]) * s, Double(w[3]) * s, Double(w[6]) * s)
                let c1 = g(Double(w[1]) * s, Double(w[4]) * s, Double(w[7]) * s)
                let c2 = g(Double(w[2]) * s, Double(w[5]) * s, Double(w[8]) * s)
                let at = o * inChannels + i
                func store(row r: Int, _ u: (Double, Double, Double, Double)) {
                    positions.pointer[(4 * r + 0) * plane + at] = Float(u.0)
                    positions.pointer[(4 * r + 1) * plane + at] = Float(u.1)
                    positions.pointer[(4 * r + 2) * plane + at] = Float(u.2)
                    positions.pointer[(4 * r + 3) * plane + at] = Float(u.3)
                }
                store(row: 0, g(c0.0, c1.0, c2.0))
                store(row: 1, g(c0.1, c1.1, c2.1))
                store(row: 2, g(c0.2, c1.2, c2.2))
                store(row: 3, g(c0.3, c1.3, c2.3))
            }
        }
        return (0..<16).map { PackedMatrix(packing: positions.pointer + $0 * plane, n: outChannels, k: inChannels, transposed: true) }
    }

    /// y = act(conv(x) + b) for an h×w map; `y` rows are `yStride` apart (concatenation for free).
    public func apply(
        _ x: UnsafePointer<Float>, height h: Int, width w: Int,
        into y: UnsafeMutablePointer<Float>, yStride: Int? = nil, relu: Bool, scratch: Scratch
    ) {
        let ldy = yStride ?? outChannels
        let activation: GEMM.Activation = relu ? .relu : .none
        if kernel == 1, let weights {
            GEMM.multiply(x, lda: inChannels, rows: h * w, weights, into: y, ldc: ldy, start: .set, bias: bias.pointer,
                          activation: activation, scratch: scratch)
            return
        }
        if let winograd {
            applyWinograd(winograd, x, height: h, width: w, into: y, ldy: ldy, relu: relu, scratch: scratch)
            return
        }
        // Direct 3×3: the GEMM's row for pixel (r, c) starts at that pixel of the zero-padded map
        // and its nine taps are nine runs at fixed offsets.
        let pw = w + 2
        let padded = zeroPadded(x, height: h, width: w, rows: h + 2, columns: pw, scratch: scratch)
        let starts = (0..<(h * w)).map { p in ((p / w) * pw + p % w) * inChannels }
        let taps = (0..<9).map { t in ((t / 3) * pw + t % 3) * inChannels }
        GEMM.multiply(padded, lda: 0, rowOffsets: starts, rows: h * w, segments: taps, weights!, into: y, ldc: ldy,
                      start: .set, bias: bias.pointer, activation: activation, scratch: scratch)
    }

    /// x inside a zero border: `rows` × `columns` pixels, x at (1, 1).
    private func zeroPadded(_ x: UnsafePointer<Float>, height h: Int, width w: Int, rows: Int, columns: Int, scratch: Scratch) -> UnsafeMutablePointer<Float> {
        let c = inChannels, rowFloats = columns * c
        let padded = scratch.buffer("conv3x3.padded", rows * rowFloats)
        // Every padded row in parallel: the map's rows copied inside zero borders, the others zero.
        Parallel.forRanges(rows, minimum: 4) { range in
            for row in range {
                let dst = padded + row * rowFloats
                guard row >= 1, row <= h else { dst.update(repeating: 0, count: rowFloats); continue }
                dst.update(repeating: 0, count: c)
                (dst + c).update(from: x + (row - 1) * w * c, count: w * c)
                (dst + (w + 1) * c).update(repeating: 0, count: (columns - w - 1) * c)
            }
        }
        return padded
    }

    /// Tiles a chunk at a time (about 256, so that a position's V and M stay small): transform the
    /// inputs, 16 GEMMs (rows of V 16 floats longer than the channels, read in place), transform back.
    private func applyWinograd(_ u: [PackedMatrix], _ x: UnsafePointer<Float>, height h: Int, width w: Int,
                               into y: UnsafeMutablePointer<Float>, ldy: Int, relu: Bool, scratch: Scratch) {
        let tilesH = (h + 1) / 2, tilesW = (w + 1) / 2, tiles = tilesH * tilesW
        let pw = 2 * tilesW + 2
        let padded = UnsafePointer(zeroPadded(x, height: h, width: w, rows: 2 * tilesH + 2, columns: pw, scratch: scratch))
        let chunk = min(tiles, 264), ldv = inChannels + 16, ldm = outChannels
        let vPlane = chunk * ldv, mPlane = chunk * ldm
        let v = scratch.buffer("winograd.v", 16 * vPlane), m = scratch.buffer("winograd.m", 16 * mPlane)
        let bias = UnsafePointer(self.bias.pointer)
        for first in stride(from: 0, to: tiles, by: chunk) {
            let count = min(chunk, tiles - first)
            Parallel.forRanges(count, minimum: 16) { r in
                ck_winograd_input(padded, pw, inChannels, tilesW, first + r.lowerBound, first + r.upperBound,
                                  v + r.lowerBound * ldv, ldv, vPlane)
            }
            for p in 0..<16 {
                GEMM.multiply(v + p * vPlane, lda: ldv, rows: count, u[p], into: m + p * mPlane, ldc: ldm, start: .set, scratch: scratch)
            }
            Parallel.forRanges(count, minimum: 16) { r in
                ck_winograd_output(m + r.lowerBound * ldm, ldm, mPlane, outChannels, tilesW, first + r.lowerBound, first + r.upperBound,
                                   bias, relu ? 1 : 0, y, ldy, h, w)
            }
        }
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
        let bias = UnsafePointer(self.bias.pointer), outChannels = self.outChannels
        Parallel.forRanges(h, minimum: 1) { rows in
        for row in rows {
            for col in 0..<w {
                let block = blocks + (row * w + col) * n
                for t in 0..<4 {
                    let dst = y + ((2 * row + t / 2) * outWidth + 2 * col + t % 2) * outChannels
                    dst.update(from: block + t * outChannels, count: outChannels)
                    VectorMath.add(bias, into: dst, count: outChannels)
                }
            }
        }
        }
    }
}
