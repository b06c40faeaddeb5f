import Foundation
import Tensor
import TestSupport
import Testing

/// Golden values from PyTorch 2.15 `F.interpolate` / `F.pad` on small maps.
@Suite struct ResamplingTests {
    static let map: [Float] = [1, 2, 4, -1, 0.5, 3, 2, -2, 0]

    static func resize(_ mode: String, _ outH: Int, _ outW: Int, alignCorners: Bool, channels: Int = 1) -> [Float] {
        // Replicate the 3×3 map into `channels` identical channels to exercise the vector path.
        let x = map.flatMap { Array(repeating: $0, count: channels) }
        var y = [Float](repeating: 0, count: outH * outW * channels)
        if mode == "bilinear" {
            Resampling.bilinear(x, inHeight: 3, inWidth: 3, channels: channels, into: &y, outHeight: outH, outWidth: outW, alignCorners: alignCorners)
        } else {
            Resampling.bicubic(x, inHeight: 3, inWidth: 3, channels: channels, into: &y, outHeight: outH, outWidth: outW, alignCorners: alignCorners)
        }
        return stride(from: 0, to: y.count, by: channels).map { y[$0] }
    }

    @Test(arguments: [1, 9]) func bilinearAlignCornersTrue(channels: Int) {
        let expected: [Float] = [1.0, 1.5, 2.0, 3.0, 4.0, 0.0, 0.625, 1.25, 2.375, 3.5, -1.0, -0.25, 0.5, 1.75, 3.0,
                                 0.5, -0.125, -0.75, 0.375, 1.5, 2.0, 0.0, -2.0, -1.0, 0.0]
        #expect(maxAbsoluteError(Self.resize("bilinear", 5, 5, alignCorners: true, channels: channels), expected) < 1e-6)
    }

    @Test(arguments: [1, 9]) func bilinearAlignCornersFalseUp(channels: Int) {
        let expected: [Float] = [
            1.0, 1.1428572, 1.5714285, 2.0, 2.8571429, 3.7142859, 4.0, 0.7142857, 0.8673469, 1.3265307, 1.7857143, 2.6734693,
            3.5612247, 3.8571429, -0.1428572, 0.0408163, 0.5918367, 1.1428571, 2.1224489, 3.102041, 3.4285715, -1.0, -0.7857143,
            -0.1428571, 0.5, 1.5714287, 2.6428573, 3.0, 0.2857144, 0.1632654, -0.2040817, -0.5714287, 0.4081632, 1.3877552,
            1.7142856, 1.5714288, 1.1122451, -0.2653062, -1.6428573, -0.7551022, 0.132653, 0.4285712, 2.0, 1.4285713, -0.2857144,
            -2.0, -1.1428571, -0.2857141, 0.0,
        ]
        #expect(maxAbsoluteError(Self.resize("bilinear", 7, 7, alignCorners: false, channels: channels), expected) < 1e-6)
    }

    @Test func bilinearAlignCornersFalseDown() {
        #expect(maxAbsoluteError(Self.resize("bilinear", 2, 2, alignCorners: false), [0.78125, 3.21875, 0.59375, 0.21875]) < 1e-6)
    }

    @Test func onePlaneRoundsAsTheGeneralLoop() {
        // The one-plane path must give the general loop's bits (workers and the coordinator mix them).
        var random = SeededRandom(seed: 4)
        let plane = random.array(37 * 37)
        var alone = [Float](repeating: 0, count: 224 * 224), interleaved = [Float](repeating: 0, count: 3 * 224 * 224)
        Resampling.bilinear(plane, inHeight: 37, inWidth: 37, channels: 1, into: &alone, outHeight: 224, outWidth: 224, alignCorners: false)
        let three = plane.flatMap { [$0, -$0, 2 * $0] }
        Resampling.bilinear(three, inHeight: 37, inWidth: 37, channels: 3, into: &interleaved, outHeight: 224, outWidth: 224, alignCorners: false)
        #expect(alone == stride(from: 0, to: interleaved.count, by: 3).map { interleaved[$0] })
    }

    @Test func bilinearToPlanarMatchesChannelsLast() {
        var random = SeededRandom(seed: 9)
        let c = 3
        let x = random.array(4 * 5 * c)
        var planar = [Float](repeating: 0, count: c * 8 * 10), channelsLast = planar
        Resampling.bilinearToPlanar(x, inHeight: 4, inWidth: 5, channels: c, into: &planar, outHeight: 8, outWidth: 10, alignCorners: false)
        Resampling.bilinear(x, inHeight: 4, inWidth: 5, channels: c, into: &channelsLast, outHeight: 8, outWidth: 10, alignCorners: false)
        #expect(maxAbsoluteError(planarToChannelsLast(planar, images: 1, channels: c, height: 8, width: 10), channelsLast) < 1e-6)
    }

    @Test func bicubicAlignCornersTrue() {
        let square: [Float] = [1.0, 1.3125, 2.0, 3.09375, 4.0, -0.28125, 0.3862305, 1.484375, 2.7983398, 3.78125, -1.0, -0.484375, 0.5,
                               1.890625, 3.0, 0.3125, -0.5043945, -0.890625, 0.1450195, 1.40625, 2.0, -0.1875, -2.0, -1.375, 0.0]
        #expect(maxAbsoluteError(Self.resize("bicubic", 5, 5, alignCorners: true), square) < 1e-6)
        let oblong: [Float] = [1.0, 1.2439998, 1.6320002, 2.4480007, 3.296, 4.0, -0.7037036, -0.1183331, 0.6759265, 1.8596308, 2.8583341,
                               3.648149, -0.2777781, -0.5187038, -0.6529627, -0.0485179, 1.0012963, 1.9444442, 2.0, 0.304, -1.4879999,
                               -2.0319998, -1.064, 0.0]
        #expect(maxAbsoluteError(Self.resize("bicubic", 4, 6, alignCorners: true, channels: 3), oblong) < 2e-6)
    }

    @Test func reflectPaddingMirrorsWithoutRepeatingTheEdge() {
        let x = (0..<12).map(Float.init)  // 3×4
        var y = [Float](repeating: 0, count: 6 * 7)
        Padding.reflect(x, height: 3, width: 4, top: 1, left: 2, into: &y, outHeight: 6, outWidth: 7)
        let expected: [Float] = [6, 5, 4, 5, 6, 7, 6, 2, 1, 0, 1, 2, 3, 2, 6, 5, 4, 5, 6, 7, 6, 10, 9, 8, 9, 10, 11, 10,
                                 6, 5, 4, 5, 6, 7, 6, 2, 1, 0, 1, 2, 3, 2]
        #expect(y == expected)
    }
}
