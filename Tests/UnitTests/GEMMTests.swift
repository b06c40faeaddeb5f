import CKernels
import Foundation
import Tensor
import TestSupport
import Testing

/// The GEMM kernels op by op, as ggml tests its backends: every variant this CPU runs, the model's
/// real shapes and every remainder (rows past a group, columns past a panel, k past a block),
/// against a float64 reference, with sentinels around C that must stay untouched; and the rounding
/// contract: bitwise the same C from every variant and every thread split.
@Suite(.serialized) struct GEMMTests {
    static let variants = GEMM.Variant.allCases.filter(\.supported)

    struct Case {
        let a: [Float], w: [Float], c: [Float]
        let m: Int, n: Int, k: Int, ldc: Int
    }

    static let sentinel: Float = -7777

    /// A random case; C holds values to accumulate onto, and sentinels in its padding columns.
    static func makeCase(m: Int, n: Int, k: Int, seed: UInt64) -> Case {
        var random = SeededRandom(seed: seed)
        let ldc = n + 3
        let c = (0..<(m * ldc)).map { $0 % ldc < n ? Float($0 % 5) - 2 : sentinel }
        return Case(a: random.array(m * k), w: random.array(n * k), c: c, m: m, n: n, k: k, ldc: ldc)
    }

    /// C + A·wᵀ through `GEMM.multiply`, accumulated onto C (w is n × k, PyTorch's Linear layout).
    static func run(_ t: Case, variant: GEMM.Variant, workers: Int) -> [Float] {
        let b = t.w.withUnsafeBufferPointer { PackedMatrix(packing: $0.baseAddress!, n: t.n, k: t.k, transposed: true) }
        var c = t.c
        t.a.withUnsafeBufferPointer { a in
            c.withUnsafeMutableBufferPointer { c in
                GEMM.multiply(a.baseAddress!, lda: t.k, rows: t.m, b, into: c.baseAddress!, ldc: t.ldc,
                                scratch: Scratch(), variant: variant, workers: workers)
            }
        }
        return c
    }

    static func check(_ result: [Float], against t: Case, _ label: String) {
        var worst = 0.0
        for i in 0..<t.m {
            for j in 0..<t.ldc {
                let got = result[i * t.ldc + j]
                if j >= t.n {
                    if got != sentinel { Issue.record("\(label): padding column \(j) of row \(i) written"); return }
                    continue
                }
                var sum = Double(t.c[i * t.ldc + j])
                for kk in 0..<t.k { sum += Double(t.a[i * t.k + kk]) * Double(t.w[j * t.k + kk]) }
                // float32 error of a k-term dot product of values in [-1, 1], summed in chains of up to 1024
        // terms: tens of ulps of √k (a wrong index or a lost block is off by O(1)).
                worst = max(worst, abs(Double(got) - sum) / (Double(t.k).squareRoot() + 1))
            }
        }
        #expect(worst < 5e-6, "\(label): error \(worst) (scaled by √k)")
    }

