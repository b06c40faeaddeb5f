import Foundation

// Elementwise kernels on SIMD8<Float>: exp (Cephes), erf (the Abramowitz–Stegun 7.1.26 form
// PyTorch's vectorised CPU erf uses, |error| ≤ 1.5e-7), exact-erf GELU, ReLU, row softmax,
// LayerNorm. Each loop handles the tail that does not fill a vector with the scalar twin.

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
    /// Adding 1.5·2²³ pushes a float's integer part into the low mantissa bits (round to nearest):
    /// a vector float→int conversion without Swift's generic, lane-by-lane `SIMD8<Int32>(_:rounding:)`.
    static let roundingMagic = Vec8(repeating: 12_582_912)

    /// floor(x) for |x| < 2²², vectorised.
    @inline(__always)
    static func floor(_ x: Vec8) -> Vec8 {
        let nearest = (x + roundingMagic) - roundingMagic
        return nearest.replacing(with: nearest - 1, where: nearest .> x)
    }

    /// e^x for 8 lanes (Cephes expf: range reduction by ln 2, degree-6 polynomial).
    @inline(__always)
    public static func exp(_ input: Vec8) -> Vec8 {
        var x = pointwiseMin(pointwiseMax(input, Vec8(repeating: -87.3365)), Vec8(repeating: 88.3762626647949))
        let fx = floor(x * 1.44269504088896341 + 0.5)
        x = x - fx * 0.693359375
        x = x + fx * 2.12194440e-4
        let z = x * x
        var y: Vec8 = Vec8(repeating: 1.9875691500e-4)
        y = y * x + 1.3981999507e-3
        y = y * x + 8.3334519073e-3
        y = y * x + 4.1665795894e-2
        y = y * x + 1.6666665459e-1
        y = y * x + 5.0000001201e-1
        y = y * z + x + 1
        // 2^fx from its integer value n: exponent bits (n + 127) << 23.
        let n = unsafeBitCast(fx + roundingMagic, to: SIMD8<Int32>.self) &- 0x4B40_0000
        return y * unsafeBitCast((n &+ 127) &<< 23, to: Vec8.self)
    }

    /// erf for 8 lanes, as PyTorch's vectorised CPU kernel computes it.
    @inline(__always)
    public static func erf(_ x: Vec8) -> Vec8 {
        let ax = unsafeBitCast(unsafeBitCast(x, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: Vec8.self)
        let t = 1 / (ax * 0.3275911 + 1)
        var r: Vec8 = Vec8(repeating: 1.061405429)
        r = r * t - 1.453152027
        r = r * t + 1.421413741
        r = r * t - 0.284496736
        r = r * t + 0.254829592
        let e = Self.exp(-(ax * ax))
        let magnitude = 1 - r * t * e
        return magnitude.replacing(with: -magnitude, where: x .< 0)
    }

    @inline(__always)
    public static func scalarErf(_ x: Float) -> Float { erf(Vec8(repeating: x))[0] }

    /// x · Φ(x) = 0.5 · x · (1 + erf(x / √2)), in place.
    public static func gelu(_ data: UnsafeMutablePointer<Float>, count: Int) {
        let invSqrt2: Float = 0.70710678118654752
        var i = 0
        while i + 8 <= count {
            let x = load8(data + i)
            store8(x * 0.5 * (1 + erf(x * invSqrt2)), data + i)
            i += 8
        }
        if i < count {
            var tail = Vec8(repeating: 0)
            for k in 0..<(count - i) { tail[k] = data[i + k] }
            let y = tail * 0.5 * (1 + erf(tail * invSqrt2))
            for k in 0..<(count - i) { data[i + k] = y[k] }
        }
    }

    /// max(x, 0), in place.
    public static func relu(_ data: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        let zero = Vec8(repeating: 0)
        while i + 8 <= count {
            store8(pointwiseMax(load8(data + i), zero), data + i)
            i += 8
        }
        while i < count { data[i] = max(data[i], 0); i += 1 }
    }

    /// Softmax along each of `rows` rows of length `cols` (row stride `stride`), in place,
    /// after multiplying by `scale` (attention's 1/√d folded in).
    public static func softmaxRows(_ data: UnsafeMutablePointer<Float>, rows: Int, cols: Int, stride: Int, scale: Float = 1) {
        for r in 0..<rows {
            let row = data + r * stride
            var maxVector = Vec8(repeating: -.infinity)
            var i = 0
            while i + 8 <= cols { maxVector = pointwiseMax(maxVector, load8(row + i)); i += 8 }
            var rowMax = maxVector.max()
            while i < cols { rowMax = max(rowMax, row[i]); i += 1 }
            let shift = Vec8(repeating: rowMax * scale)
            var sumVector = Vec8(repeating: 0)
            i = 0
            while i + 8 <= cols {
                let e = Self.exp(load8(row + i) * scale - shift)
                store8(e, row + i)
                sumVector += e
                i += 8
            }
            var sum = sumVector.sum()
            while i < cols {
                let e = Self.exp(Vec8(repeating: row[i] * scale - rowMax * scale))[0]
                row[i] = e
                sum += e
                i += 1
            }
            let inverse = 1 / sum
            i = 0
            while i + 8 <= cols { store8(load8(row + i) * inverse, row + i); i += 8 }
            while i < cols { row[i] *= inverse; i += 1 }
        }
    }

    /// LayerNorm over the last dimension: y = (x − mean) / √(var + eps) · weight + bias,
    /// biased variance as PyTorch computes it. `x` and `y` may be the same.
    public static func layerNorm(
        _ x: UnsafePointer<Float>, rows: Int, dim: Int,
        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, eps: Float,
        into y: UnsafeMutablePointer<Float>
    ) {
        for r in 0..<rows {
            let src = x + r * dim, dst = y + r * dim
            var sumVector = Vec8(repeating: 0)
            var i = 0
            while i + 8 <= dim { sumVector += load8(src + i); i += 8 }
            var sum = sumVector.sum()
            while i < dim { sum += src[i]; i += 1 }
            let mean = sum / Float(dim)
            var squares = Vec8(repeating: 0)
            let meanVector = Vec8(repeating: mean)
            i = 0
            while i + 8 <= dim { let d = load8(src + i) - meanVector; squares += d * d; i += 8 }
            var variance = squares.sum()
            while i < dim { let d = src[i] - mean; variance += d * d; i += 1 }
            variance /= Float(dim)
            let inverse = 1 / (variance + eps).squareRoot()
            let inverseVector = Vec8(repeating: inverse)
            i = 0
            while i + 8 <= dim {
                store8((load8(src + i) - meanVector) * inverseVector * load8(weight + i) + load8(bias + i), dst + i)
                i += 8
            }
            while i < dim { dst[i] = (src[i] - mean) * inverse * weight[i] + bias[i]; i += 1 }
        }
    }

    /// Adds `bias` (length `cols`) to every row of a rows×cols matrix with row stride `stride`.
    public static func addBias(_ data: UnsafeMutablePointer<Float>, rows: Int, cols: Int, stride: Int, bias: UnsafePointer<Float>) {
        for r in 0..<rows {
            let row = data + r * stride
            var i = 0
            while i + 8 <= cols { store8(load8(row + i) + load8(bias + i), row + i); i += 8 }
            while i < cols { row[i] += bias[i]; i += 1 }
        }
    }

    /// dst[i] += src[i].
    public static func add(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count { store8(load8(dst + i) + load8(src + i), dst + i); i += 8 }
        while i < count { dst[i] += src[i]; i += 1 }
    }
}
