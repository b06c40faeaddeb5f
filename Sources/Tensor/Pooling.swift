/// Pooling on channels-last maps.
public enum Pooling {
    /// MaxPool2d(kernel 2, stride 2): (h × w × C) → (h/2 × w/2 × C), odd edges dropped as PyTorch does.
    public static func maxPool2x2(_ x: UnsafePointer<Float>, height h: Int, width w: Int, channels: Int, into y: UnsafeMutablePointer<Float>) {
        let oh = h / 2, ow = w / 2
        for oy in 0..<oh {
            for ox in 0..<ow {
                let out = y + (oy * ow + ox) * channels
                let a = x + ((2 * oy) * w + 2 * ox) * channels
                let b = a + channels, c = a + w * channels, d = c + channels
                for k in 0..<channels { out[k] = max(max(a[k], b[k]), max(c[k], d[k])) }
            }
        }
    }

    /// AdaptiveAvgPool2d(p): bin i spans [⌊i·h/p⌋, ⌈(i+1)·h/p⌉), as PyTorch.
    public static func adaptiveAverage(_ x: UnsafePointer<Float>, height h: Int, width w: Int, channels: Int,
                                       outputSize p: Int, into y: UnsafeMutablePointer<Float>) {
        for by in 0..<p {
            let y0 = (by * h) / p, y1 = ((by + 1) * h + p - 1) / p
            for bx in 0..<p {
                let x0 = (bx * w) / p, x1 = ((bx + 1) * w + p - 1) / p
                let out = y + (by * p + bx) * channels
                out.update(repeating: 0, count: channels)
                for yy in y0..<y1 {
                    for xx in x0..<x1 { VectorMath.add(x + (yy * w + xx) * channels, into: out, count: channels) }
                }
                let inverse = 1 / Float((y1 - y0) * (x1 - x0))
                for k in 0..<channels { out[k] *= inverse }
            }
        }
    }
}
