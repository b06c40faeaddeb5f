import Foundation
import Tensor
import TestSupport
import Testing

@Suite struct VectorMathTests {
    @Test func expMatchesLibmAcrossItsRange() {
        let x = (0..<20_000).map { Float(-87 + Double($0) * 175.0 / 20_000) }
        var y = [Float](repeating: 0, count: x.count)
        VectorMath.exp(x, into: &y, count: x.count)
        let worst = zip(x, y).map { abs(Double($1) - Foundation.exp(Double($0))) / Foundation.exp(Double($0)) }.max()!
        #expect(worst < 3e-7, "relative error \(worst)")
    }

    @Test func geluIsExactErfGELU() {
        var values = (0..<40_003).map { Float($0 - 20_000) / 2500 }  // −8 … 8; odd count, split across cores
        let inputs = values
        values.withUnsafeMutableBufferPointer { VectorMath.gelu($0.baseAddress!, count: $0.count) }
        let expected = inputs.map { x in Float(0.5 * Double(x) * (1 + Foundation.erf(Double(x) / 2.0.squareRoot()))) }
        #expect(maxAbsoluteError(values, expected) < 1e-6)
    }

    /// A&S 7.1.26 is within 1.5e-7 in exact arithmetic; float32 evaluation adds a few ulps.
    @Test func erfIsWithinAbramowitzStegunBound() {
        let x = (0..<4001).map { Float($0 - 2000) / 500 }
        var y = [Float](repeating: 0, count: x.count)
        VectorMath.erf(x, into: &y, count: x.count)
        for (input, output) in zip(x, y) {
            #expect(abs(Double(output) - Foundation.erf(Double(input))) < 5e-7, "erf(\(input))")
        }
    }

    @Test func softmaxRowsSumToOneAndMatchNaive() {
        var random = SeededRandom(seed: 7)
        let rows = 5, cols = 37, stride = 40
        var data = random.array(rows * stride, -20, 20)
        let original = data
        data.withUnsafeMutableBufferPointer { VectorMath.softmaxRows($0.baseAddress!, rows: rows, cols: cols, stride: stride, scale: 0.125) }
        for r in 0..<rows {
            let logits = (0..<cols).map { Double(original[r * stride + $0]) * 0.125 }
            let top = logits.max()!
            let sum = logits.map { Foundation.exp($0 - top) }.reduce(0, +)
            for c in 0..<cols {
                #expect(abs(Double(data[r * stride + c]) - Foundation.exp(logits[c] - top) / sum) < 1e-6)
            }
            // Padding past `cols` is untouched.
            for c in cols..<stride { #expect(data[r * stride + c] == original[r * stride + c]) }
        }
    }

    @Test func layerNormMatchesDoublePrecision() {
        var random = SeededRandom(seed: 3)
        let rows = 4, dim = 67
        let x = random.array(rows * dim, -3, 5)
        let weight = random.array(dim, 0.5, 1.5), bias = random.array(dim)
        var y = [Float](repeating: 0, count: rows * dim)
        VectorMath.layerNorm(x, rows: rows, dim: dim, weight: weight, bias: bias, eps: 1e-5, into: &y)
        for r in 0..<rows {
            let row = x[(r * dim)..<((r + 1) * dim)].map(Double.init)
            let mean = row.reduce(0, +) / Double(dim)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(dim)
            for i in 0..<dim {
                let expected = (row[i] - mean) / (variance + 1e-5).squareRoot() * Double(weight[i]) + Double(bias[i])
                #expect(abs(Double(y[r * dim + i]) - expected) < 2e-5)
            }
        }
    }

    @Test func linearAppliesWeightTransposeAndBias() {
        var random = SeededRandom(seed: 11)
        let rows = 9, inF = 13, outF = 7
        let x = random.array(rows * inF), w = random.array(outF * inF), b = random.array(outF)
        var y = [Float](repeating: 0, count: rows * outF)
        var residual = random.array(rows * outF)
        let before = residual
        w.withUnsafeBufferPointer { wp in
            b.withUnsafeBufferPointer { bp in
                let layer = LinearWeights(weight: wp.baseAddress!, bias: bp.baseAddress!, inFeatures: inF, outFeatures: outF)
                layer.apply(x, rows: rows, into: &y, scratch: Scratch())
                layer.apply(x, rows: rows, into: &residual, accumulate: true, scratch: Scratch())
            }
        }
        for r in 0..<rows {
            for o in 0..<outF {
                var sum = Double(b[o])
                for i in 0..<inF { sum += Double(x[r * inF + i]) * Double(w[o * inF + i]) }
                #expect(abs(Double(y[r * outF + o]) - sum) < 1e-5)
                #expect(abs(Double(residual[r * outF + o]) - (sum + Double(before[r * outF + o]))) < 1e-5)
            }
        }
    }

    @Test func attentionMatchesNaiveSoftmaxAttention() {
        var random = SeededRandom(seed: 5)
        let tokens = 11, heads = 3, d = 8, e = heads * d
        let qkv = random.array(tokens * 3 * e, -2, 2)
        var out = [Float](repeating: 0, count: tokens * e)
        Attention.multiHead(qkv, tokens: tokens, embedDim: e, heads: heads, into: &out, scratch: Scratch())
        var expected = [Float](repeating: 0, count: tokens * e)
        for h in 0..<heads {
            for i in 0..<tokens {
                let scores = (0..<tokens).map { j in
                    (0..<d).reduce(0.0) { $0 + Double(qkv[i * 3 * e + h * d + $1]) * Double(qkv[j * 3 * e + e + h * d + $1]) } / Double(d).squareRoot()
                }
                let top = scores.max()!
                let weights = scores.map { Foundation.exp($0 - top) }
                let total = weights.reduce(0, +)
                for k in 0..<d {
                    expected[i * e + h * d + k] = Float((0..<tokens).reduce(0.0) { $0 + weights[$1] / total * Double(qkv[$1 * 3 * e + 2 * e + h * d + k]) })
                }
            }
        }
        #expect(maxAbsoluteError(out, expected) < 1e-5)
    }
}
