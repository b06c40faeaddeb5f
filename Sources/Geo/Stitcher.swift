import CKernels
import Foundation

/// What `segment` writes per pixel.
public enum OutputKind: String, Sendable, CaseIterable {
    /// uint8: water (class 1 of two) 255, other classes 0, nodata 0.
    case mask
    /// float32, one band per class: the blended logits; nodata NaN.
    case logits
    /// float32, one band per class: softmax of the blended logits; nodata NaN.
    case probabilities
}

/// Blends overlapping tiles' logits into finished row strips.
///
/// Each tile's logits (on its source window) are weighted by a separable Hann window
/// sin²(π(i+½)/n), strictly positive, and Σw·logits and Σw are accumulated for the rows still
/// open. Tiles are added strictly in plan order (later ones wait in a small reorder buffer), so
/// the floating-point sums — hence the output — do not depend on how many workers there are or
/// in which order tiles finish. A strip is emitted as soon as the last tile of a grid row is in.
public final class Stitcher {
    public let plan: TilePlan
    public let classes: Int
    public let kind: OutputKind
    /// Receives finished rows: (first row, row count, planar values [bands × rows × width]) for
    /// float outputs, or bytes [rows × width] for masks, and the grid row that completed them.
    public typealias StripSink = (_ firstRow: Int, _ rows: Int, _ floats: [Float]?, _ bytes: [UInt8]?, _ gridRow: Int) throws -> Void
    private let sink: StripSink
    private let skipStripsThrough: Int

    private let weights: [Float]
    private let width: Int
    private let capacityRows: Int
    /// Scene row of accumulator row 0; rows above it are written.
    private var baseRow = 0
    // The accumulators, allocated once and owned by this object (freed in deinit; one thread
    // uses a stitcher): Σw·logits per class or Σw·margin (`planes` planes of capacityRows ×
    // width), Σw, and validity (0 where any tile saw nodata). Raw pointers keep the hot loops
    // free of copy-on-write and exclusivity checks, so they vectorise.
    private let sums: UnsafeMutablePointer<Float>
    private let weightSums: UnsafeMutablePointer<Float>
    /// Masks skip Σw: an argmax needs no normalisation, and a valid pixel always lies in a
    /// computed tile (a pixel covered only by all-nodata tiles is marked invalid), so the mask is
    /// the same bit for bit with a quarter less memory traffic per blended tile.
    private let accumulatesWeights: Bool
    private let valid: UnsafeMutablePointer<UInt8>
    /// Two-class masks blended from class margins (l₁ − l₀, one plane per tile): the mask is
    /// the sign of Σw·margin. Half the accumulators and half the bytes per tile of two planes.
    public let blendsMargins: Bool
    /// Planes accumulated per pixel: 1 for margins, else one per class.
    private let planes: Int
    private var pending: [Int: (logits: [Float]?, valid: [UInt8]?)] = [:]
    private var maskStrip: [UInt8] = []
    public private(set) var nextTile = 0

    /// Continuing an interrupted run whose strips through grid row `resumeAfter` are written:
    /// blending restarts at the first grid row whose tiles reach below those rows, and the
    /// strips it completes up to `resumeAfter` are dropped, not written again. Tiles are blended
    /// in plan order, so the sums of every later row are rebuilt bit for bit.
    public static func resumeGridRow(_ plan: TilePlan, after resumeAfter: Int) -> Int {
        guard resumeAfter + 1 < plan.rows else { return plan.rows }
        let written = plan.rowsFinal(afterGridRow: resumeAfter)
        return plan.rowOrigins.firstIndex { $0 + plan.window > written } ?? resumeAfter
    }

    /// Whether tiles of a `classes`-class model segmented to `kind` are blended as class margins.
    public static func blendsMargins(classes: Int, kind: OutputKind) -> Bool { kind == .mask && classes == 2 }

