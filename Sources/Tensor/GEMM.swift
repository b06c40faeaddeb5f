import CKernels
import Foundation

/// C += A·B with B packed once (`PackedMatrix`), the project's own kernels (gemm.c): every layer of
/// the model is such a product of activations and weights. Each element of C gets the same
/// fused multiply-add chains in the same order whatever the variant and the thread split, so a
/// GEMM's result is bitwise the same across variants, `--threads` and workers.
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

    /// C (m × b.n, rows `ldc` apart) = activation(start(C) + A·B), `bias` having b.n values. Row r
    /// of A starts at `a + r·lda`, or at `a + rowOffsets[r]`; with `segments` it is the runs
    /// `start + segments[s]` of `b.k / segments.count` values each (a 3×3 convolution's shifted
    /// taps). The work is split among `workers` threads by panels or by rows (see below); either
    /// way each element of C is computed by one thread in the one rounding order.
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
        let mr = variant.groupRows, v = variant.rawValue
        let panels = (n + PackedMatrix.panelWidth - 1) / PackedMatrix.panelWidth
        precondition(rowOffsets.map { $0.count >= m } ?? true, "fewer row offsets than rows")
        // Rows go a chunk at a time (about 256, whose packed A stays in L2 while the panels pass):
        // a tall A (a 3×3 convolution's 3,136 rows × 9,216) never needs a packed copy of itself.
        let chunkRows = mr * ((256 + mr - 1) / mr)
        let chunkFloats = Int(ck_gemm_packed_a_floats(v, chunkRows, k))
        let inPlace = readsInPlace(lda: lda, k: k, rows: mr) && segments == nil && rowOffsets == nil
        // How the threads share the work; none is worth a thread below a million multiply-adds.
        //   panels: each thread streams its share of B over all the rows (A read in place, or packed
        //     once beforehand when the rows are few); the other's rows stay out of its cache
        //     (bench: 765 → 735 ms per tile at 2 threads against splitting the rows).
        //   rows: each thread packs and multiplies its own rows (a copy of A per thread).
        let worthThreads = workers > 1 && m * n * k >= 1 << 20
        let fewRows = m < 4 * mr * workers
        let splitPanels = worthThreads && panels >= 2 * workers && (inPlace || fewRows)
        let parts = !worthThreads ? 1 : splitPanels ? workers : max(1, min(workers, m / (4 * mr)))
        let offsets = segments ?? [], starts = rowOffsets ?? []
        starts.withUnsafeBufferPointer { starts in
        offsets.withUnsafeBufferPointer { offsets in
            /// Packs rows [first, first + count) of A into `buffer`.
            func pack(_ first: Int, _ count: Int, into buffer: UnsafeMutablePointer<Float>) {
                ck_gemm_pack_a(v, starts.isEmpty ? a + first * lda : a, lda, starts.isEmpty ? nil : starts.baseAddress! + first,
                               count, segmentCount, k / segmentCount, offsets.isEmpty ? nil : offsets.baseAddress,
                               buffer, 0, (count + mr - 1) / mr)
            }
            func multiply(_ first: Int, _ count: Int, _ a: UnsafePointer<Float>, lda: Int, panels range: Range<Int>) {
                ck_gemm_run(v, count, n, k, a, lda, b.pointer, c + first * ldc, ldc, bias, start.rawValue, activation.rawValue,
                            0, (count + mr - 1) / mr, range.lowerBound, range.upperBound)
            }
            if splitPanels {
                // All of A packed once, on this thread, unless it is read in place (few rows: cheap).
                let packedA = inPlace ? nil : scratch.buffer("gemm.packedA", Int(ck_gemm_packed_a_floats(v, m, k)))
                if let packedA { pack(0, m, into: packedA) }
                Parallel.forParts(parts) { part in
                    let range = (part * panels / parts)..<((part + 1) * panels / parts)
                    if let packedA {
                        multiply(0, m, packedA, lda: 0, panels: range)
                    } else {
                        for first in stride(from: 0, to: m, by: chunkRows) {
                            multiply(first, min(chunkRows, m - first), a + first * lda, lda: lda, panels: range)
                        }
                    }
                }
                return
            }
            let buffers = inPlace ? nil : scratch.buffer("gemm.packedA", parts * chunkFloats)
            Parallel.forParts(parts) { part in
                let end = (part + 1) * m / parts
                for first in stride(from: part * m / parts, to: end, by: chunkRows) {
                    let count = min(chunkRows, end - first)
                    if let buffers {
                        let buffer = buffers + part * chunkFloats
                        pack(first, count, into: buffer)
                        multiply(first, count, buffer, lda: 0, panels: 0..<panels)
                    } else {
                        multiply(first, count, a + first * lda, lda: lda, panels: 0..<panels)
                    }
                }
            }
        }
        }
    }
}
