import Foundation

/// Synthetic Sentinel-2-like scenes for demos, tests and benchmarks: Int16 reflectance (DN, as
/// L2A products store it) in UTM zone 30N near Valencia, with a swath edge of nodata (0) in one
/// corner. `.river` (the default, unchanged since the first fixtures were made from it) is a
/// textured land surface and one meandering river; `.varied` is a seeded landscape of several
/// land covers, rivers, lakes and optional clouds. Either can write its ground truth beside it.
/// Written in row strips, so any size fits in little memory.
public enum SceneFactory {
    public struct Spec: Sendable {
        public var width = 1000
        public var height = 700
        /// 6 (the model's bands: B02, B03, B04, B8A, B11, B12) or 13 (a full L1C band stack).
        public var bands = 6
        public var riverWidth = 60.0
        /// Fraction of the width cut off diagonally as nodata at the top-left corner (0 = none).
        public var nodataCorner = 0.25
        public var georeferenced = true
        public var seed: UInt64 = 1
        /// .int16 or .uint16 (DN, nodata 0), or .float32 (reflectance 0…1, nodata NaN).
        public var type: RasterDataType = .int16
        public var creationOptions = ["COMPRESS=DEFLATE", "TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256"]
        public var landscape = Landscape.river
        /// `.varied` only: roughly the fraction of the scene under cloud (0 = none).
        public var cloudCover = 0.0
        public init() {}
    }

    public enum Landscape: String, Sendable, CaseIterable {
        /// One river across a textured surface; the seed changes only the texture.
        case river
        /// Land covers, rivers, lakes (and clouds) all drawn from the seed.
        case varied
    }

    /// Truth values: the project's class-index + 1 convention, 0 where the truth is unknown.
    public enum Truth {
        public static let unknown: UInt8 = 0, land: UInt8 = 1, water: UInt8 = 2
    }

    /// Typical DN values of the six model bands for land and water.
    static let land: [Float] = [900, 1100, 1000, 3000, 2300, 1500]
    static let water: [Float] = [800, 700, 450, 250, 120, 90]

    /// Indices of the six model bands in a 13-band L1C stack (B01…B12 with B8A): 1,2,3,8,11,12.
    public static let modelBandsIn13 = [1, 2, 3, 8, 11, 12]

    /// Distance in pixels from (x, y) to the river's centre line (a sine meander, left to right).
    static func riverDistance(x: Double, y: Double, spec: Spec) -> Double {
        let centre = Double(spec.height) * (0.5 + 0.18 * sin(x / Double(max(spec.width, 1)) * 2 * .pi * 1.3))
        return abs(y - centre)
    }