    @Test(arguments: [
        (1, 1, 1), (5, 17, 3), (11, 31, 255), (12, 32, 256), (13, 33, 257), (25, 64, 600), (6, 16, 16), (7, 100, 130),
        // Above the million multiply-adds that are worth a second thread: few rows packed once with
        // the panels split (and k past one block), and rows split with remainders.
        (13, 100, 1100), (101, 40, 300),
    ])
    func remaindersOfRowsColumnsAndBlocks(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        let t = Self.makeCase(m: m, n: n, k: k, seed: UInt64(m * 1000 + n * 10 + k))
        var first: [Float]?
        for variant in Self.variants {
            for workers in [1, 2, 3] {
                let result = Self.run(t, variant: variant, workers: workers)
                Self.check(result, against: t, "\(shape) \(variant) \(workers) worker(s)")
                if let first { #expect(result == first, "\(shape): \(variant) on \(workers) worker(s) rounds differently") }
                first = first ?? result
            }
        }
    }

    /// The encoder's products (one 224 tile: 197 tokens; four: 788) and a decoder-like tall one.
    @Test(arguments: [(197, 3072, 1024), (197, 1024, 4096), (788, 1024, 1024), (3248, 256, 288)])
    func theModelsShapes(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        let t = Self.makeCase(m: m, n: n, k: k, seed: UInt64(m + n + k))
        // The portable kernel is slow (fmaf calls on x86-64 without FMA): the vector variants are
        // checked against the reference, and the portable one against them on a slice of the rows.
        var first: [Float]?
        for variant in Self.variants where variant != .portable {
            for workers in [1, 2] {
                let result = Self.run(t, variant: variant, workers: workers)
                if first == nil { Self.check(result, against: t, "\(shape) \(variant)") }
                if let first { #expect(result == first, "\(shape): \(variant) on \(workers) worker(s) rounds differently") }
                first = first ?? result
            }
        }
        let rows = min(m, 13)
        let slice = Case(a: Array(t.a[0..<(rows * k)]), w: t.w, c: Array(t.c[0..<(rows * t.ldc)]), m: rows, n: n, k: k, ldc: t.ldc)
        let portable = Self.run(slice, variant: .portable, workers: 1)
        if let first { #expect(portable == Array(first[0..<(rows * t.ldc)]), "\(shape): the portable kernel rounds differently") }
        else { Self.check(portable, against: slice, "\(shape) portable") }
    }

    /// Rows 16 floats longer than k are read in place, without a packed copy: the same bits.
    @Test(arguments: [(197, 1024, 1024), (98, 96, 4096), (5, 33, 1024)])
    func paddedRowsAreReadInPlace(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        let t = Self.makeCase(m: m, n: n, k: k, seed: 77)
        let lda = k + 16
        #expect(GEMM.readsInPlace(lda: lda, k: k, rows: 12) && !GEMM.readsInPlace(lda: k, k: k, rows: 12))
        var padded = [Float](repeating: .nan, count: m * lda)  // NaN past k: any read of it would show
        for r in 0..<m { for kk in 0..<k { padded[r * lda + kk] = t.a[r * k + kk] } }
        let b = t.w.withUnsafeBufferPointer { PackedMatrix(packing: $0.baseAddress!, n: n, k: k, transposed: true) }
        for variant in Self.variants where variant != .portable {
            var inPlace = t.c
            padded.withUnsafeBufferPointer { a in
                GEMM.multiply(a.baseAddress!, lda: lda, rows: m, b, into: &inPlace, ldc: t.ldc, scratch: Scratch(), variant: variant, workers: 2)
            }
            #expect(inPlace == Self.run(t, variant: variant, workers: 2), "\(shape) \(variant)")
        }
    }

    /// Row offsets and segments (a 3×3 convolution's pixels and taps) read the same values as an
    /// explicit im2col copy.
    @Test func rowOffsetsAndSegmentsAreAnIm2colWithoutTheCopy() {
        var random = SeededRandom(seed: 9)
        let h = 6, w = 5, channels = 7, out = 9, pw = w + 2
        let padded = random.array((h + 2) * pw * channels)
        let starts = (0..<(h * w)).map { p in ((p / w) * pw + p % w) * channels }
        let taps = (0..<9).map { t in ((t / 3) * pw + t % 3) * channels }
        let rows = h * w, k = 9 * channels
        var im2col = [Float](repeating: 0, count: rows * k)
        for r in 0..<rows { for t in 0..<9 { for i in 0..<channels { im2col[r * k + t * channels + i] = padded[starts[r] + taps[t] + i] } } }
        let weight = random.array(out * k)
        let b = weight.withUnsafeBufferPointer { PackedMatrix(packing: $0.baseAddress!, n: out, k: k, transposed: true) }
        for variant in Self.variants {
            var viaOffsets = [Float](repeating: 0, count: rows * out), viaCopy = viaOffsets
            padded.withUnsafeBufferPointer { p in
                GEMM.multiply(p.baseAddress!, lda: 0, rowOffsets: starts, rows: rows, segments: taps, b, into: &viaOffsets, ldc: out,
                                scratch: Scratch(), variant: variant, workers: 2)
            }
            im2col.withUnsafeBufferPointer { p in
                GEMM.multiply(p.baseAddress!, lda: k, rows: rows, b, into: &viaCopy, ldc: out, scratch: Scratch(), variant: variant, workers: 1)
            }
            #expect(viaOffsets == viaCopy, "\(variant)")
            #expect(viaCopy.contains { $0 != 0 })
        }
    }

    /// B packed from a k × n matrix (ConvTranspose's layout) equals B packed from its transpose.
    @Test func packingEitherLayoutGivesTheSamePanels() {
        var random = SeededRandom(seed: 4)
        let n = 45, k = 19
        let kn = random.array(k * n)
        var nk = [Float](repeating: 0, count: n * k)
        for kk in 0..<k { for j in 0..<n { nk[j * k + kk] = kn[kk * n + j] } }
        let fromKN = kn.withUnsafeBufferPointer { PackedMatrix(packing: $0.baseAddress!, n: n, k: k, transposed: false) }
        let fromNK = nk.withUnsafeBufferPointer { PackedMatrix(packing: $0.baseAddress!, n: n, k: k, transposed: true) }
        #expect(Array(fromKN.panels) == Array(fromNK.panels))
        // Past n the panel is zeros, so the kernels may compute all 32 columns.
        #expect(Array(fromKN.panels).count == 2 * 32 * k)
        #expect((0..<k).allSatisfy { kk in ((n - 32)..<32).allSatisfy { fromKN.panels[(k + kk) * 32 + $0] == 0 } })
    }
}
