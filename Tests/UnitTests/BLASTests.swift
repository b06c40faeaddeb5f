import Tensor
import Testing

@Suite struct BLASTests {
    /// Reference C = op(A)·op(B) by three loops, in Double.
    static func naive(m: Int, n: Int, k: Int, a: [Float], lda: Int, ta: Bool, b: [Float], ldb: Int, tb: Bool) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k {
                    let av = ta ? a[p * lda + i] : a[i * lda + p]
                    let bv = tb ? b[j * ldb + p] : b[p * ldb + j]
                    sum += Double(av) * Double(bv)
                }
                c[i * n + j] = Float(sum)
            }
        }
        return c
    }

    static func random(_ count: Int, seed: inout UInt64) -> [Float] {
        (0..<count).map { _ in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: seed >> 11) % 2001 - 1000) / 1000
        }
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func sgemmMatchesNaiveLoops(_ transposes: (Bool, Bool)) throws {
        let (ta, tb) = transposes
        var seed: UInt64 = 42
        for (m, n, k) in [(1, 1, 1), (7, 5, 3), (37, 65, 129), (197, 64, 96)] {
            let lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1
            let a = Self.random((ta ? k : m) * lda, seed: &seed)
            let b = Self.random((tb ? n : k) * ldb, seed: &seed)
            var c = [Float](repeating: .nan, count: m * n)
            try a.withUnsafeBufferPointer { a in
                try b.withUnsafeBufferPointer { b in
                    try c.withUnsafeMutableBufferPointer { c in
                        try BLAS.sgemm(m: m, n: n, k: k, a: a, lda: lda, transposeA: ta, b: b, ldb: ldb, transposeB: tb, c: c, ldc: n)
                    }
                }
            }
            let expected = Self.naive(m: m, n: n, k: k, a: a, lda: lda, ta: ta, b: b, ldb: ldb, tb: tb)
            let worst = zip(c, expected).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-4 * Float(k), "m=\(m) n=\(n) k=\(k) worst \(worst)")
        }
    }

    @Test func betaAccumulates() throws {
        let a: [Float] = [1, 2], b: [Float] = [3, 4]
        var c: [Float] = [10]
        try a.withUnsafeBufferPointer { a in
            try b.withUnsafeBufferPointer { b in
                try c.withUnsafeMutableBufferPointer { c in
                    try BLAS.sgemm(m: 1, n: 1, k: 2, a: a, lda: 2, b: b, ldb: 1, c: c, ldc: 1, alpha: 2, beta: 1)
                }
            }
        }
        #expect(c == [10 + 2 * 11])
    }

    @Test func shapeMismatchesAreErrorsNotCrashes() {
        let a = [Float](repeating: 1, count: 6), b = [Float](repeating: 1, count: 6)
        var c = [Float](repeating: 0, count: 4)
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    // B needs 3×2 = 6 floats with ldb 2, but k=4 asks for 4×2.
                    #expect(throws: BLASError.self) { try BLAS.sgemm(m: 2, n: 2, k: 4, a: a, lda: 4, b: b, ldb: 2, c: c, ldc: 2) }
                    // lda below the column count.
                    #expect(throws: BLASError.self) { try BLAS.sgemm(m: 2, n: 2, k: 3, a: a, lda: 2, b: b, ldb: 2, c: c, ldc: 2) }
                    // C too small for m×n.
                    #expect(throws: BLASError.self) { try BLAS.sgemm(m: 3, n: 2, k: 1, a: a, lda: 1, b: b, ldb: 2, c: c, ldc: 2) }
                    #expect(throws: BLASError.self) { try BLAS.sgemm(m: -1, n: 2, k: 1, a: a, lda: 1, b: b, ldb: 2, c: c, ldc: 2) }
                }
            }
        }
    }

    @Test func threadCountCanBeSet() {
        let before = BLAS.threads
        BLAS.threads = 1
        #expect(BLAS.threads == 1)
        BLAS.threads = before
        #expect(!BLAS.configuration.isEmpty)
    }
}
