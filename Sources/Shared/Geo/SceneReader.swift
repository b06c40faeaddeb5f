import Foundation

/// A bad input scene: bands missing, not numeric, nothing valid to segment.
public struct SceneError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One tile's model input: normalised planar pixels (bands × tile × tile) and which source pixels
/// of its window hold data.
public struct TileInput {
    public var pixels: [Float]
    /// 1 where every selected band has data, 0 at nodata; source window size (row-major).
    public var valid: [UInt8]
    public var validCount: Int
}

/// Reads model tiles out of a scene: the selected bands of one window at a time (never the whole
/// scene), nodata found and filled, reflectance scaled and normalised as the vLLM plugin does —
/// with the ÷10000 decision taken once per scene so that all tiles agree.
public final class SceneReader {
    public let raster: RasterDataset
    public let bands: [Int]
    public let means: [Float]
    public let stds: [Float]
    /// Per selected band: the nodata value, if the band has one.
    public let nodata: [Double?]
    /// 10000 when the scene holds reflectance as integers (mean of a sample > 1), else 1.
    public let reflectanceDivisor: Float
    /// (longitude, latitude) of the scene centre, nil without georeferencing.
    public let centre: (lon: Double, lat: Double)?
    /// Scenes of at most `smallScenePixels` are read once, whole, and tiles cut from memory.
    private let wholeScene: [Float]?
    static let smallScenePixels = 512 * 512

    /// The band selection fits the raster and the model, and those bands hold real numbers.
    public static func check(_ raster: RasterDataset, bands: [Int], modelBands: Int) throws {
        let path = raster.path
        guard bands.count == modelBands else {
            throw SceneError("\(path): \(bands.count) band indices given, the model takes \(modelBands) bands")
        }
        if let bad = bands.first(where: { $0 < 0 || $0 >= raster.bandCount }) {
            throw SceneError("\(path): has \(raster.bandCount) band(s) (indices 0…\(raster.bandCount - 1)) but band index \(bad) was asked for")
        }
        for band in bands {
            if case .other(let name) = try raster.dataType(band: band) {
                throw SceneError("\(path): band \(band) holds \(name) values; only real numbers can be segmented")
            }
        }
    }

    public init(path: String, bands: [Int], means: [Float], stds: [Float], allowedDrivers: [String]? = nil) throws {
        let raster = try RasterDataset.open(path, allowedDrivers: allowedDrivers)
        self.raster = raster
        try Self.check(raster, bands: bands, modelBands: means.count)
        self.bands = bands
        self.means = means
        self.stds = stds
        let nodata = try bands.map { try raster.noDataValue(band: $0) }
        self.nodata = nodata
        centre = try? raster.centreLonLat()
        if raster.width * raster.height <= Self.smallScenePixels {
            // Small scenes: one read serves the exact mean and every tile.
            let whole = try raster.read(bands: bands, window: PixelWindow(x: 0, y: 0, width: raster.width, height: raster.height))
            wholeScene = whole
            reflectanceDivisor = Self.mean(of: whole, bands: bands.count, nodata: nodata) > 1 ? 10000 : 1
        } else {
            wholeScene = nil
            reflectanceDivisor = try Self.sampleMean(raster: raster, bands: bands, nodata: nodata) > 1 ? 10000 : 1
        }
    }

    /// Whether a raw value is nodata for selected band `b` (its nodata value, or NaN).
    @inline(__always)
    func isNodata(_ value: Float, band b: Int) -> Bool {
        value.isNaN || (nodata[b].map { Float($0) == value } ?? false)
    }

    /// Mean of the valid values of an 8×8 grid of 32×32 windows spread over the scene (all
    /// selected bands together, like the plugin's `input_data.mean()`), at most 64 small reads.
    static func sampleMean(raster: RasterDataset, bands: [Int], nodata: [Double?]) throws -> Double {
        let side = 32, grid = 8
        let w = min(side, raster.width), h = min(side, raster.height)
        var sum = 0.0, count = 0
        var xs = Set<Int>(), ys = Set<Int>()
        for k in 0..<grid {
            xs.insert((raster.width - w) * k / max(1, grid - 1))
            ys.insert((raster.height - h) * k / max(1, grid - 1))
        }
        for y in ys.sorted() {
            for x in xs.sorted() {
                let values = try raster.read(bands: bands, window: PixelWindow(x: x, y: y, width: w, height: h))
                let (windowSum, windowCount) = validSum(values, bands: bands.count, nodata: nodata)
                sum += windowSum; count += windowCount
            }
        }
        return count > 0 ? sum / Double(count) : 0
    }

