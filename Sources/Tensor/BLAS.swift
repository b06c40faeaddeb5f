import COpenBLAS
import Foundation

/// A GEMM whose shapes, leading dimensions or buffers do not fit together.
public struct BLASError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Thin checked layer over OpenBLAS's CBLAS (row-major throughout).
public enum BLAS {
    /// Threads OpenBLAS uses for one call (process-wide).
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(max(1, newValue))) }
    }

    /// Stops OpenBLAS's thread pool, whose threads spin on sched_yield after the library loads:
    /// for a process that computes nothing (a coordinator with MPI workers). Not for a process
    /// that will call BLAS later. Returns false when this OpenBLAS has no pool to stop.
    @discardableResult
    public static func stopIdlePool() -> Bool { prithvi_blas_stop_pool() == 0 }

    /// OpenBLAS's build description (core type, threading).
    public static var configuration: String {
        guard let text = openblas_get_config() else { return "unknown" }
        return String(cString: text)
    }

    /// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C, row-major.
    /// `A` is stored m×k (k×m when `transposeA`) with row stride `lda`; likewise `B` and `C`.
    /// Every shape, stride and buffer length is checked before OpenBLAS sees a pointer.
    public static func sgemm(
        m: Int, n: Int, k: Int,
        a: UnsafeBufferPointer<Float>, lda: Int, transposeA: Bool = false,
        b: UnsafeBufferPointer<Float>, ldb: Int, transposeB: Bool = false,
        c: UnsafeMutableBufferPointer<Float>, ldc: Int,
        alpha: Float = 1, beta: Float = 0
    ) throws {
        guard m >= 0, n >= 0, k >= 0 else { throw BLASError("sgemm: negative dimension m=\(m) n=\(n) k=\(k)") }
        let limit = Int(Int32.max)
        guard m <= limit, n <= limit, k <= limit, lda <= limit, ldb <= limit, ldc <= limit else {
            throw BLASError("sgemm: dimensions exceed 32-bit BLAS indices")
        }
        let (aRows, aCols) = transposeA ? (k, m) : (m, k)
        let (bRows, bCols) = transposeB ? (n, k) : (k, n)
        try checkOperand("A", rows: aRows, cols: aCols, ld: lda, count: a.count)
        try checkOperand("B", rows: bRows, cols: bCols, ld: ldb, count: b.count)
        try checkOperand("C", rows: m, cols: n, ld: ldc, count: c.count)
        guard m > 0, n > 0 else { return }
        sgemmUnchecked(
            m: m, n: n, k: k, a: a.baseAddress!, lda: lda, transposeA: transposeA,
            b: b.baseAddress!, ldb: ldb, transposeB: transposeB, c: c.baseAddress!, ldc: ldc, alpha: alpha, beta: beta)
    }

    private static func checkOperand(_ name: String, rows: Int, cols: Int, ld: Int, count: Int) throws {
        guard ld >= max(1, cols) else {
            throw BLASError("sgemm: leading dimension of \(name) is \(ld), below its \(cols) columns")
        }
        let needed = rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols
        guard count >= needed else {
            throw BLASError("sgemm: \(name) is \(rows)×\(cols) with stride \(ld) (\(needed) floats) but its buffer holds \(count)")
        }
    }

    /// The same GEMM without checks, for kernels whose shapes are fixed when the model loads.
    @inline(__always)
    public static func sgemmUnchecked(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
        b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
        c: UnsafeMutablePointer<Float>, ldc: Int,
        alpha: Float = 1, beta: Float = 0
    ) {
        cblas_sgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
