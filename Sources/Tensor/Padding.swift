/// Padding of planar images.
public enum Padding {
    /// Reflect-pads one h×w plane into outH×outW with the image at (top, left), mirroring without
    /// repeating the edge pixel (PyTorch/NumPy "reflect"). Pads must be smaller than the image.
    public static func reflect(_ src: UnsafePointer<Float>, height h: Int, width w: Int, top: Int, left: Int,
                               into dst: UnsafeMutablePointer<Float>, outHeight: Int, outWidth: Int) {
        func mirror(_ i: Int, _ n: Int) -> Int {
            guard n > 1 else { return 0 }
            let period = 2 * (n - 1)
            var k = i % period
            if k < 0 { k += period }
            return k < n ? k : period - k
        }
        // Source column of every output column, computed once; the image's own columns are one run.
        let columns = (0..<outWidth).map { mirror($0 - left, w) }
        let runStart = max(0, left), runEnd = min(outWidth, left + w)
        for row in 0..<outHeight {
            let sourceRow = src + mirror(row - top, h) * w
            let out = dst + row * outWidth
            for col in 0..<runStart { out[col] = sourceRow[columns[col]] }
            if runEnd > runStart { (out + runStart).update(from: sourceRow + (runStart - left), count: runEnd - runStart) }
            for col in max(runEnd, 0)..<outWidth { out[col] = sourceRow[columns[col]] }
        }
    }
}
