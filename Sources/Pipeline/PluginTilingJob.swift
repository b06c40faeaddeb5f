import Foundation
import Geo
import Model
import Tensor

/// How a scene is cut into model inputs.
public enum TilingMode: String, Sendable, CaseIterable {
    /// Overlapping 224 tiles at the training scale, logits blended (no seams; the default).
    case overlap
    /// The vLLM `terratorch_segmentation` plugin's pipeline, bit for bit where floats allow.
    case vllm
}

/// One segmentation done exactly as vLLM's `terratorch_segmentation` plugin does it, so that users
/// migrating from `vllm serve` can compare masks pixel for pixel:
///
/// select bands → ÷10000 when the mean of the whole selected image (nodata included) exceeds 1 →
/// reflect-pad bottom/right to a multiple of the crop (config `tiled_inference_parameters`, default
/// 512) → non-overlapping crops, row-major → the config's test transform (albumentations `Resize`,
/// i.e. OpenCV bilinear, half-pixel centres; none when the config has no Resize) → normalise
/// with means/stds → float16 (the plugin sends `pixel_values` and the location as float16) →
/// model → argmax → nearest upsample to the crop (source index ⌊dst·side/crop⌋) → stitch, cut to
/// the original size → ×255 as uint8, LZW, nodata 0.
///
/// Crops are independent; each crop row of the mask is written when its last crop is in.
public final class PluginTilingJob: TilingJob {
    public let id: UInt64
    public let inputPath: String
    public let outputPath: String
    public let config: ModelConfig
    /// Crop side in source pixels and the side the model sees.
    public let crop: Int
    public let side: Int
    public let columns: Int
    public let rows: Int
    public let reflectanceDivisor: Float
    private let raster: RasterDataset
    /// Read once: the location, the output and the warning all come from it.
    private let georeferencing: Georeferencing
    private let bands: [Int]
    private let location: [Float]
    private let output: OutputRaster
    private var nextIndex = 0
    private var pendingRows: [Int: (mask: [UInt8], crops: Int)] = [:]
    private var rowsWritten = 0
    private var finished = false
    /// `segment`'s hold on OUT (serve's outputs are unique by request id).
    private let lock: SegmentJournal.Lock?
    public private(set) var tilesComputed = 0

    /// `lockOutput`: take OUT's journal lock for the run, as journaled runs do.
    public init(id: UInt64, input: String, output outputPath: String, config: ModelConfig, options: SegmentOptions,
                lockOutput: Bool = false) throws {
        lock = lockOutput ? try SegmentJournal.Lock(output: outputPath) : nil
        self.id = id
        inputPath = input
        self.outputPath = outputPath
        self.config = config
        let pre = config.preprocessing
        guard options.output == .mask else {
            throw SegmentationFailure("--tiling vllm writes the plugin's uint8 mask only (not \(options.output.rawValue))", kind: .badInput)
        }
        let raster = try RasterDataset.open(input, allowedDrivers: options.allowedDrivers)
        self.raster = raster
        georeferencing = raster.georeferencing
        try SceneReader.check(raster, bands: options.bands, modelBands: pre.means.count)
        bands = options.bands
        crop = pre.pluginCrop
        side = pre.resizeTo ?? pre.pluginCrop
        guard crop > 0, side % config.encoder.patchSize == 0 else {
            throw SegmentationFailure("the plugin's crop \(crop) resized to \(side) is not a multiple of the patch size \(config.encoder.patchSize)", kind: .badInput)
        }
        columns = (raster.width + crop - 1) / crop
        rows = (raster.height + crop - 1) / crop
        reflectanceDivisor = try Self.wholeImageMean(raster, bands: bands) > 1 ? 10000 : 1
        if pre.passesLocation, config.encoder.locationEncoding, let centre = try? georeferencing.centreLonLat(width: raster.width, height: raster.height) {
            location = [Float(Float16(Float(centre.lon))), Float(Float16(Float(centre.lat)))]
        } else {
            location = []
        }
        output = try OutputRaster(path: outputPath, width: raster.width, height: raster.height, bands: 1, type: .byte,
                                  georeferencing: georeferencing, nodata: 0,
                                  creationOptions: options.creationOptions, format: options.format)
    }

    /// What georeferencing the scene lacks, for a warning (nil when it is placed on the ground).
    public var georeferencingWarning: String? { georeferencing.warning(width: raster.width, height: raster.height) }
    public var tileCount: Int { rows * columns }
    public var tilesSkipped: Int { 0 }
    public var tilesDone: Int { tilesComputed }
    public var isComplete: Bool { rowsWritten == rows }
    /// Crops are prepared here only (the plugin's preparation differs from the tiles'), in any grouping.
    public var shape: JobShape { JobShape(firstTile: 0, tileCount: tileCount, rowLength: tileCount, workerSide: false) }
    public var dataPath: DataPath { .coordinator }
    public var windows: TileWindows? { nil }
    public func sceneOpening() throws -> SceneOpening { throw SegmentationFailure("--tiling vllm crops are prepared on the coordinator") }