    /// `startGridRow` > 0 starts blending at that grid row (see `resumeGridRow`); strips of grid
    /// rows up to `skipStripsThrough` are dropped (already written by an earlier run). Tiles of
    /// two-class masks are handed in as margins (`blendsMargins(classes:kind:)`), the others as
    /// every class's logits.
    public init(plan: TilePlan, classes: Int, kind: OutputKind, startGridRow: Int = 0, skipStripsThrough: Int = -1,
                sink: @escaping StripSink) {
        self.plan = plan
        self.classes = classes
        self.kind = kind
        blendsMargins = Self.blendsMargins(classes: classes, kind: kind)
        planes = blendsMargins ? 1 : classes
        self.sink = sink
        self.skipStripsThrough = skipStripsThrough
        let n = plan.window
        accumulatesWeights = kind != .mask
        weights = (0..<n).map { i in
            let s = sin(Double.pi * (Double(i) + 0.5) / Double(n))
            return Float(s * s)
        }
        width = plan.sceneWidth
        // While grid row k is blended, open rows lie in [origin(k), origin(k) + window).
        capacityRows = min(plan.sceneHeight, n)
        let cells = capacityRows * width
        sums = .allocate(capacity: max(1, planes * cells))
        sums.initialize(repeating: 0, count: planes * cells)
        // Masks never touch Σw: one float, not a plane nobody reads (its fresh pages alone cost
        // a 6000-wide scene a few milliseconds).
        let weightCells = accumulatesWeights ? cells : 1
        weightSums = .allocate(capacity: max(1, weightCells))
        weightSums.initialize(repeating: 0, count: weightCells)
        valid = .allocate(capacity: max(1, cells))
        valid.initialize(repeating: 1, count: cells)
        if startGridRow >= plan.rows {
            nextTile = plan.count
            baseRow = plan.sceneHeight
        } else if startGridRow > 0 {
            nextTile = startGridRow * plan.columns
            baseRow = plan.rowOrigins[startGridRow]
        }
    }

    /// Rows written so far.
    public var rowsWritten: Int { baseRow }
    /// Tiles waiting in the reorder buffer.
    public var waiting: Int { pending.count }

    /// Hands in tile `index`: its logits resampled to the source window (classes × window ×
    /// window, planar; one window × window plane of margins when `blendsMargins`) and its
    /// validity mask (source window size), or nil for a tile that was skipped (all nodata).
    /// Strips complete by it (and by tiles it unblocks) are emitted.
    public func add(tile index: Int, logits: [Float]?, valid tileValid: [UInt8]?) throws {
        guard index >= nextTile, pending[index] == nil, index < plan.count else {
            throw PlanError("tile \(index) handed to the stitcher twice")
        }
        pending[index] = (logits, tileValid)
        while let next = pending.removeValue(forKey: nextTile) {
            let tile = plan.tile(nextTile)
            if let logits = next.logits { accumulate(tile, logits: logits, tileValid: next.valid) } else { markInvalid(tile) }
            nextTile += 1
            let lastOfRow = tile.gridColumn == plan.columns - 1
            if lastOfRow { try emit(upTo: plan.rowsFinal(afterGridRow: tile.gridRow), gridRow: tile.gridRow) }
        }
    }

    deinit {
        sums.deallocate()
        weightSums.deallocate()
        valid.deallocate()
    }

    private func accumulate(_ tile: TilePlan.Tile, logits: [Float], tileValid: [UInt8]?) {
        let n = plan.window, s = tile.source, width = self.width, capacity = capacityRows * width
        precondition(s.y >= baseRow && s.y + s.height - baseRow <= capacityRows, "stitcher window overflow")
        precondition(logits.count >= planes * n * n && (tileValid?.count ?? s.pixelCount) >= s.pixelCount, "tile \(tile.index): short logits or validity")
        logits.withUnsafeBufferPointer { l in
            weights.withUnsafeBufferPointer { w in
                let w = w.baseAddress!
                for row in 0..<s.height {
                    let accRow = (s.y + row - baseRow) * width + s.x
                    ck_blend_row(accumulatesWeights ? weightSums + accRow : nil, sums + accRow, capacity, l.baseAddress! + row * n, n * n, planes, w, w[row], s.width)
                    if let tileValid {
                        tileValid.withUnsafeBufferPointer { ck_and_bytes(valid + accRow, $0.baseAddress! + row * s.width, s.width) }
                    }
                }
            }
        }
    }

