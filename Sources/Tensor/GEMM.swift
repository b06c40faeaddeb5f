import CKernels
import Foundation

/// C += A·B with B packed once (`PackedMatrix`), the project's own kernels (gemm.c): every layer of
/// the model is such a product of activations and weights. Each element of C gets the same
/// fused multiply-add chains in the same order whatever the variant and the thread split, so
/// results are bitwise identical across `--threads`, workers and CPUs that run the same variant.
public enum GEMM {
    /// A micro-kernel family; `supported` ones run on this CPU.
    public enum Variant: Int32, CaseIterable, Sendable, CustomStringConvertible {
        case portable = 0, avx2 = 1, avx512 = 2

        public var supported: Bool { ck_gemm_supported(rawValue) != 0 }
        public var description: String {
            switch self {
            case .portable: "portable"
            case .avx2: "AVX2+FMA 6×16"
            case .avx512: "AVX-512 12×32"
            }
        }
        /// Rows per packed group of A.
        var groupRows: Int { Int(ck_gemm_group_rows(rawValue)) }
    }

    /// The fastest variant this CPU runs; `PRITHVI_GEMM=portable|avx2|avx512` picks another (for
    /// comparisons), falling back to the fastest when this CPU cannot run it.
    public static let variant: Variant = {
        let names: [String: Variant] = ["portable": .portable, "avx2": .avx2, "avx512": .avx512]
        if let name = ProcessInfo.processInfo.environment["PRITHVI_GEMM"], let chosen = names[name.lowercased()], chosen.supported {
            return chosen
        }
        return Variant(rawValue: ck_gemm_best_variant()) ?? .portable
    }()

    /// Whether A, rows `lda` floats apart, can be read where it is: the `rows` rows of a group must
    /// fall into different L1 sets (4 KiB apart they share one, as every dense row of 1024 or 4096
    /// floats does), i.e. lda modulo 1024 floats between one cache line and 1024 / rows.
    public static func readsInPlace(lda: Int, k: Int, rows: Int) -> Bool {
        let shift = lda % 1024
        return lda >= k && lda % 16 == 0 && shift >= 16 && shift * rows <= 1024
    }

    /// How C starts.
    public enum Start: Int32, Sendable {
        /// C += A·B.
        case accumulate = 0
        /// C = bias + A·B (0 without a bias).
        case set = 1
        /// C += bias + A·B (residual connections).
        case addBias = 2
    }

    /// Applied to C once complete, tile by tile while it is in cache.
    public enum Activation: Int32, Sendable {
        case none = 0, relu = 1, gelu = 2
    }

    /// C (m × b.n, rows `ldc` apart) += A·B; see `multiply`.
    public static func accumulate(
        _ a: UnsafePointer<Float>, lda: Int, rowOffsets: [Int]? = nil, rows m: Int, segments: [Int]? = nil, _ b: PackedMatrix,
        into c: UnsafeMutablePointer<Float>, ldc: Int, scratch: Scratch,
        variant: Variant = GEMM.variant, workers: Int = Parallel.workers
    ) {
        multiply(a, lda: lda, rowOffsets: rowOffsets, rows: m, segments: segments, b, into: c, ldc: ldc, scratch: scratch,
                 variant: variant, workers: workers)
    }

    /// C (m × b.n, rows `ldc` apart) = activation(start(C) + A·B), `bias` having b.n values. Row r
    /// of A starts at `a + r·lda`, or at `a + rowOffsets[r]`; with `segments` it is the runs
    /// `start + segments[s]` of `b.k / segments.count` values each (a 3×3 convolution's shifted
    /// taps). Rows are split among `workers` threads; each packs its own rows of A.
    public static func multiply(
        _ a: UnsafePointer<Float>, lda: Int, rowOffsets: [Int]? = nil, rows m: Int, segments: [Int]? = nil, _ b: PackedMatrix,
        into c: UnsafeMutablePointer<Float>, ldc: Int, start: Start = .accumulate, bias: UnsafePointer<Float>? = nil,
        activation: Activation = .none, scratch: Scratch,
        variant: Variant = GEMM.variant, workers: Int = Parallel.workers
    ) {
        guard m > 0, b.n > 0 else { return }
        let k = b.k, n = b.n
        let segmentCount = segments?.count ?? 1
        precondition(k % segmentCount == 0, "k = \(k) is no multiple of \(segmentCount) segments")
        let mr = variant.groupRows
        let inPlace = readsInPlace(lda: lda, k: k, rows: mr) && segments == nil && rowOffsets == nil
        // Fewer parts than workers when the work is small: under 4 groups of rows is not worth a thread.
        let parts = max(1, min(workers, m / (4 * mr)))
        // Each part packs and multiplies its rows a chunk at a time (about 256 rows, whose packed
        // A stays in L2 while the panels pass): a tall A (a 3×3 convolution's 3,248 rows × 9,216)
        // never needs a packed copy of itself.
        let chunkRows = mr * ((256 + mr - 1) / mr)
        let chunkFloats = Int(ck_gemm_packed_a_floats(variant.rawValue, chunkRows, k))
        let packed = inPlace ? UnsafeMutablePointer(mutating: a) : scratch.buffer("gemm.packedA", parts * chunkFloats)
        let panels = (n + PackedMatrix.panelWidth - 1) / PackedMatrix.panelWidth
        precondition(rowOffsets.map { $0.count >= m } ?? true, "fewer row offsets than rows")
        let offsets = segments ?? [], starts = rowOffsets ?? []
        starts.withUnsafeBufferPointer { starts in
        offsets.withUnsafeBufferPointer { offsets in
            let run = { (part: Int) in
                // A read in place: the parts split the panels, so each thread streams half of B
                // and the other's rows stay out of its cache (bench: 765 → 735 ms per tile at 2
                // threads). A packed copy is made by the part that uses it: the parts split the rows.
                if inPlace && panels >= 2 * parts {
                    let p0 = part * panels / parts, p1 = (part + 1) * panels / parts
                    for first in stride(from: 0, to: m, by: chunkRows) {
                        let count = min(chunkRows, m - first), groups = (count + mr - 1) / mr
                        ck_gemm_run(variant.rawValue, count, n, k, a + first * lda, lda, b.pointer, c + first * ldc, ldc,
                                    bias, start.rawValue, activation.rawValue, 0, groups, p0, p1)
                    }
                    return
                }
                let buffer = packed + part * chunkFloats
                let end = (part + 1) * m / parts
                for first in stride(from: part * m / parts, to: end, by: chunkRows) {
                    let count = min(chunkRows, end - first), groups = (count + mr - 1) / mr
                    if inPlace {
                        ck_gemm_run(variant.rawValue, count, n, k, a + first * lda, lda, b.pointer, c + first * ldc, ldc,
                                    bias, start.rawValue, activation.rawValue, 0, groups, 0, panels)
                        continue
                    }
                    ck_gemm_pack_a(variant.rawValue, starts.isEmpty ? a + first * lda : a, lda,
                                   starts.isEmpty ? nil : starts.baseAddress! + first, count, segmentCount, k / segmentCount,
                                   offsets.isEmpty ? nil : offsets.baseAddress, buffer, 0, groups)
                    ck_gemm_run(variant.rawValue, count, n, k, buffer, 0, b.pointer, c + first * ldc, ldc,
                                bias, start.rawValue, activation.rawValue, 0, groups, 0, panels)
                }
            }
            if parts == 1 { run(0) } else { Parallel.forParts(parts, run) }
        }
        }
    }
}
