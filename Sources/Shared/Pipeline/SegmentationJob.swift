import Foundation

/// Options of one segmentation, as `coordinator segment` and the server set them.
public struct SegmentOptions: Sendable {
    public var bands: [Int] = [0, 1, 2, 3, 4, 5]
    public var tileSize = 224
    public var stride = 192
    /// Source pixels per model pixel; nil takes the model's training scale.
    public var scale: Double?
    public var output: OutputKind = .mask
    public var creationOptions: [String] = []
    public init() {}
}

/// One scene being segmented: reads tiles in plan order, hands finished tiles' logits to the
/// stitcher, writes strips to the output as they complete.
public final class SegmentationJob {
    public let id: UInt64
    public let inputPath: String
    public let outputPath: String
    public let plan: TilePlan
    public let reader: SceneReader
    public let config: ModelConfig
    private let stitcher: Stitcher
    private let output: OutputRaster
    private let location: [Float]
    private var nextIndex = 0
    /// Validity masks of tiles in flight.
    private var inFlightValid: [Int: [UInt8]] = [:]
    public private(set) var tilesComputed = 0
    public private(set) var tilesSkipped = 0
    private var finished = false

    public init(id: UInt64, input: String, output outputPath: String, config: ModelConfig, options: SegmentOptions) throws {
        self.id = id
        inputPath = input
        self.outputPath = outputPath
        self.config = config
        let pre = config.preprocessing
        reader = try SceneReader(path: input, bands: options.bands, means: pre.means, stds: pre.stds)
        let raster = reader.raster
        plan = try TilePlan(sceneWidth: raster.width, sceneHeight: raster.height, tileSize: options.tileSize,
                            stride: options.stride, scale: options.scale ?? pre.trainingScale)
        if pre.passesLocation, config.encoder.locationEncoding, let centre = reader.centre {
            location = [Float(centre.lon), Float(centre.lat)]
        } else {
            location = []
        }
        let kind = options.output
        let created = try OutputRaster(
            path: outputPath, width: raster.width, height: raster.height,
            bands: kind == .mask ? 1 : config.numClasses, type: kind == .mask ? .byte : .float32,
            geoTransform: raster.geoTransform, projectionWKT: raster.projectionWKT,
            nodata: kind == .mask ? 0 : .nan, creationOptions: options.creationOptions)
        output = created
        stitcher = Stitcher(plan: plan, classes: config.numClasses, kind: kind) { first, rows, floats, bytes in
            try created.write(firstRow: first, rows: rows, floats: floats, bytes: bytes)
        }
    }

    /// Whether the scene has a CRS and geotransform to copy.
    public var isGeoreferenced: Bool { reader.raster.geoTransform != nil && reader.raster.projectionWKT != nil }
    public var locationUsed: [Float] { location }
    public var tilesDone: Int { tilesComputed + tilesSkipped }
    /// Tiles not yet handed out.
    public var tilesRemaining: Int { plan.count - nextIndex }
    public var hasMoreTiles: Bool { nextIndex < plan.count }
    public var isComplete: Bool { stitcher.isComplete }

    /// The next `size` tiles to compute together (fewer at the end of the plan): consecutive
    /// computable tiles in plan order, so the grouping — and every bit of the output — does not
    /// depend on timing or on the number of workers. Empty when every tile has been handed out.
    public func nextBatch(size: Int) throws -> [TileRequest] {
        var batch: [TileRequest] = []
        while batch.count < size, let tile = try nextTile() { batch.append(tile) }
        return batch
    }

    /// The next tile to compute, reading ahead past tiles that are entirely nodata (those are
    /// blended as nodata right away and never sent). Nil when every tile has been handed out.
    public func nextTile() throws -> TileRequest? {
        while nextIndex < plan.count {
            let tile = plan.tile(nextIndex)
            nextIndex += 1
            let input = try reader.read(tile, plan: plan)
            if input.validCount == 0 {
                tilesSkipped += 1
                try stitcher.add(tile: tile.index, logits: nil, valid: nil)
                continue
            }
            inFlightValid[tile.index] = input.valid
            let size = Int32(plan.tileSize)
            return TileRequest(job: id, tile: UInt64(tile.index), channels: Int32(reader.bands.count), height: size, width: size,
                               location: location, temporal: [], pixels: input.pixels)
        }
        return nil
    }

    /// Blends a computed tile (logits at tile size, resampled to its source window first).
    public func accept(_ result: TileResult) throws {
        let index = Int(result.tile)
        guard result.job == id, let valid = inFlightValid.removeValue(forKey: index) else {
            throw PlanError("result for tile \(result.tile) of job \(result.job) was not expected")
        }
        let size = plan.tileSize, window = plan.window, classes = config.numClasses
        guard Int(result.classes) == classes, Int(result.height) == size, Int(result.width) == size else {
            throw PlanError("tile \(index) came back \(result.classes)×\(result.height)×\(result.width), expected \(classes)×\(size)×\(size)")
        }
        var logits = result.logits
        if window != size {
            var resized = [Float](repeating: 0, count: classes * window * window)
            logits.withUnsafeBufferPointer { src in
                resized.withUnsafeMutableBufferPointer { dst in
                    for k in 0..<classes {
                        Resampling.bilinear(src.baseAddress! + k * size * size, inHeight: size, inWidth: size, channels: 1,
                                            into: dst.baseAddress! + k * window * window, outHeight: window, outWidth: window,
                                            alignCorners: false)
                    }
                }
            }
            logits = resized
        }
        tilesComputed += 1
        try stitcher.add(tile: index, logits: logits, valid: valid)
    }

    /// Renames the finished output into place.
    public func finish() throws {
        guard stitcher.isComplete else { throw PlanError("segmentation of \(inputPath) is not complete") }
        guard !finished else { return }
        finished = true
        try output.commit()
    }

    /// Gives up: the temporary output is removed, nothing appears at the output path.
    public func abort() {
        finished = true
        output.discard()
    }
}
