import Foundation
import Geo
import TestSupport
import Testing

@Suite struct StitcherTests {
    /// Collects emitted strips into full planar images.
    final class Canvas {
        let width: Int, height: Int, bands: Int
        var floats: [Float]
        var bytes: [UInt8]
        var strips: [(Int, Int)] = []
        init(width: Int, height: Int, bands: Int) {
            self.width = width; self.height = height; self.bands = bands
            floats = [Float](repeating: -1, count: bands * width * height)
            bytes = [UInt8](repeating: 77, count: width * height)
        }
        func sink(_ first: Int, _ rows: Int, _ f: [Float]?, _ b: [UInt8]?) {
            strips.append((first, rows))
            if let b { for i in 0..<(rows * width) { bytes[first * width + i] = b[i] } }
            if let f {
                for band in 0..<bands {
                    for i in 0..<(rows * width) { floats[band * width * height + first * width + i] = f[band * rows * width + i] }
                }
            }
        }
    }

    /// Logits of tile `index` as a smooth function of scene position (same everywhere for every tile).
    static func tileLogits(_ plan: TilePlan, _ index: Int, classes: Int, perTileOffset: Bool = false) -> [Float] {
        let n = plan.window, s = plan.tile(index).source
        var logits = [Float](repeating: 0, count: classes * n * n)
        for k in 0..<classes {
            for y in 0..<n {
                for x in 0..<n {
                    let sx = Float(s.x + x), sy = Float(s.y + y)
                    let field: Float = sin(sx / 40) + cos(sy / 30)
                    let sign: Float = k == 0 ? 1 : -1
                    let offset: Float = perTileOffset ? Float(index) * 0.01 : 0
                    logits[(k * n + y) * n + x] = sign * field + offset
                }
            }
        }
        return logits
    }

    @Test func consistentTilesBlendToTheSameValuesWithoutSeams() throws {
        let plan = try TilePlan(sceneWidth: 500, sceneHeight: 430, tileSize: 224, stride: 192)
        let canvas = Canvas(width: 500, height: 430, bands: 2)
        let stitcher = Stitcher(plan: plan, classes: 2, kind: .logits) { first, rows, floats, bytes, _ in try canvas.sink(first, rows, floats, bytes) }
        for index in 0..<plan.count { try stitcher.add(tile: index, logits: Self.tileLogits(plan, index, classes: 2), valid: nil) }
        #expect(stitcher.isComplete)
        var worst: Float = 0
        for y in 0..<430 {
            for x in 0..<500 {
                let expected = sin(Float(x) / 40) + cos(Float(y) / 30)
                worst = max(worst, abs(canvas.floats[y * 500 + x] - expected))
            }
        }
        #expect(worst < 1e-5, "blending identical predictions must return them unchanged (worst \(worst))")
    }

    @Test func outputDoesNotDependOnArrivalOrder() throws {
        let plan = try TilePlan(sceneWidth: 600, sceneHeight: 500, tileSize: 224, stride: 160)
        func run(_ order: [Int]) throws -> [Float] {
            let canvas = Canvas(width: 600, height: 500, bands: 2)
            let stitcher = Stitcher(plan: plan, classes: 2, kind: .probabilities) { first, rows, floats, bytes, _ in try canvas.sink(first, rows, floats, bytes) }
            for index in order {
                try stitcher.add(tile: index, logits: Self.tileLogits(plan, index, classes: 2, perTileOffset: true), valid: nil)
            }
            #expect(stitcher.isComplete)
            return canvas.floats
        }
        let inOrder = try run(Array(0..<plan.count))
        var random = SeededRandom(seed: 99)
        let shuffled = try run(Array(0..<plan.count).shuffled(using: &random))
        #expect(inOrder == shuffled, "bitwise identical whatever the order tiles finish in")
    }