    /// Writes the scene at `path` and, when `truth` is given, its ground truth there: a uint8
    /// GeoTIFF on the same grid, water 2, land 1, 0 (nodata) outside the swath and under clouds.
    public static func create(_ spec: Spec, at path: String, truth truthPath: String? = nil) throws {
        guard spec.bands == 6 || spec.bands == 13 else { throw SceneError("synthetic scenes have 6 or 13 bands") }
        guard (0...1).contains(spec.cloudCover), spec.cloudCover == 0 || spec.landscape == .varied else {
            throw SceneError("cloud cover is a fraction in 0…1 and needs the varied landscape")
        }
        guard [.int16, .uint16, .float32].contains(spec.type) else { throw SceneError("synthetic scenes are Int16, UInt16 or Float32") }
        let reflectance = spec.type == .float32
        let raster = try RasterDataset.create(path, width: spec.width, height: spec.height, bands: spec.bands, type: spec.type,
                                              options: spec.creationOptions + ["BIGTIFF=IF_SAFER"])
        let truthRaster = try truthPath.map { try RasterDataset.create($0, width: spec.width, height: spec.height, bands: 1, type: .byte,
                                                                       options: ["COMPRESS=DEFLATE", "TILED=YES", "BIGTIFF=IF_SAFER"]) }
        for output in [raster] + (truthRaster.map { [$0] } ?? []) where spec.georeferenced {
            try output.setGeoTransform(GeoTransform([710_000, 10, 0, 4_380_000, 0, -10]))
            try output.setProjection(wkt: try wktForEPSG(32630))
        }
        for band in 0..<spec.bands { try raster.setNoDataValue(reflectance ? .nan : 0, band: band) }
        try truthRaster?.setNoDataValue(0, band: 0)
        let landscape = spec.landscape == .varied
            ? SyntheticLandscape(width: spec.width, height: spec.height, seed: spec.seed, cloudCover: spec.cloudCover) : nil
        // The varied landscape's swath edge is in a corner the seed picks; the river's at the top left.
        let corner = spec.landscape == .varied ? Int(hash(spec.seed ^ 0xC0) % 4) : 0
        let stripRows = 256
        var row = 0
        while row < spec.height {
            let rows = min(stripRows, spec.height - row)
            var strips = [[Float]](repeating: [Float](repeating: reflectance ? .nan : 0, count: rows * spec.width), count: spec.bands)
            var truth = [UInt8](repeating: Truth.unknown, count: truthRaster == nil ? 0 : rows * spec.width)
            for r in 0..<rows {
                let y = row + r
                for x in 0..<spec.width {
                    let p = r * spec.width + x
                    // Swath edge: a diagonal corner without data.
                    let cx = corner & 1 == 0 ? x : spec.width - 1 - x, cy = corner & 2 == 0 ? y : spec.height - 1 - y
                    if Double(cx) + Double(cy) < spec.nodataCorner * Double(spec.width) { continue }
                    // Texture from a cheap hash so neighbouring pixels differ.
                    let texture = Float(hash(UInt64(y) &* 0x1F123BB5 ^ UInt64(x) &* 0x5F356495 ^ spec.seed) % 1000) / 1000 - 0.5
                    if let landscape {
                        let pixel = landscape.pixel(x: x, y: y, texture: texture)
                        for (b, band) in modelBandIndices(spec.bands).enumerated() { strips[band][p] = pixel.values[b] }
                        if !truth.isEmpty { truth[p] = pixel.truth }
                    } else {
                        let distance = riverDistance(x: Double(x), y: Double(y), spec: spec)
                        // Soft banks over ~4 px.
                        let wet = Float(min(1, max(0, (spec.riverWidth / 2 - distance) / 4 + 0.5)))
                        let field = Float(sin(Double(x) / 37) * cos(Double(y) / 53))
                        for (b, band) in modelBandIndices(spec.bands).enumerated() {
                            let value = wet * water[b] + (1 - wet) * (land[b] * (1 + 0.12 * field)) + texture * 60
                            strips[band][p] = max(1, value.rounded())
                        }
                        if !truth.isEmpty { truth[p] = wet >= 0.5 ? Truth.water : Truth.land }
                    }
                    if spec.bands == 13 {
                        for band in 0..<13 where !modelBandsIn13.contains(band) { strips[band][p] = 1000 + texture * 50 }
                    }
                }
            }
            if let truthRaster {
                try truth.withUnsafeBufferPointer {
                    try truthRaster.write(band: 0, window: PixelWindow(x: 0, y: row, width: spec.width, height: rows), bytes: $0)
                }
            }
            for band in 0..<spec.bands {
                if reflectance { strips[band] = strips[band].map { $0 / 10000 } }
                try strips[band].withUnsafeBufferPointer {
                    try raster.write(band: band, window: PixelWindow(x: 0, y: row, width: spec.width, height: rows), values: $0)
                }
            }
            row += rows
        }
        try raster.close()
        try truthRaster?.close()
    }

    static func modelBandIndices(_ bands: Int) -> [Int] { bands == 13 ? modelBandsIn13 : Array(0..<6) }

    static func hash(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
