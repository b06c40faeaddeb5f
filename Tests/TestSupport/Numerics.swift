import Foundation

/// Deterministic pseudo-random numbers for tests (SplitMix64).
public struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [low, high).
    public mutating func uniform(_ low: Float = -1, _ high: Float = 1) -> Float {
        low + (high - low) * Float(next() >> 40) / Float(1 << 24)
    }

    public mutating func array(_ count: Int, _ low: Float = -1, _ high: Float = 1) -> [Float] {
        (0..<count).map { _ in uniform(low, high) }
    }
}

/// max |actual − expected| divided by the range of `expected` (ggml-style normalised error).
public func normalisedMaxError(_ actual: [Float], _ expected: [Float]) -> Float {
    precondition(actual.count == expected.count, "sizes differ: \(actual.count) vs \(expected.count)")
    guard let low = expected.min(), let high = expected.max() else { return 0 }
    let range = max(high - low, 1e-20)
    var worst: Float = 0
    for (a, e) in zip(actual, expected) {
        let error = abs(a - e)
        if !(error <= worst) { worst = error.isNaN ? .infinity : error }
    }
    return worst / range
}

/// Maximum absolute difference.
public func maxAbsoluteError(_ actual: [Float], _ expected: [Float]) -> Float {
    precondition(actual.count == expected.count, "sizes differ: \(actual.count) vs \(expected.count)")
    return zip(actual, expected).reduce(0) { worst, pair in
        let error = abs(pair.0 - pair.1)
        return error.isNaN ? .infinity : max(worst, error)
    }
}

/// Converts planar [images, C, H, W] to channels-last [images, H, W, C].
public func planarToChannelsLast(_ values: [Float], images: Int, channels: Int, height: Int, width: Int) -> [Float] {
    var out = [Float](repeating: 0, count: values.count)
    for n in 0..<images {
        for c in 0..<channels {
            for p in 0..<(height * width) {
                out[(n * height * width + p) * channels + c] = values[(n * channels + c) * height * width + p]
            }
        }
    }
    return out
}
