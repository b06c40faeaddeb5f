/// Resizing of channels-last maps, following PyTorch's `F.interpolate` index arithmetic exactly
/// (`area_pixel_compute_source_index`), so results agree to float rounding.
public enum Resampling {
    /// Source coordinate of output index `dst` for linear/cubic interpolation.
    @inline(__always)
    static func sourceIndex(_ dst: Int, inSize: Int, outSize: Int, alignCorners: Bool, cubic: Bool) -> Float {
        if alignCorners {
            let scale: Float = outSize > 1 ? Float(inSize - 1) / Float(outSize - 1) : 0
            return scale * Float(dst)
        }
        let scale = Float(inSize) / Float(outSize)
        let src = scale * (Float(dst) + 0.5) - 0.5
        return (!cubic && src < 0) ? 0 : src
    }

    /// Per output index: the two source indices and their weights.
    static func linearTaps(inSize: Int, outSize: Int, alignCorners: Bool) -> [(Int, Int, Float, Float)] {
        (0..<outSize).map { dst in
            let src = sourceIndex(dst, inSize: inSize, outSize: outSize, alignCorners: alignCorners, cubic: false)
            let i0 = min(Int(src), inSize - 1)
            let i1 = i0 < inSize - 1 ? i0 + 1 : i0
            let l1 = src - Float(i0)
            return (i0, i1, 1 - l1, l1)
        }
    }

    /// Bilinear resize of an inH×inW×C map to outH×outW×C; `dst` rows (pixels) are `dstStride` apart.
    public static func bilinear(
        _ src: UnsafePointer<Float>, inHeight: Int, inWidth: Int, channels: Int,
        into dst: UnsafeMutablePointer<Float>, outHeight: Int, outWidth: Int, dstStride: Int? = nil, alignCorners: Bool
    ) {
        let ld = dstStride ?? channels
        let rows = linearTaps(inSize: inHeight, outSize: outHeight, alignCorners: alignCorners)
        let cols = linearTaps(inSize: inWidth, outSize: outWidth, alignCorners: alignCorners)
        if channels == 1 && ld == 1 {
            // One plane (logits or bands resampled plane by plane, from other modules that cannot
            // inline this function): the general loop's scalar tail, without its per-pixel setup.
            cols.withUnsafeBufferPointer { cols in
                for (oy, (y0, y1, wy0, wy1)) in rows.enumerated() {
                    let r0 = src + y0 * inWidth, r1 = src + y1 * inWidth, out = dst + oy * outWidth
                    for ox in 0..<outWidth {
                        let (x0, x1, wx0, wx1) = cols[ox]
                        out[ox] = wy0 * wx0 * r0[x0] + wy0 * wx1 * r0[x1] + wy1 * wx0 * r1[x0] + wy1 * wx1 * r1[x1]
                    }
                }
            }
            return
        }
        // Output rows in parallel for the decoder's maps (a 56×56×256 upsampling is 0.8 M outputs).
        Parallel.forRanges(outHeight, minimum: max(1, 65_536 / max(1, outWidth * channels))) { range in
        for oy in range {
            let (y0, y1, wy0, wy1) = rows[oy]
            for (ox, (x0, x1, wx0, wx1)) in cols.enumerated() {
                let out = dst + (oy * outWidth + ox) * ld
                let p00 = src + (y0 * inWidth + x0) * channels, p01 = src + (y0 * inWidth + x1) * channels
                let p10 = src + (y1 * inWidth + x0) * channels, p11 = src + (y1 * inWidth + x1) * channels
                var c = 0
                let (a, b, cc, d) = (Vec8(repeating: wy0 * wx0), Vec8(repeating: wy0 * wx1), Vec8(repeating: wy1 * wx0), Vec8(repeating: wy1 * wx1))
                while c + 8 <= channels {
                    let v = a * load8(p00 + c) + b * load8(p01 + c) + cc * load8(p10 + c) + d * load8(p11 + c)
                    store8(v, out + c)
                    c += 8
                }
                while c < channels {
                    out[c] = wy0 * wx0 * p00[c] + wy0 * wx1 * p01[c] + wy1 * wx0 * p10[c] + wy1 * wx1 * p11[c]
                    c += 1
                }
            }
        }
        }
    }

    /// Bilinear resize from channels-last to planar (C × outH × outW) — the head's logits to bands.
    public static func bilinearToPlanar(
        _ src: UnsafePointer<Float>, inHeight: Int, inWidth: Int, channels: Int,
        into dst: UnsafeMutablePointer<Float>, outHeight: Int, outWidth: Int, alignCorners: Bool
    ) {
        let rows = linearTaps(inSize: inHeight, outSize: outHeight, alignCorners: alignCorners)
        let cols = linearTaps(inSize: inWidth, outSize: outWidth, alignCorners: alignCorners)
        let plane = outHeight * outWidth
        for (oy, (y0, y1, wy0, wy1)) in rows.enumerated() {
            for (ox, (x0, x1, wx0, wx1)) in cols.enumerated() {
                let p00 = src + (y0 * inWidth + x0) * channels, p01 = src + (y0 * inWidth + x1) * channels
                let p10 = src + (y1 * inWidth + x0) * channels, p11 = src + (y1 * inWidth + x1) * channels
                let o = oy * outWidth + ox
                for c in 0..<channels {
                    dst[c * plane + o] = wy0 * wx0 * p00[c] + wy0 * wx1 * p01[c] + wy1 * wx0 * p10[c] + wy1 * wx1 * p11[c]
                }
            }
        }
    }

