import Foundation
import Tensor

/// The fixed and coordinate encodings of the Prithvi encoder, computed exactly as TerraTorch does.
public enum PositionEncoding {
    /// 1-D sin-cos embedding in Double (numpy's get_1d_sincos_pos_embed_from_grid): for each
    /// position, [sin(p·ω_i)…, cos(p·ω_i)…] with ω_i = 1/10000^(i/(D/2)).
    static func sinCos1D(dim: Int, positions: [Double]) -> [[Double]] {
        let half = dim / 2
        let omega = (0..<half).map { 1.0 / pow(10000.0, Double($0) / Double(half)) }
        return positions.map { p in omega.map { sin(p * $0) } + omega.map { cos(p * $0) } }
    }

    /// The (1 + t·h·w) × E position embedding with a zero CLS row: channel blocks
    /// [w: 6E/16 | h: 6E/16 | t: 4E/16], tokens in (t, h, w) row-major order; float64 cast to float32.
    public static func sinCos3D(embedDim e: Int, frames t: Int = 1, height h: Int, width w: Int) -> [Float] {
        let wDim = e / 16 * 6, hDim = e / 16 * 6, tDim = e / 16 * 4
        let wEmbed = sinCos1D(dim: wDim, positions: (0..<w).map(Double.init))
        let hEmbed = sinCos1D(dim: hDim, positions: (0..<h).map(Double.init))
        let tEmbed = sinCos1D(dim: tDim, positions: (0..<t).map(Double.init))
        var result = [Float](repeating: 0, count: (1 + t * h * w) * e)
        var token = 1
        for ti in 0..<t {
            for hi in 0..<h {
                for wi in 0..<w {
                    let row = token * e
                    for k in 0..<wDim { result[row + k] = Float(wEmbed[wi][k]) }
                    for k in 0..<hDim { result[row + wDim + k] = Float(hEmbed[hi][k]) }
                    for k in 0..<tDim { result[row + wDim + hDim + k] = Float(tEmbed[ti][k]) }
                    token += 1
                }
            }
        }
        return result
    }

    /// The position embedding for a grid other than the training one: the patch rows of `base`
    /// (a g×g grid) resized bicubically (align_corners=True) to h×w, the CLS row kept.
    public static func interpolated(_ base: [Float], embedDim e: Int, grid g: Int, height h: Int, width w: Int) -> [Float] {
        if g == h && g == w { return base }
        var result = [Float](repeating: 0, count: (1 + h * w) * e)
        for k in 0..<e { result[k] = base[k] }
        base.withUnsafeBufferPointer { src in
            result.withUnsafeMutableBufferPointer { dst in
                Resampling.bicubic(src.baseAddress! + e, inHeight: g, inWidth: g, channels: e,
                                   into: dst.baseAddress! + e, outHeight: h, outWidth: w, alignCorners: true)
            }
        }
        return result
    }

    /// 1-D sin-cos in float32, as TerraTorch's torch version for coordinates: ω computed in float32.
    static func sinCos1DFloat(dim: Int, position: Float) -> [Float] {
        let half = dim / 2
        let omega = (0..<half).map { i -> Float in 1 / powf(10000, Float(i) / (Float(dim) / 2)) }
        return omega.map { sinf(position * $0) } + omega.map { cosf(position * $0) }
    }

    /// scale · [sincos(E/2, c0) | sincos(E − E/2, c1)]: the location encoder with (c0, c1) =
    /// (longitude, latitude) as the plugin passes them, or the temporal one with (year, day of year).
    public static func coordinates(embedDim e: Int, _ c0: Float, _ c1: Float, scale: Float) -> [Float] {
        let first = e / 2
        return (sinCos1DFloat(dim: first, position: c0) + sinCos1DFloat(dim: e - first, position: c1)).map { $0 * scale }
    }
}