    /// The plugin's `input_data.mean() > 1` over every selected value, nodata and NaN included
    /// (NaN makes the comparison false, as in numpy). Read in strips, so memory stays bounded.
    static func wholeImageMean(_ raster: RasterDataset, bands: [Int]) throws -> Double {
        let strip = max(1, (1 << 22) / max(raster.width * bands.count, 1))
        var sum = 0.0
        var y = 0
        while y < raster.height {
            let height = min(strip, raster.height - y)
            let values = try raster.read(bands: bands, window: PixelWindow(x: 0, y: y, width: raster.width, height: height))
            for v in values { sum += Double(v) }
            y += height
        }
        return sum / Double(raster.width * raster.height * bands.count)
    }

    /// numpy's `reflect` padding: index `i` of a padded axis of an axis of `n` values.
    static func reflect(_ i: Int, _ n: Int) -> Int {
        guard n > 1 else { return 0 }
        let period = 2 * (n - 1)
        let m = i % period
        return m < n ? m : period - m
    }

    public func prepare(tiles range: Range<Int>) throws -> (requests: [TileRequest], skipped: [Int]) {
        let requests = try range.map { try request($0) }
        nextIndex = max(nextIndex, range.upperBound)
        return (requests, [])
    }

    /// Crop `index` prepared as the plugin prepares it, planar bands × side × side.
    func request(_ index: Int) throws -> TileRequest {
        let row = index / columns, column = index % columns
        let channels = bands.count
        let (height, width) = (raster.height, raster.width)
        let rowIndices = (0..<crop).map { Self.reflect(row * crop + $0, height) }
        let columnIndices = (0..<crop).map { Self.reflect(column * crop + $0, width) }
        let window = PixelWindow(x: columnIndices.min()!, y: rowIndices.min()!,
                                 width: columnIndices.max()! - columnIndices.min()! + 1, height: rowIndices.max()! - rowIndices.min()! + 1)
        let source = try raster.read(bands: bands, window: window)
        let plane = window.width * window.height
        // Channels-last crop (albumentations works on H × W × C), scaled as the plugin scales.
        var cropped = [Float](repeating: 0, count: crop * crop * channels)
        for (y, sy) in rowIndices.enumerated() {
            let sourceRow = (sy - window.y) * window.width
            for (x, sx) in columnIndices.enumerated() {
                let p = sourceRow + sx - window.x
                let out = (y * crop + x) * channels
                for c in 0..<channels { cropped[out + c] = source[c * plane + p] / reflectanceDivisor }
            }
        }
        var resized = cropped
        if side != crop {
            resized = Resampling.openCVLinear(cropped, inHeight: crop, inWidth: crop, channels: channels, outHeight: side, outWidth: side)
        }
        let pre = config.preprocessing
        var pixels = [Float](repeating: 0, count: channels * side * side)
        for c in 0..<channels {
            let mean = pre.means[c], std = pre.stds[c]
            for p in 0..<(side * side) {
                pixels[c * side * side + p] = Float(Float16((resized[p * channels + c] - mean) / std))
            }
        }
        return TileRequest(job: id, tile: UInt64(index), channels: Int32(channels), height: Int32(side), width: Int32(side),
                           source: window, window: Int32(side), location: location, temporal: [], pixels: pixels)
    }

    /// Argmax, nearest upsample to the crop, into its crop row; writes the row when complete.
    public func accept(_ result: TileResult) throws {
        let index = Int(result.tile)
        let classes = config.numClasses
        guard result.job == id, index < nextIndex, Int(result.classes) == classes, Int(result.height) == side, Int(result.width) == side else {
            throw PlanError("crop \(result.tile) of job \(result.job) came back \(result.classes)×\(result.height)×\(result.width); expected \(classes)×\(side)×\(side)")
        }
        let row = index / columns, column = index % columns
        let stripHeight = min(crop, raster.height - row * crop)
        var entry = pendingRows[row] ?? (mask: [UInt8](repeating: 0, count: stripHeight * raster.width), crops: 0)
        let plane = side * side
        let x0 = column * crop
        let cropWidth = min(crop, raster.width - x0)
        result.logits.withUnsafeBufferPointer { logits in
            for y in 0..<stripHeight {
                let sy = y * side / crop
                for x in 0..<cropWidth {
                    let p = sy * side + x * side / crop
                    // torch.argmax: the first maximum wins.
                    var best = 0
                    var bestValue = logits[p]
                    for k in 1..<classes where logits[k * plane + p] > bestValue {
                        best = k
                        bestValue = logits[k * plane + p]
                    }
                    entry.mask[y * raster.width + x0 + x] = UInt8(truncatingIfNeeded: best * 255)
                }
            }
        }
        entry.crops += 1
        tilesComputed += 1
        if entry.crops == columns {
            try output.write(firstRow: row * crop, rows: stripHeight, floats: nil, bytes: entry.mask)
            pendingRows[row] = nil
            rowsWritten += 1
        } else {
            pendingRows[row] = entry
        }
    }

    public func finish() throws {
        guard isComplete else { throw PlanError("segmentation of \(inputPath) is not complete") }
        guard !finished else { return }
        finished = true
        defer { lock?.release() }
        try output.commit()
    }

    public func abort(keepProgress: Bool = false) {
        finished = true
        output.discard()
        lock?.release()
    }
}
