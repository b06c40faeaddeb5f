import Foundation

/// A PNG to look at: the scene in false colour (by default SWIR-1, NIR, red of the model's six
/// bands, so water is near black, vegetation green and bare soil pink), each band stretched
/// between its 2nd and 98th percentile, with the mask's water (255) laid over in cyan. Large
/// scenes are decimated (nearest) to at most `maxSide` pixels on the longer side.
public enum Quicklook {
    public static let waterColour: (Float, Float, Float) = (0, 220, 255)

    /// `bands`: three 0-based band indices of `scene` for red, green, blue.
    public static func write(scene scenePath: String, mask maskPath: String?, to path: String,
                             bands: [Int] = [4, 3, 2], maxSide: Int = 1200, opacity: Float = 0.55) throws {
        guard bands.count == 3 else { throw SceneError("a quicklook takes three bands (red, green, blue)") }
        let scene = try RasterDataset.open(scenePath)
        for band in bands where band >= scene.bandCount {
            throw SceneError("\(scenePath) has \(scene.bandCount) bands: there is no band \(band + 1) for the quicklook")
        }
        let mask = try maskPath.map { try RasterDataset.open($0) }
        if let mask, mask.width != scene.width || mask.height != scene.height {
            throw SceneError("\(maskPath!) is \(mask.width)×\(mask.height) but \(scenePath) is \(scene.width)×\(scene.height)")
        }
        let step = max(1, (max(scene.width, scene.height) + maxSide - 1) / maxSide)
        let width = (scene.width + step - 1) / step, height = (scene.height + step - 1) / step
        let nodata = try bands.map { try scene.noDataValue(band: $0).map(Float.init) }
        var rgb = [[Float]](repeating: [Float](repeating: .nan, count: width * height), count: 3)
        var water = [Bool](repeating: false, count: width * height)
        // One source row per output row: memory stays one row of the scene.
        for y in 0..<height {
            let window = PixelWindow(x: 0, y: y * step, width: scene.width, height: 1)
            let row = try scene.read(bands: bands, window: window)
            let maskRow = try mask?.read(bands: [0], window: window)
            for x in 0..<width {
                let source = x * step
                for c in 0..<3 {
                    let value = row[c * scene.width + source]
                    if value.isNaN || value == nodata[c] { continue }
                    rgb[c][y * width + x] = value
                }
                if let maskRow { water[y * width + x] = maskRow[source] == 255 }
            }
        }
        let image = try RasterDataset.create("", width: width, height: height, bands: 3, type: .byte, driver: "MEM")
        for c in 0..<3 {
            let valid = rgb[c].filter { !$0.isNaN }.sorted()
            let low = valid.isEmpty ? 0 : valid[valid.count * 2 / 100], high = valid.isEmpty ? 1 : valid[valid.count * 98 / 100]
            let span = max(high - low, 1e-6)
            let colour = [waterColour.0, waterColour.1, waterColour.2][c]
            let bytes = (0..<(width * height)).map { i -> UInt8 in
                let value = rgb[c][i]
                guard !value.isNaN else { return 0 }
                var level = min(255, max(0, (value - low) / span * 255))
                if water[i] { level = (1 - opacity) * level + opacity * colour }
                return UInt8(level.rounded())
            }
            try bytes.withUnsafeBufferPointer { try image.write(band: c, window: PixelWindow(x: 0, y: 0, width: width, height: height), bytes: $0) }
        }
        try image.copy(to: path, driver: "PNG")
        // The PNG driver leaves georeferencing in a .aux.xml sidecar; a picture needs none.
        try? FileManager.default.removeItem(atPath: path + ".aux.xml")
    }
}
