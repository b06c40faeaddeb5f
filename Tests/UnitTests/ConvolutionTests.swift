import Foundation
import Tensor
import TestSupport
import Testing

/// Convolutions on channels-last maps against direct loops over PyTorch-layout weights.
@Suite struct ConvolutionTests {
    /// Direct convolution, padding k/2, NHWC in and out, weight [out][in][k][k], y·scale + shift.
    static func naiveConv(_ x: [Float], h: Int, w: Int, inC: Int, weight: [Float], bias: [Float]?, outC: Int, k: Int,
                          scale: [Float]?, shift: [Float]?, relu: Bool) -> [Float] {
        var y = [Float](repeating: 0, count: h * w * outC)
        let pad = k / 2
        for row in 0..<h {
            for col in 0..<w {
                for o in 0..<outC {
                    var sum = Double(bias?[o] ?? 0)
                    for i in 0..<inC {
                        for ky in 0..<k {
                            for kx in 0..<k {
                                let sy = row + ky - pad, sx = col + kx - pad
                                guard sy >= 0, sy < h, sx >= 0, sx < w else { continue }
                                sum += Double(x[(sy * w + sx) * inC + i]) * Double(weight[((o * inC + i) * k + ky) * k + kx])
                            }
                        }
                    }
                    var v = Float(sum) * (scale?[o] ?? 1) + (shift?[o] ?? 0)
                    if relu { v = max(v, 0) }
                    y[(row * w + col) * outC + o] = v
                }
            }
        }
        return y
    }

    /// Both forms of the 3×3 (Winograd, the default, and direct), maps of odd and even sides (the
    /// last Winograd tile row and column half outside).
    @Test(arguments: [(1, false, 5, 7), (3, false, 5, 7), (3, true, 5, 7), (3, true, 6, 4), (3, true, 1, 1), (3, true, 2, 3)])
    func convolutionMatchesDirectLoops(kernel: Int, winograd: Bool, h: Int, w: Int) {
        var random = SeededRandom(seed: UInt64(kernel * 100 + h * 10 + w))
        let inC = 6, outC = 9
        let x = random.array(h * w * inC), weight = random.array(outC * inC * kernel * kernel)
        let bias = random.array(outC), scale = random.array(outC, 0.5, 2), shift = random.array(outC)
        for relu in [false, true] {
            let layer = ConvWeights(pytorch: weight, bias: bias, inChannels: inC, outChannels: outC, kernel: kernel, scale: scale, shift: shift,
                                    winograd: winograd)
            #expect((layer.winograd != nil) == (kernel == 3 && winograd))
            // Written into a wider buffer with a stride, as the decoder concatenates.
            let stride = outC + 4
            var y = [Float](repeating: .nan, count: h * w * stride)
            layer.apply(x, height: h, width: w, into: &y, yStride: stride, relu: relu, scratch: Scratch())
            let dense = (0..<(h * w)).flatMap { p in y[(p * stride)..<(p * stride + outC)] }
            let expected = Self.naiveConv(x, h: h, w: w, inC: inC, weight: weight, bias: bias, outC: outC, k: kernel,
                                          scale: scale, shift: shift, relu: relu)
            #expect(maxAbsoluteError(dense, expected) < 1e-5)
            #expect(y[outC].isNaN, "the stride gap must stay untouched")
        }
    }

    /// The fpn_bottleneck's channel count (k = 1024 per tap): Winograd's transforms add a little
    /// rounding (G's halves, sums of four products), held to what the model's parity tests allow.
    @Test func winogradAtTheDecodersWidthStaysCloseToDirect() {
        var random = SeededRandom(seed: 31)
        let h = 9, w = 8, inC = 1024, outC = 40
        let x = random.array(h * w * inC), weight = random.array(outC * inC * 9).map { $0 * 0.03 }, bias = random.array(outC)
        let expected = Self.naiveConv(x, h: h, w: w, inC: inC, weight: weight, bias: bias, outC: outC, k: 3, scale: nil, shift: nil, relu: false)
        var fast = [Float](repeating: .nan, count: h * w * outC), direct = fast
        ConvWeights(pytorch: weight, bias: bias, inChannels: inC, outChannels: outC, kernel: 3)
            .apply(x, height: h, width: w, into: &fast, relu: false, scratch: Scratch())
        ConvWeights(pytorch: weight, bias: bias, inChannels: inC, outChannels: outC, kernel: 3, winograd: false)
            .apply(x, height: h, width: w, into: &direct, relu: false, scratch: Scratch())
        let scale = expected.map(abs).max()!
        #expect(maxAbsoluteError(direct, expected) / scale < 2e-6)
        #expect(maxAbsoluteError(fast, expected) / scale < 1e-5, "Winograd: \(maxAbsoluteError(fast, expected) / scale)")
    }

