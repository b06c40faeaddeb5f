import Foundation
import Tensor

/// The scene-level decisions every tile of a job is prepared with. The coordinator takes them
/// once per job (reflectance scaling from a sample, the location of the scene centre) and sends
/// them to workers that read their own tiles, so that a tile is prepared bit for bit alike
/// whichever side prepares it.
public struct TileRecipe: Equatable, Sendable {
    /// 0-based raster bands fed to the model, in the model's order.
    public var bands: [Int]
    public var means: [Float]
    public var stds: [Float]
    /// Per selected band: its nodata value, if it has one (NaN is always nodata).
    public var nodata: [Double?]
    /// 10000 for integer reflectance, else 1.
    public var reflectanceDivisor: Float
    /// (longitude, latitude) of the scene centre, or empty.
    public var location: [Float]
    /// (year, day of year), or empty.
    public var temporal: [Float]
    /// Model input side, and the source pixels per tile side it is resampled from.
    public var tileSize: Int
    public var window: Int

    public init(bands: [Int], means: [Float], stds: [Float], nodata: [Double?], reflectanceDivisor: Float,
                location: [Float], temporal: [Float], tileSize: Int, window: Int) {
        self.bands = bands; self.means = means; self.stds = stds; self.nodata = nodata
        self.reflectanceDivisor = reflectanceDivisor; self.location = location; self.temporal = temporal
        self.tileSize = tileSize; self.window = window
    }
}

/// One tile's model input: normalised planar pixels (bands × tile × tile) and which source pixels
/// of its window hold data.
public struct TileInput {
    public var pixels: [Float]
    /// 1 where every selected band has data, 0 at nodata; source window size (row-major).
    public var valid: [UInt8]
    public var validCount: Int
}

/// Prepares the tiles of one raster with a recipe: read the window of the selected bands, find
/// nodata (the bands' nodata values, NaN, 0 in their GDAL masks), fill it, scale and normalise, reflect-pad a window larger than the scene, resample to
/// the model input. The one implementation the coordinator and the workers share.
///
/// Not thread-safe (it owns a GDAL dataset): one thread at a time.
public final class TileSource {
    public let raster: RasterDataset
    public let recipe: TileRecipe
    /// The whole selected scene, planar, when the caller read it once (small scenes).
    private let wholeScene: [Float]?

    /// The selected bands' GDAL masks (internal, `.msk`, alpha), found once per scene.
    private let masks: [MaskSource]

    public init(raster: RasterDataset, recipe: TileRecipe, wholeScene: [Float]? = nil) throws {
        self.raster = raster
        self.recipe = recipe
        self.wholeScene = wholeScene
        masks = try raster.maskSources(for: recipe.bands)
    }

