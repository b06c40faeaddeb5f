import Foundation
import Model
import Tensor
import TestSupport
import Testing

/// `LinearWeights.apply` on the encoder's real shapes, on one and two threads: bitwise the same
/// values (the GEMM's rounding contract), nothing written outside its rows' `out` columns, bias
/// and residual added. The thread count is process-wide: the suite is serialised and restores it.
@Suite(.serialized) struct LinearTests {
    static func run(rows: Int, inFeatures: Int, outFeatures: Int, padding: Int, bias: Bool, accumulate: Bool, threads: Int) -> [Float] {
        var random = SeededRandom(seed: UInt64(rows * 31 + outFeatures))
        let x = random.array(rows * inFeatures)
        let weight = random.array(outFeatures * inFeatures).map { $0 * 0.05 }
        let b = random.array(outFeatures)
        let stride = outFeatures + padding
        // Residual values in the output columns, a sentinel in the padding columns.
        var y = (0..<(rows * stride)).map { $0 % stride < outFeatures ? Float($0 % 7) - 3 : -12345 }
        let before = BLAS.threads
        BLAS.threads = threads
        defer { BLAS.threads = before }
        weight.withUnsafeBufferPointer { w in
            b.withUnsafeBufferPointer { b in
                let layer = LinearWeights(weight: w.baseAddress!, bias: bias ? b.baseAddress! : nil, inFeatures: inFeatures, outFeatures: outFeatures)
                x.withUnsafeBufferPointer { x in
                    y.withUnsafeMutableBufferPointer { y in
                        layer.apply(x.baseAddress!, rows: rows, into: y.baseAddress!, yStride: stride, accumulate: accumulate, scratch: Scratch())
                    }
                }
            }
        }
        return y
    }

    @Test(arguments: [(197, 1024, 4096), (197, 4096, 1024), (197, 1024, 3072), (788, 1024, 1000), (197, 1024, 1024)])
    func twoThreadsComputeWhatOneDoes(shape: (Int, Int, Int)) {
        let (rows, inFeatures, outFeatures) = shape
        for (bias, accumulate) in [(true, false), (true, true), (false, true), (false, false)] {
            let one = Self.run(rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, padding: 5, bias: bias, accumulate: accumulate, threads: 1)
            let two = Self.run(rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, padding: 5, bias: bias, accumulate: accumulate, threads: 2)
            #expect(one == two, "\(shape) bias \(bias) accumulate \(accumulate): two threads differ from one")
            let stride = outFeatures + 5
            #expect((0..<(rows * stride)).allSatisfy { $0 % stride < outFeatures || two[$0] == -12345 }, "padding columns written")
        }
    }

    @Test func biasAndResidualAreAdded() {
        // One input feature of 1 and a weight of 2: y = residual + 2 + bias.
        let weight = [Float](repeating: 2, count: 512), bias = (0..<512).map { Float($0) }
        var y = [Float](repeating: 10, count: 256 * 512)
        let x = [Float](repeating: 1, count: 256)
        weight.withUnsafeBufferPointer { w in
            bias.withUnsafeBufferPointer { b in
                let layer = LinearWeights(weight: w.baseAddress!, bias: b.baseAddress!, inFeatures: 1, outFeatures: 512)
                x.withUnsafeBufferPointer { x in
                    y.withUnsafeMutableBufferPointer { layer.apply(x.baseAddress!, rows: 256, into: $0.baseAddress!, accumulate: true, scratch: Scratch()) }
                }
            }
        }
        #expect((0..<(256 * 512)).allSatisfy { y[$0] == 12 + Float($0 % 512) })
    }
}

/// The whole model at one and two threads: bitwise the same logits (every GEMM rounds in one
/// order whatever the split, the other loops split by rows), so `--resume` and results do not
/// depend on `--threads`.
@Suite(.serialized) struct ThreadCountTests {
    @Test func logitsDoNotDependOnTheThreadCount() throws {
        let model = try PrithviSegmentationModel(directory: ModelLoadingTests.fixture, environment: ["PRITHVI_WEIGHT_CACHE": "off"])
        var random = SeededRandom(seed: 8)
        let pixels = random.array(2 * 6 * 64 * 64)
        let before = BLAS.threads
        defer { BLAS.threads = before }
        var results: [[Float]] = []
        for threads in [1, 2, 3] {
            BLAS.threads = threads
            var logits = [Float](repeating: 0, count: 2 * model.config.numClasses * 64 * 64)
            try model.forward(pixels, images: 2, height: 64, width: 64, into: &logits, scratch: Scratch())
            results.append(logits)
        }
        #expect(results[0] == results[1] && results[0] == results[2])
        #expect(results[0].contains { $0 != 0 })
    }
}