    @Test func transposedConvolutionPaintsTwoByTwoBlocks() {
        var random = SeededRandom(seed: 21)
        let h = 3, w = 4, inC = 5, outC = 6
        let x = random.array(h * w * inC), weight = random.array(inC * outC * 4), bias = random.array(outC)
        let scale = random.array(outC, 0.5, 2), shift = random.array(outC)
        let layer = ConvTranspose2x2Weights(pytorch: weight, bias: bias, inChannels: inC, outChannels: outC, scale: scale, shift: shift)
        var y = [Float](repeating: 0, count: 4 * h * w * outC)
        layer.apply(x, height: h, width: w, into: &y, scratch: Scratch())
        var expected = [Float](repeating: 0, count: y.count)
        for row in 0..<(2 * h) {
            for col in 0..<(2 * w) {
                for o in 0..<outC {
                    var sum = Double(bias[o])
                    for i in 0..<inC {
                        sum += Double(x[((row / 2) * w + col / 2) * inC + i]) * Double(weight[((i * outC + o) * 2 + row % 2) * 2 + col % 2])
                    }
                    expected[(row * 2 * w + col) * outC + o] = Float(sum) * scale[o] + shift[o]
                }
            }
        }
        #expect(maxAbsoluteError(y, expected) < 1e-5)
    }

    @Test func maxPoolTakesTheLargestOfEachBlock() {
        let h = 4, w = 6, c = 2
        let x = (0..<(h * w * c)).map { Float(($0 * 37) % 23) }
        var y = [Float](repeating: 0, count: 2 * 3 * c)
        Pooling.maxPool2x2(x, height: h, width: w, channels: c, into: &y)
        for oy in 0..<2 {
            for ox in 0..<3 {
                for k in 0..<c {
                    let block = [(0, 0), (0, 1), (1, 0), (1, 1)].map { x[((2 * oy + $0.0) * w + 2 * ox + $0.1) * c + k] }
                    #expect(y[(oy * 3 + ox) * c + k] == block.max())
                }
            }
        }
    }

    /// Golden values from PyTorch 2.15 `F.adaptive_avg_pool2d` on (arange(49)^1.5/10) as 7×7.
    @Test(arguments: [
        (1, [13.3717337]),
        (2, [4.879179, 6.4361792, 19.3676147, 21.9926758]),
        (3, [2.7383783, 3.5732286, 4.5270095, 10.5872669, 12.0141869, 13.5038033, 21.8088608, 23.6280117, 25.4962673]),
    ] as [(Int, [Float])])
    func adaptiveAveragePoolMatchesPyTorch(_ size: Int, _ expected: [Float]) {
        let x = (0..<49).map { Float(pow(Double($0), 1.5) / 10) }
        var y = [Float](repeating: 0, count: size * size)
        Pooling.adaptiveAverage(x, height: 7, width: 7, channels: 1, outputSize: size, into: &y)
        #expect(maxAbsoluteError(y, expected) < 2e-5)
    }

    @Test func adaptiveAveragePoolOfSixOnSevenOverlapsBins() {
        let x = (0..<49).map { Float(pow(Double($0), 1.5) / 10) }
        var y = [Float](repeating: 0, count: 36)
        Pooling.adaptiveAverage(x, height: 7, width: 7, channels: 1, outputSize: 6, into: &y)
        let expectedHead: [Float] = [1.0536919, 1.3363961, 1.6661839, 2.0325451, 2.4308109, 2.8579667, 3.7906408]
        #expect(maxAbsoluteError(Array(y.prefix(7)), expectedHead) < 2e-5)
        #expect(abs(y[35] - 29.2569962) < 2e-5)
    }
}