    /// Cubic convolution weights (Keys, A = −0.75 as PyTorch) for fractional offset t.
    static func cubicWeights(_ t: Float) -> (Float, Float, Float, Float) {
        let a: Float = -0.75
        func near(_ x: Float) -> Float { ((a + 2) * x - (a + 3)) * x * x + 1 }
        func far(_ x: Float) -> Float { ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
        return (far(t + 1), near(t), near(1 - t), far(2 - t))
    }

    /// Bicubic resize (PyTorch `mode="bicubic"`, borders clamped) of a channels-last map.
    public static func bicubic(
        _ src: UnsafePointer<Float>, inHeight: Int, inWidth: Int, channels: Int,
        into dst: UnsafeMutablePointer<Float>, outHeight: Int, outWidth: Int, alignCorners: Bool
    ) {
        func taps(_ inSize: Int, _ outSize: Int) -> [([Int], [Float])] {
            (0..<outSize).map { dst in
                let real = sourceIndex(dst, inSize: inSize, outSize: outSize, alignCorners: alignCorners, cubic: true)
                let base = Int(real.rounded(.down))
                let (w0, w1, w2, w3) = cubicWeights(real - Float(base))
                let indices = (-1...2).map { min(max(base + $0, 0), inSize - 1) }
                return (indices, [w0, w1, w2, w3])
            }
        }
        let rows = taps(inHeight, outHeight), cols = taps(inWidth, outWidth)
        var line = [Float](repeating: 0, count: 4 * channels)
        for (oy, (ry, wy)) in rows.enumerated() {
            for (ox, (rx, wx)) in cols.enumerated() {
                // Horizontal pass on the four source rows, then vertical, as PyTorch does.
                for k in 0..<4 {
                    for c in 0..<channels {
                        let row = src + ry[k] * inWidth * channels
                        line[k * channels + c] = wx[0] * row[rx[0] * channels + c] + wx[1] * row[rx[1] * channels + c]
                            + wx[2] * row[rx[2] * channels + c] + wx[3] * row[rx[3] * channels + c]
                    }
                }
                let out = dst + (oy * outWidth + ox) * channels
                for c in 0..<channels {
                    out[c] = wy[0] * line[c] + wy[1] * line[channels + c] + wy[2] * line[2 * channels + c] + wy[3] * line[3 * channels + c]
                }
            }
        }
    }
}

extension Resampling {
    /// OpenCV's `INTER_LINEAR` resize of a channels-last float image (what albumentations'
    /// `Resize` runs): half-pixel centres, float coefficients, no antialiasing; separable in
    /// OpenCV's order — each source row resized horizontally, then rows blended vertically.
    public static func openCVLinear(_ src: [Float], inHeight: Int, inWidth: Int, channels: Int, outHeight: Int, outWidth: Int) -> [Float] {
        func taps(_ inSize: Int, _ outSize: Int) -> [(Int, Int, Float, Float)] {
            let scale = Double(inSize) / Double(outSize)
            return (0..<outSize).map { d in
                var f = Float((Double(d) + 0.5) * scale - 0.5)
                var s = Int(f.rounded(.down))
                f -= Float(s)
                if s < 0 { s = 0; f = 0 }
                if s >= inSize - 1 { s = inSize - 1; f = 0 }
                return (s, min(s + 1, inSize - 1), 1 - f, f)
            }
        }
        let columns = taps(inWidth, outWidth), rows = taps(inHeight, outHeight)
        // Horizontal pass for every source row a destination row needs.
        var horizontal = [Float](repeating: 0, count: inHeight * outWidth * channels)
        for y in 0..<inHeight {
            for (x, (s0, s1, a0, a1)) in columns.enumerated() {
                for c in 0..<channels {
                    horizontal[(y * outWidth + x) * channels + c] = src[(y * inWidth + s0) * channels + c] * a0 + src[(y * inWidth + s1) * channels + c] * a1
                }
            }
        }
        var dst = [Float](repeating: 0, count: outHeight * outWidth * channels)
        let rowLength = outWidth * channels
        for (y, (s0, s1, b0, b1)) in rows.enumerated() {
            for i in 0..<rowLength { dst[y * rowLength + i] = horizontal[s0 * rowLength + i] * b0 + horizontal[s1 * rowLength + i] * b1 }
        }
        return dst
    }
}
