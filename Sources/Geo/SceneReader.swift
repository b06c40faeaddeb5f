import Foundation

/// A bad input scene: bands missing, not numeric, nothing valid to segment.
public struct SceneError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
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
    /// How the scene is placed on the ground (copied to the outputs).
    public let georeferencing: Georeferencing
    /// (longitude, latitude) of the scene centre, nil without georeferencing.
    public let centre: (lon: Double, lat: Double)?
    /// Scenes of at most `smallScenePixels` are read once, whole, and tiles cut from memory.
    public let wholeScene: [Float]?
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
        georeferencing = raster.georeferencing
        centre = try? georeferencing.centreLonLat(width: raster.width, height: raster.height)
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

    /// Mean of the valid values of a 4×4 grid of 64×64 windows spread over the scene (all
    /// selected bands together, like the plugin's `input_data.mean()`), at most 16 small reads.
    /// Each window is moved inside the block holding its grid position, so a tiled scene decodes
    /// one block per window (a compressed block is decoded whole: the coordinator's largest cost
    /// per job before this), and a scene in strips the same 256 rows as any 256-row sample.
    static func sampleMean(raster: RasterDataset, bands: [Int], nodata: [Double?]) throws -> Double {
        let side = 64, grid = 4
        let w = min(side, raster.width), h = min(side, raster.height)
        let block = try raster.blockSize(band: bands.first ?? 0)
        /// Grid position `k` (of `grid`) along an axis of `size` pixels, moved into its block.
        func position(_ k: Int, size: Int, window: Int, block: Int) -> Int {
            let nominal = (size - window) * k / max(1, grid - 1)
            guard block >= window else { return nominal }
            let start = nominal / block * block
            return max(0, min(nominal, start + block - window, size - window))
        }
        let xs = Set((0..<grid).map { position($0, size: raster.width, window: w, block: block.width) }).sorted()
        let ys = Set((0..<grid).map { position($0, size: raster.height, window: h, block: block.height) }).sorted()
        var sum = 0.0, count = 0
        for y in ys {
            for x in xs {
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

    /// The recipe of this scene's tiles for `plan`, with the location the model is given.
    public func recipe(plan: TilePlan, location: [Float] = [], temporal: [Float] = []) -> TileRecipe {
        TileRecipe(bands: bands, means: means, stds: stds, nodata: nodata, reflectanceDivisor: reflectanceDivisor,
                   location: location, temporal: temporal, tileSize: plan.tileSize, window: plan.window)
    }

    /// Tiles of this scene prepared with `recipe` (from the whole scene in memory when it was read).
    public func source(_ recipe: TileRecipe) throws -> TileSource {
        try TileSource(raster: raster, recipe: recipe, wholeScene: wholeScene)
    }

    /// The model input of `tile` (see `TileSource.prepare`).
    public func read(_ tile: TilePlan.Tile, plan: TilePlan) throws -> TileInput {
        try source(recipe(plan: plan)).prepare(tile.source)
    }
}
