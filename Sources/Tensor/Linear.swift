/// A fully connected layer in PyTorch's layout: weight [out × in], optional bias [out].
public struct LinearWeights {
    public let weight: UnsafePointer<Float>
    public let bias: UnsafePointer<Float>?
    public let inFeatures: Int
    public let outFeatures: Int

    public init(weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, inFeatures: Int, outFeatures: Int) {
        self.weight = weight; self.bias = bias; self.inFeatures = inFeatures; self.outFeatures = outFeatures
    }

    /// y[rows × out] = x[rows × in] · Wᵀ + b, or y += x · Wᵀ + b when `accumulate` (residual adds).
    /// `x` rows are `xStride` apart, `y` rows `yStride` apart (defaults: dense).
    public func apply(
        _ x: UnsafePointer<Float>, rows: Int, xStride: Int? = nil,
        into y: UnsafeMutablePointer<Float>, yStride: Int? = nil, accumulate: Bool = false
    ) {
        let ldy = yStride ?? outFeatures
        var beta: Float = accumulate ? 1 : 0
        if let bias {
            if accumulate {
                VectorMath.addBias(y, rows: rows, cols: outFeatures, stride: ldy, bias: bias)
            } else {
                for r in 0..<rows { (y + r * ldy).update(from: bias, count: outFeatures) }
            }
            beta = 1
        }
        BLAS.sgemmUnchecked(
            m: rows, n: outFeatures, k: inFeatures, a: x, lda: xStride ?? inFeatures,
            b: weight, ldb: inFeatures, transposeB: true, c: y, ldc: ldy, beta: beta)
    }
}