    @Test func stripsAreEmittedAsGridRowsComplete() throws {
        let plan = try TilePlan(sceneWidth: 300, sceneHeight: 600, tileSize: 224, stride: 192)
        let canvas = Canvas(width: 300, height: 600, bands: 1)
        let stitcher = Stitcher(plan: plan, classes: 2, kind: .mask) { first, rows, floats, bytes, _ in try canvas.sink(first, rows, floats, bytes) }
        #expect(plan.columns == 2 && stitcher.blendsMargins)
        try stitcher.add(tile: 0, logits: Self.tileLogits(plan, 0, classes: 1), valid: nil)
        #expect(canvas.strips.isEmpty)
        try stitcher.add(tile: 1, logits: Self.tileLogits(plan, 1, classes: 1), valid: nil)
        #expect(canvas.strips.count == 1 && canvas.strips[0] == (0, 192))
        // A later tile waits in the reorder buffer until the earlier one arrives.
        try stitcher.add(tile: 3, logits: Self.tileLogits(plan, 3, classes: 1), valid: nil)
        #expect(stitcher.waiting == 1 && canvas.strips.count == 1)
        try stitcher.add(tile: 2, logits: Self.tileLogits(plan, 2, classes: 1), valid: nil)
        #expect(plan.rowOrigins == [0, 192, 376])
        #expect(canvas.strips.count == 2 && canvas.strips[1] == (192, 184))
        #expect(stitcher.rowsWritten == 376)
        #expect(throws: PlanError.self) { try stitcher.add(tile: 2, logits: nil, valid: nil) }
    }

    @Test func nodataPixelsAndSkippedTilesStayNodata() throws {
        let plan = try TilePlan(sceneWidth: 448, sceneHeight: 224, tileSize: 224, stride: 224)
        let canvas = Canvas(width: 448, height: 224, bands: 1)
        let stitcher = Stitcher(plan: plan, classes: 2, kind: .mask) { first, rows, floats, bytes, _ in try canvas.sink(first, rows, floats, bytes) }
        var valid = [UInt8](repeating: 1, count: 224 * 224)
        valid[5 * 224 + 7] = 0
        // Class 1 (water) everywhere in tile 0: a margin l₁ − l₀ of 2.
        let water = [Float](repeating: 2, count: 224 * 224)
        try stitcher.add(tile: 0, logits: water, valid: valid)
        try stitcher.add(tile: 1, logits: nil, valid: nil)
        #expect(canvas.bytes[0] == 255)
        #expect(canvas.bytes[5 * 448 + 7] == 0, "a nodata input pixel is nodata in the mask")
        #expect(canvas.bytes[10 * 448 + 300] == 0, "an all-nodata tile is nodata")
    }

    @Test func aMaskBlendedFromMarginsIsTheArgmaxOfTheBlendedLogits() throws {
        let plan = try TilePlan(sceneWidth: 700, sceneHeight: 530, tileSize: 224, stride: 150)
        let logits = Canvas(width: 700, height: 530, bands: 2), mask = Canvas(width: 700, height: 530, bands: 1)
        let blended = Stitcher(plan: plan, classes: 2, kind: .logits) { first, rows, floats, bytes, _ in try logits.sink(first, rows, floats, bytes) }
        let masked = Stitcher(plan: plan, classes: 2, kind: .mask) { first, rows, floats, bytes, _ in try mask.sink(first, rows, floats, bytes) }
        let plane = plan.window * plan.window
        for index in 0..<plan.count {
            // Tiles disagree where they overlap (an offset per tile), so the blend decides pixels.
            let tile = Self.tileLogits(plan, index, classes: 2, perTileOffset: true).enumerated().map { $0.offset < plane ? $0.element * 0.7 : $0.element }
            try blended.add(tile: index, logits: tile, valid: nil)
            try masked.add(tile: index, logits: (0..<plane).map { tile[plane + $0] - tile[$0] }, valid: nil)
        }
        var water = 0, differing = 0
        for p in 0..<(700 * 530) {
            let argmax: UInt8 = logits.floats[700 * 530 + p] > logits.floats[p] ? 255 : 0
            if mask.bytes[p] == 255 { water += 1 }
            if mask.bytes[p] != argmax { differing += 1 }
        }
        #expect(water > 700 * 530 / 5 && water < 700 * 530 * 4 / 5, "both classes present (\(water) water pixels)")
        #expect(differing == 0, "\(differing) pixels differ from the argmax of the blended logits")
    }