    /// The model input of the tile whose source pixels are `source` (inside the scene; smaller
    /// than the recipe's window only when the scene is).
    public func prepare(_ source: PixelWindow) throws -> TileInput {
        let bands = recipe.bands.count
        let pixels = source.pixelCount
        let window = recipe.window, size = recipe.tileSize
        var raw = [Float](repeating: 0, count: bands * pixels)
        if let wholeScene {
            let width = raster.width, height = raster.height
            wholeScene.withUnsafeBufferPointer { scene in
                raw.withUnsafeMutableBufferPointer { out in
                    for b in 0..<bands {
                        for row in 0..<source.height {
                            (out.baseAddress! + (b * source.height + row) * source.width).update(
                                from: scene.baseAddress! + (b * height + source.y + row) * width + source.x, count: source.width)
                        }
                    }
                }
            }
        } else {
            try raw.withUnsafeMutableBufferPointer { try raster.read(bands: recipe.bands, window: source, into: $0) }
        }
        var valid = [UInt8](repeating: 1, count: pixels)
        var validCount = 0
        raw.withUnsafeMutableBufferPointer { raw in
            valid.withUnsafeMutableBufferPointer { valid in
                let v = valid.baseAddress!
                for b in 0..<bands {
                    let plane = raw.baseAddress! + b * pixels
                    // Branch-free so the loop vectorises: NaN != NaN, and a missing marker is NaN.
                    let marker = recipe.nodata[b].map(Float.init) ?? .nan
                    for p in 0..<pixels {
                        let value = plane[p]
                        v[p] &= (value == value && value != marker) ? 1 : 0
                    }
                }
            }
        }
        // 0 in a band's GDAL mask is no data too.
        for mask in masks { try valid.withUnsafeMutableBufferPointer { try raster.applyMask(mask, window: source, to: $0) } }
        raw.withUnsafeMutableBufferPointer { raw in
            valid.withUnsafeMutableBufferPointer { valid in
                let v = valid.baseAddress!
                for p in 0..<pixels { validCount &+= Int(v[p]) }
                for b in 0..<bands {
                    let plane = raw.baseAddress! + b * pixels
                    let scale = 1 / (recipe.reflectanceDivisor * recipe.stds[b]), shift = recipe.means[b] / recipe.stds[b]
                    for p in 0..<pixels { plane[p] = v[p] == 1 ? plane[p] * scale - shift : 0 }
                }
            }
        }
        var normalised = raw
        if source.width != window || source.height != window {
            normalised = [Float](repeating: 0, count: bands * window * window)
            raw.withUnsafeBufferPointer { raw in
                normalised.withUnsafeMutableBufferPointer { out in
                    for b in 0..<bands {
                        Padding.reflect(raw.baseAddress! + b * pixels, height: source.height, width: source.width, top: 0, left: 0,
                                        into: out.baseAddress! + b * window * window, outHeight: window, outWidth: window)
                    }
                }
            }
        }
        guard window != size else { return TileInput(pixels: normalised, valid: valid, validCount: validCount) }
        return TileInput(pixels: Self.resample(normalised, planes: bands, from: window, to: size), valid: valid, validCount: validCount)
    }

    /// Bilinear resampling (half-pixel centres, as OpenCV/albumentations Resize) of square planes.
    public static func resample(_ values: [Float], planes: Int, from side: Int, to target: Int) -> [Float] {
        guard side != target else { return values }
        var resized = [Float](repeating: 0, count: planes * target * target)
        values.withUnsafeBufferPointer { src in
            resized.withUnsafeMutableBufferPointer { dst in
                for k in 0..<planes {
                    Resampling.bilinear(src.baseAddress! + k * side * side, inHeight: side, inWidth: side, channels: 1,
                                        into: dst.baseAddress! + k * target * target, outHeight: target, outWidth: target,
                                        alignCorners: false)
                }
            }
        }
        return resized
    }
}

/// What identifies a file's contents well enough to tell whether two hosts see the same file:
/// its size, modification time and a digest of three 64 KiB blocks (start, middle, end).
public struct FileFingerprint: Equatable, Sendable, CustomStringConvertible {
    public var size: Int64
    public var modified: Double
    public var digest: UInt64

    public init(size: Int64, modified: Double, digest: UInt64) { self.size = size; self.modified = modified; self.digest = digest }

    public static func of(_ path: String) throws -> FileFingerprint {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw SceneError("\(path): cannot open (\(String(cString: strerror(errno))))") }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw SceneError("\(path): cannot stat (\(String(cString: strerror(errno))))") }
        let size = Int64(info.st_size)
        let modified = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) * 1e-9
        let block = 1 << 16
        var digest: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a 64
        var buffer = [UInt8](repeating: 0, count: block)
        for offset in Set([0, max(0, size / 2 - Int64(block) / 2), max(0, size - Int64(block))]).sorted() {
            let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, block, off_t(offset)) }
            guard count >= 0 else { throw SceneError("\(path): cannot read (\(String(cString: strerror(errno))))") }
            for byte in buffer[0..<count] { digest = (digest ^ UInt64(byte)) &* 0x100_0000_01b3 }
        }
        return FileFingerprint(size: size, modified: modified, digest: digest)
    }

    public var description: String { "\(size) bytes, modified \(modified), digest \(String(digest, radix: 16))" }
}
