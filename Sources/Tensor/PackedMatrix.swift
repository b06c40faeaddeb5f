import CKernels

/// A weight matrix B (k × n) in the GEMM's panel layout (`ck_gemm_pack_b`): packed once, read by
/// every forward pass. The storage is either this process's own memory or a memory-mapped cache
/// file shared by every worker of a node (`PackedWeightCache`); `owner` keeps it alive.
public final class PackedMatrix: @unchecked Sendable {
    // Sendable: the panels are written once, before the matrix is handed out, and only read after.
    /// Rows of B (the reduction dimension, a layer's input features).
    public let k: Int
    /// Columns of B (a layer's output features).
    public let n: Int
    public let pointer: UnsafePointer<Float>
    private let owner: AnyObject

    /// Columns per panel.
    public static let panelWidth = Int(CK_GEMM_PANEL)

    /// Floats of a packed k × n matrix (panels of 32 columns, zero past n).
    public static func floats(n: Int, k: Int) -> Int { Int(ck_gemm_packed_b_floats(n, k)) }

    /// Packs into `packed` (`floats(n:k:)` floats); see `init(packing:…)`.
    public static func pack(_ w: UnsafePointer<Float>, n: Int, k: Int, transposed: Bool, rowStride: Int? = nil,
                            into packed: UnsafeMutablePointer<Float>) {
        ck_gemm_pack_b(w, rowStride ?? (transposed ? k : n), transposed ? 1 : 0, n, k, packed)
    }

    /// Packs B = wᵀ from PyTorch's Linear layout, w being n × k (`transposed`), or B = w, w being k × n;
    /// rows of w are `rowStride` apart (default: dense).
    public init(packing w: UnsafePointer<Float>, n: Int, k: Int, transposed: Bool, rowStride: Int? = nil) {
        let storage = FloatBuffer(count: Self.floats(n: n, k: k), zeroed: false)
        Self.pack(w, n: n, k: k, transposed: transposed, rowStride: rowStride, into: storage.pointer)
        self.k = k; self.n = n
        pointer = UnsafePointer(storage.pointer)
        owner = storage
    }

    /// Panels already packed at `pointer` (a cache file's mapping, kept alive by `owner`).
    public init(packed pointer: UnsafePointer<Float>, n: Int, k: Int, owner: AnyObject) {
        self.k = k; self.n = n; self.pointer = pointer; self.owner = owner
    }

    /// The panels as a buffer (for writing them to a cache file).
    public var panels: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: pointer, count: Self.floats(n: n, k: k)) }
}