    static func mean(of values: [Float], bands: Int, nodata: [Double?]) -> Double {
        let (sum, count) = validSum(values, bands: bands, nodata: nodata)
        return count > 0 ? sum / Double(count) : 0
    }

    /// Sum and count of the values that are not nodata, band by band (planar values).
    static func validSum(_ values: [Float], bands: Int, nodata: [Double?]) -> (Double, Int) {
        let plane = values.count / max(bands, 1)
        var sum = 0.0, count = 0
        values.withUnsafeBufferPointer { v in
            for b in 0..<bands {
                let marker = nodata[b].map { Float($0) }
                for p in (b * plane)..<((b + 1) * plane) where !v[p].isNaN && v[p] != marker {
                    sum += Double(v[p]); count += 1
                }
            }
        }
        return (sum, count)
    }

    /// The model input of `tile`: its source window read, nodata found (and filled with the band
    /// mean, i.e. 0 after normalisation), scaled, normalised, reflect-padded when the scene is
    /// smaller than the window, and resampled to `plan.tileSize` when the plan has a scale.
    public func read(_ tile: TilePlan.Tile, plan: TilePlan) throws -> TileInput {
        let source = tile.source
        let pixels = source.pixelCount
        let window = plan.window, size = plan.tileSize
        var raw = [Float](repeating: 0, count: bands.count * pixels)
        if let wholeScene {
            let width = raster.width, height = raster.height
            wholeScene.withUnsafeBufferPointer { scene in
                raw.withUnsafeMutableBufferPointer { out in
                    for b in bands.indices {
                        for row in 0..<source.height {
                            (out.baseAddress! + (b * source.height + row) * source.width).update(
                                from: scene.baseAddress! + (b * height + source.y + row) * width + source.x, count: source.width)
                        }
                    }
                }
            }
        } else {
            try raw.withUnsafeMutableBufferPointer { try raster.read(bands: bands, window: source, into: $0) }
        }
        var valid = [UInt8](repeating: 1, count: pixels)
        var validCount = pixels
        let fitsWindow = source.width == window && source.height == window
        // Normalised planes of the window; written in place over `raw` when no padding is needed.
        var normalised = fitsWindow ? [] : [Float](repeating: 0, count: bands.count * window * window)
        raw.withUnsafeMutableBufferPointer { raw in
            valid.withUnsafeMutableBufferPointer { valid in
                for b in bands.indices {
                    let plane = raw.baseAddress! + b * pixels
                    if let marker = nodata[b].map(Float.init) {
                        for p in 0..<pixels where plane[p] == marker || plane[p].isNaN { valid[p] = 0 }
                    } else {
                        for p in 0..<pixels where plane[p].isNaN { valid[p] = 0 }
                    }
                }
                validCount = valid.reduce(0) { $0 + Int($1) }
                for b in bands.indices {
                    let plane = raw.baseAddress! + b * pixels
                    let scale = 1 / (reflectanceDivisor * stds[b]), shift = means[b] / stds[b]
                    for p in 0..<pixels { plane[p] = valid[p] == 1 ? plane[p] * scale - shift : 0 }
                }
            }
        }
        if !fitsWindow {
            raw.withUnsafeBufferPointer { raw in
                normalised.withUnsafeMutableBufferPointer { out in
                    for b in bands.indices {
                        Padding.reflect(raw.baseAddress! + b * pixels, height: source.height, width: source.width, top: 0, left: 0,
                                        into: out.baseAddress! + b * window * window, outHeight: window, outWidth: window)
                    }
                }
            }
        } else {
            normalised = raw
        }
        guard window != size else { return TileInput(pixels: normalised, valid: valid, validCount: validCount) }
        var resized = [Float](repeating: 0, count: bands.count * size * size)
        normalised.withUnsafeBufferPointer { src in
            resized.withUnsafeMutableBufferPointer { dst in
                for b in bands.indices {
                    Resampling.bilinear(src.baseAddress! + b * window * window, inHeight: window, inWidth: window, channels: 1,
                                        into: dst.baseAddress! + b * size * size, outHeight: size, outWidth: size, alignCorners: false)
                }
            }
        }
        return TileInput(pixels: resized, valid: valid, validCount: validCount)
    }
}
