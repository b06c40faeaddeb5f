/// A fully connected layer: PyTorch's weight [out × in] packed once for the GEMM, optional bias [out].
public struct LinearWeights {
    public let weight: PackedMatrix
    public let bias: UnsafePointer<Float>?
    public var inFeatures: Int { weight.k }
    public var outFeatures: Int { weight.n }

    public init(packed weight: PackedMatrix, bias: UnsafePointer<Float>?) {
        self.weight = weight; self.bias = bias
    }

    /// Packs `weight` ([out × in], PyTorch's layout) into this process's memory.
    public init(weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, inFeatures: Int, outFeatures: Int) {
        self.init(packed: PackedMatrix(packing: weight, n: outFeatures, k: inFeatures, transposed: true), bias: bias)
    }

    /// y[rows × out] = x[rows × in] · Wᵀ + b, or y += x · Wᵀ + b when `accumulate` (residual adds),
    /// then `activation`. `x` rows are `xStride` apart, `y` rows `yStride` apart (defaults: dense).
    public func apply(
        _ x: UnsafePointer<Float>, rows: Int, xStride: Int? = nil,
        into y: UnsafeMutablePointer<Float>, yStride: Int? = nil, accumulate: Bool = false,
        activation: GEMM.Activation = .none, scratch: Scratch
    ) {
        GEMM.multiply(x, lda: xStride ?? inFeatures, rows: rows, weight, into: y, ldc: yStride ?? outFeatures,
                      start: accumulate ? .addBias : .set, bias: bias, activation: activation, scratch: scratch)
    }
}