    @Test func probabilitiesAreASoftmax() throws {
        let plan = try TilePlan(sceneWidth: 224, sceneHeight: 224)
        let canvas = Canvas(width: 224, height: 224, bands: 3)
        let stitcher = Stitcher(plan: plan, classes: 3, kind: .probabilities) { first, rows, floats, bytes, _ in try canvas.sink(first, rows, floats, bytes) }
        let logits = [Float](repeating: 0, count: 224 * 224) + [Float](repeating: 1, count: 224 * 224) + [Float](repeating: 2, count: 224 * 224)
        try stitcher.add(tile: 0, logits: logits, valid: nil)
        let plane = 224 * 224
        let p = [canvas.floats[0], canvas.floats[plane], canvas.floats[2 * plane]]
        #expect(abs(p.reduce(0, +) - 1) < 1e-6)
        #expect(abs(p[2] - 0.66524096) < 1e-6)
    }
}

@Suite struct SeamTests {
    /// Neighbouring tiles that disagree by a constant (as real tiles do near their edges) must
    /// blend into a gentle ramp across the overlap, never a step at a tile edge.
    @Test func disagreeingTilesBlendWithoutSteps() throws {
        let plan = try TilePlan(sceneWidth: 800, sceneHeight: 224, tileSize: 224, stride: 192)
        let canvas = StitcherTests.Canvas(width: 800, height: 224, bands: 1)
        let stitcher = Stitcher(plan: plan, classes: 1, kind: .logits) { first, rows, floats, bytes, _ in try canvas.sink(first, rows, floats, bytes) }
        for index in 0..<plan.count {
            // Tile k predicts the constant k: a hard cut would step by 1 at each boundary.
            try stitcher.add(tile: index, logits: [Float](repeating: Float(index), count: 224 * 224), valid: nil)
        }
        let row = 100
        let jumps = (1..<800).map { abs(canvas.floats[row * 800 + $0] - canvas.floats[row * 800 + $0 - 1]) }
        // Across a 32-pixel overlap the change of 1 is spread: no single step above a tenth of it.
        #expect(jumps.max()! < 0.1, "largest step \(jumps.max()!)")
        #expect(abs(canvas.floats[row * 800 + 100] - 0) < 1e-6 && abs(canvas.floats[row * 800 + 700] - Float(plan.count - 1)) < 1e-6)
    }
}

@Suite struct StitcherResumeTests {
    /// Interrupting after any grid row and resuming gives the uninterrupted bytes, also when
    /// windows overlap several grid rows (small strides).
    @Test(arguments: [192, 96])
    func resumingAfterAnyGridRowGivesTheSameOutput(stride: Int) throws {
        let plan = try TilePlan(sceneWidth: 500, sceneHeight: 700, tileSize: 224, stride: stride, scale: 8.0 / 7.0)
        func run(from start: Int, skipping skip: Int, into canvas: StitcherTests.Canvas) throws {
            let stitcher = Stitcher(plan: plan, classes: 2, kind: .probabilities, startGridRow: start, skipStripsThrough: skip) {
                first, rows, floats, bytes, _ in try canvas.sink(first, rows, floats, bytes)
            }
            for index in (start * plan.columns)..<plan.count {
                try stitcher.add(tile: index, logits: StitcherTests.tileLogits(plan, index, classes: 2, perTileOffset: true), valid: nil)
            }
            #expect(stitcher.isComplete)
        }
        let whole = StitcherTests.Canvas(width: 500, height: 700, bands: 2)
        try run(from: 0, skipping: -1, into: whole)
        for written in 0..<(plan.rows - 1) {
            // The interrupted run wrote strips through grid row `written`; the resumed one the rest.
            let canvas = StitcherTests.Canvas(width: 500, height: 700, bands: 2)
            let upTo = plan.rowsFinal(afterGridRow: written)
            for band in 0..<2 {
                for i in 0..<(upTo * 500) { canvas.floats[band * 700 * 500 + i] = whole.floats[band * 700 * 500 + i] }
            }
            let start = Stitcher.resumeGridRow(plan, after: written)
            #expect(start <= written)
            try run(from: start, skipping: written, into: canvas)
            #expect(canvas.strips.allSatisfy { $0.0 >= upTo }, "rows already written are not written again")
            #expect(canvas.floats.elementsEqual(whole.floats) { $0 == $1 || ($0.isNaN && $1.isNaN) }, "resumed after grid row \(written)")
        }
    }
}