    /// An all-nodata tile contributes nothing; its pixels are nodata.
    private func markInvalid(_ tile: TilePlan.Tile) {
        let s = tile.source
        for row in 0..<s.height {
            (valid + (s.y + row - baseRow) * width + s.x).update(repeating: 0, count: s.width)
        }
    }

    /// Writes rows [baseRow, end) and slides the accumulators up.
    private func emit(upTo end: Int, gridRow: Int) throws {
        let count = end - baseRow
        guard count > 0 else { return }
        let pixels = count * width
        let capacity = capacityRows * width
        let (sums, weightSums, valid, classes, planes) = (self.sums, self.weightSums, self.valid, self.classes, self.planes)
        switch gridRow <= skipStripsThrough ? nil : kind {
        case nil:
            break
        case .mask:
            // One strip's buffer serves the next of the same size (the sinks do not keep it).
            if maskStrip.count != pixels { maskStrip = [UInt8](repeating: 0, count: pixels) }
            var bytes = maskStrip
            maskStrip = []
            defer { maskStrip = bytes }
            bytes.withUnsafeMutableBufferPointer { out in
                let out = out.baseAddress!
                if blendsMargins {
                    // The common case (water or not): 255 where class 1 wins.
                    ck_mask_margin(sums, valid, out, pixels)
                } else {
                    out.update(repeating: 0, count: pixels)
                    for p in 0..<pixels where valid[p] == 1 {
                        var best = 0
                        for k in 1..<max(classes, 1) where sums[k * capacity + p] > sums[best * capacity + p] { best = k }
                        out[p] = Self.maskValue(classIndex: best)
                    }
                }
            }
            try sink(baseRow, count, nil, bytes, gridRow)
        case .logits, .probabilities:
            var floats = [Float](repeating: .nan, count: classes * pixels)
            let probabilities = kind == .probabilities
            floats.withUnsafeMutableBufferPointer { out in
                let out = out.baseAddress!
                for p in 0..<pixels where valid[p] == 1 && weightSums[p] > 0 {
                    let inverse = 1 / weightSums[p]
                    for k in 0..<classes { out[k * pixels + p] = sums[k * capacity + p] * inverse }
                    if probabilities {
                        var top = -Float.infinity
                        for k in 0..<classes { top = max(top, out[k * pixels + p]) }
                        var total: Float = 0
                        for k in 0..<classes { let e = Foundation.exp(out[k * pixels + p] - top); out[k * pixels + p] = e; total += e }
                        for k in 0..<classes { out[k * pixels + p] /= total }
                    }
                }
            }
            try sink(baseRow, count, floats, nil, gridRow)
        }
        // Slide the open rows to the top and clear the freed ones.
        let keep = capacityRows - count
        for k in 0..<planes {
            let plane = sums + k * capacity
            if keep > 0 { plane.update(from: plane + pixels, count: keep * width) }
            (plane + keep * width).update(repeating: 0, count: pixels)
        }
        if accumulatesWeights {
            if keep > 0 { weightSums.update(from: weightSums + pixels, count: keep * width) }
            (weightSums + keep * width).update(repeating: 0, count: pixels)
        }
        if keep > 0 { valid.update(from: valid + pixels, count: keep * width) }
        (valid + keep * width).update(repeating: 1, count: pixels)
        baseRow = end
    }

    /// Mask value of a class in a model of more than two classes: class index + 1 (0 stays
    /// nodata). Two-class masks (water 255, as the vLLM plugin writes argmax·255) come from margins.
    static func maskValue(classIndex: Int) -> UInt8 { UInt8(clamping: classIndex + 1) }

    /// True once every tile has been blended and every row written.
    public var isComplete: Bool { nextTile == plan.count && baseRow == plan.sceneHeight }
}
