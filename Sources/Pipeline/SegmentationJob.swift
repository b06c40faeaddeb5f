import Foundation
import Geo
import Model

/// Options of one segmentation, as `coordinator segment` and the server set them.
public struct SegmentOptions: Sendable {
    public var bands: [Int] = [0, 1, 2, 3, 4, 5]
    public var tileSize = 224
    public var stride = 192
    /// Source pixels per model pixel; nil takes the model's training scale.
    public var scale: Double?
    public var output: OutputKind = .mask
    public var creationOptions: [String] = []
    /// GeoTIFF or COG (the creation options go to the COG driver then).
    public var format: OutputFormat = .gtiff
    /// Tiles per forward pass (recorded in the journal: it changes the last bits of results).
    public var batch = 1
    /// Overlapping tiles (default) or the vLLM plugin's exact pipeline.
    public var tiling: TilingMode = .overlap
    /// Who reads and prepares tiles (results are bitwise the same either way).
    public var dataPath: DataPath = .auto
    /// GDAL drivers the input may open with (the server: ["GTiff"]); nil: any.
    public var allowedDrivers: [String]? = nil
    public init() {}
}

/// Who reads a scene's tiles.
public enum DataPath: String, Sendable, CaseIterable {
    /// Each MPI worker that sees the same file at the same path reads its own tiles; the
    /// coordinator ships pixels to the others. In-process, the coordinator's thread reads (it
    /// overlaps the compute thread that way).
    case auto
    /// The coordinator reads every tile and ships pixels.
    case coordinator
    /// As auto, and the in-process worker reads its own tiles too.
    case worker
}

/// Tile requests without pixels, for workers that read the scene themselves: pure geometry, no
/// I/O, so the engine builds them on its own thread.
public struct TileWindows: Sendable {
    public let job: UInt64
    public let plan: TilePlan
    public let recipe: TileRecipe
    public let answer: TileAnswer

    public func request(_ index: Int) -> TileRequest {
        let tile = plan.tile(index)
        return TileRequest(job: job, tile: UInt64(index), channels: Int32(recipe.bands.count), height: Int32(plan.tileSize),
                           width: Int32(plan.tileSize), source: tile.source, window: Int32(plan.window),
                           location: recipe.location, temporal: recipe.temporal, pixels: [], answer: answer)
    }
}

/// What the engine drives: a scene cut into tiles, prepared on the job's thread or by workers,
/// results taken back in any order, then the output put in place (or nothing, on abort).
/// Every call comes from the job's own thread.
public protocol TilingJob: AnyObject {
    var id: UInt64 { get }
    /// `workerSide` when workers may read the tiles (`windows` is then not nil).
    var shape: JobShape { get }
    var dataPath: DataPath { get }
    /// The job's tile requests without pixels; nil when only the coordinator prepares tiles.
    var windows: TileWindows? { get }
    /// What a worker needs to open the scene itself (reads a fingerprint of the file: asked for
    /// only when some worker will be offered the scene).
    func sceneOpening() throws -> SceneOpening
    var tileCount: Int { get }
    var tilesDone: Int { get }
    var tilesComputed: Int { get }
    var tilesSkipped: Int { get }
    var isComplete: Bool { get }
    /// Reads and prepares `tiles` here: the requests to compute together, and the tiles without
    /// any data (blended as nodata already, never sent).
    func prepare(tiles: Range<Int>) throws -> (requests: [TileRequest], skipped: [Int])
    func accept(_ result: TileResult) throws
    func finish() throws
    func abort(keepProgress: Bool)
}

/// The job for `options.tiling` (journals apply to the default tiling only).
public func makeTilingJob(id: UInt64, input: String, output: String, config: ModelConfig, options: SegmentOptions) throws -> any TilingJob {
    switch options.tiling {
    case .overlap: return try SegmentationJob(id: id, input: input, output: output, config: config, options: options)
    case .vllm: return try PluginTilingJob(id: id, input: input, output: output, config: config, options: options)
    }
}

/// Whether a job keeps a journal (`segment`) and whether it continues an interrupted run.
public enum JournalMode: Sendable {
    case off
    /// A new journal; `model` identifies the model directory for `--resume` checks.
    case start(model: String)
    case resume(model: String)
}

/// One scene being segmented: reads tiles in plan order, hands finished tiles' logits to the
/// stitcher, writes strips to the output as they complete.
public final class SegmentationJob: TilingJob {
    public let id: UInt64
    public let inputPath: String
    public let outputPath: String
    public let plan: TilePlan
    public let reader: SceneReader
    public let config: ModelConfig
    private let stitcher: Stitcher
    /// Where strips go: straight into the GeoTIFF (server), or into a spool beside a journal
    /// (`segment`), from which the GeoTIFF is written at the end.
    private enum Sink {
        case direct(OutputRaster)
        case journaled(SegmentJournal, StripSpool, OutputSettings)
    }
    /// What the final GeoTIFF needs, for a journaled run.
    private struct OutputSettings {
        let path: String, width: Int, height: Int, bands: Int, type: RasterDataType
        let georeferencing: Georeferencing, nodata: Double, creationOptions: [String], format: OutputFormat
    }
    private let sink: Sink
    private let location: [Float]
    public let recipe: TileRecipe
    private let tiles: TileSource
    private let tileWindows: TileWindows
    public let dataPath: DataPath
    private let allowedDrivers: [String]
    /// Tiles done by the interrupted run this one continues (counted as done).
    public let tilesResumed: Int
    /// Validity masks of coordinator-prepared tiles in flight that have some nodata.
    private var inFlightValid: [Int: [UInt8]] = [:]
    public private(set) var tilesComputed = 0
    public private(set) var tilesSkipped = 0
    private var finished = false

    public init(id: UInt64, input: String, output outputPath: String, config: ModelConfig, options: SegmentOptions,
                journal mode: JournalMode = .off) throws {
        self.id = id
        inputPath = input
        self.outputPath = outputPath
        self.config = config
        let pre = config.preprocessing
        reader = try SceneReader(path: input, bands: options.bands, means: pre.means, stds: pre.stds, allowedDrivers: options.allowedDrivers)
        let raster = reader.raster
        plan = try TilePlan(sceneWidth: raster.width, sceneHeight: raster.height, tileSize: options.tileSize,
                            stride: options.stride, scale: options.scale ?? pre.trainingScale)
        if pre.passesLocation, config.encoder.locationEncoding, let centre = reader.centre {
            location = [Float(centre.lon), Float(centre.lat)]
        } else {
            location = []
        }
        let kind = options.output
        let bands = kind == .mask ? 1 : config.numClasses
        let paths = SegmentJournal.paths(for: outputPath)
        let type: RasterDataType = kind == .mask ? .byte : .float32
        let settings = OutputSettings(path: outputPath, width: raster.width, height: raster.height, bands: bands, type: type,
                                      georeferencing: reader.georeferencing, nodata: kind == .mask ? 0 : .nan, creationOptions: options.creationOptions,
                                      format: options.format)
        var startGridRow = 0
        var skipStripsThrough = -1
        let spooled: StripSpool.Encoding = kind != .mask ? .floats(bands: bands)
            : Stitcher.blendsMargins(classes: config.numClasses, kind: kind) ? .bits : .bytes
        switch mode {
        case .off:
            sink = .direct(try OutputRaster(
                path: outputPath, width: raster.width, height: raster.height, bands: bands, type: type,
                georeferencing: settings.georeferencing, nodata: settings.nodata, creationOptions: options.creationOptions,
                format: options.format))
        case .start(let model):
            let header = try Self.header(input: input, model: model, options: options, plan: plan)
            _ = try OutputRaster.checkDirectory(of: outputPath)
            let journal = try SegmentJournal(creating: paths.journal, header: header)
            let spool = try StripSpool(path: paths.partial, width: raster.width, encoding: spooled, keepingRows: 0)
            sink = .journaled(journal, spool, settings)
        case .resume(let model):
            let header = try Self.header(input: input, model: model, options: options, plan: plan)
            let journal = try SegmentJournal(resuming: paths.journal, expected: header)
            // Redo the grid rows whose tiles also feed the rows not yet written; a journal whose
            // last grid row is the plan's last has nothing left but the final write.
            let written = journal.lastGridRow ?? -1
            startGridRow = written < 0 ? 0 : Stitcher.resumeGridRow(plan, after: written)
            skipStripsThrough = written
            let kept = written < 0 ? 0 : plan.rowsFinal(afterGridRow: written)
            let spool = try StripSpool(path: paths.partial, width: raster.width, encoding: spooled, keepingRows: kept)
            sink = .journaled(journal, spool, settings)
        }
        tilesResumed = min(startGridRow, plan.rows) * plan.columns
        recipe = reader.recipe(plan: plan, location: location)
        tiles = try reader.source(recipe)
        tileWindows = TileWindows(job: id, plan: plan, recipe: recipe,
                                  answer: Stitcher.blendsMargins(classes: config.numClasses, kind: kind) ? .classMargin : .logits)
        dataPath = options.dataPath
        allowedDrivers = options.allowedDrivers ?? []
        let strips = sink
        stitcher = Stitcher(plan: plan, classes: config.numClasses, kind: kind, startGridRow: startGridRow,
                            skipStripsThrough: skipStripsThrough) { first, rows, floats, bytes, gridRow in
            switch strips {
            case .direct(let output):
                try output.write(firstRow: first, rows: rows, floats: floats, bytes: bytes)
            case .journaled(let journal, let spool, _):
                try spool.append(firstRow: first, count: rows, floats: floats, bytes: bytes)
                try journal.record(gridRow: gridRow, rows: first + rows)
            }
        }
    }

    /// What identifies this run in a journal.
    static func header(input: String, model: String, options: SegmentOptions, plan: TilePlan) throws -> SegmentJournal.Header {
        let attributes = try FileManager.default.attributesOfItem(atPath: input)
        let weights = (try? ModelDirectory.weightsFile(in: model)).flatMap { try? FileManager.default.attributesOfItem(atPath: $0) }
        return SegmentJournal.Header(
            input: URL(fileURLWithPath: input).standardizedFileURL.path,
            inputBytes: (attributes[.size] as? NSNumber)?.int64Value ?? -1,
            inputModified: (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0,
            model: model, weightsBytes: (weights?[.size] as? NSNumber)?.int64Value ?? -1,
            bands: options.bands, tileSize: plan.tileSize, stride: plan.stride, scale: plan.scale,
            output: options.output.rawValue, batch: options.batch, width: plan.sceneWidth, height: plan.sceneHeight)
    }

    /// What georeferencing the scene lacks, for a warning (nil when it is placed on the ground).
    public var georeferencingWarning: String? { reader.georeferencing.warning(width: plan.sceneWidth, height: plan.sceneHeight) }
    public var locationUsed: [Float] { location }
    public var tilesDone: Int { tilesResumed + tilesComputed + tilesSkipped }
    public var tileCount: Int { plan.count }
    public var isComplete: Bool { stitcher.isComplete }
    public var shape: JobShape {
        JobShape(firstTile: tilesResumed, tileCount: plan.count, rowLength: plan.columns, workerSide: dataPath != .coordinator)
    }

    public var windows: TileWindows? { tileWindows }

    public func sceneOpening() throws -> SceneOpening {
        SceneOpening(job: id, path: URL(fileURLWithPath: inputPath).standardizedFileURL.path, fingerprint: try FileFingerprint.of(inputPath),
                     recipe: recipe, drivers: allowedDrivers)
    }

    /// Reads and prepares `range` (consecutive tiles of one grid row, as the engine groups them
    /// whoever prepares them, so that the grouping — and every bit of the output — depends on
    /// neither timing, the number of workers nor the data path). Tiles entirely without data are
    /// blended as nodata right away and never sent.
    public func prepare(tiles range: Range<Int>) throws -> (requests: [TileRequest], skipped: [Int]) {
        var requests: [TileRequest] = []
        var skipped: [Int] = []
        for index in range {
            let tile = plan.tile(index)
            let input = try tiles.prepare(tile.source)
            if input.validCount == 0 {
                skipped.append(index)
                tilesSkipped += 1
                try stitcher.add(tile: index, logits: nil, valid: nil)
                continue
            }
            if input.validCount < input.valid.count { inFlightValid[index] = input.valid }
            var request = tileWindows.request(index)
            request.pixels = input.pixels
            requests.append(request)
        }
        return (requests, skipped)
    }

    /// Blends a finished tile: logits on its source window, or nothing for a worker-read tile
    /// without data.
    public func accept(_ result: TileResult) throws {
        let index = Int(result.tile)
        guard result.job == id, index >= tilesResumed, index < plan.count else {
            throw PlanError("result for tile \(result.tile) of job \(result.job) was not expected")
        }
        if result.skipped {
            tilesSkipped += 1
            try stitcher.add(tile: index, logits: nil, valid: nil)
            return
        }
        let window = plan.window, classes = tileWindows.answer == .classMargin ? 1 : config.numClasses
        guard Int(result.classes) == classes, Int(result.height) == window, Int(result.width) == window,
              result.valid.isEmpty || result.valid.count == plan.tile(index).source.pixelCount else {
            throw PlanError("tile \(index) came back \(result.classes)×\(result.height)×\(result.width), expected \(classes)×\(window)×\(window)")
        }
        let valid = inFlightValid.removeValue(forKey: index) ?? (result.valid.isEmpty ? nil : result.valid)
        tilesComputed += 1
        try stitcher.add(tile: index, logits: result.logits, valid: valid)
    }

    /// Puts the finished output in place: renamed from its temporary name, or, for a journaled
    /// run, written from the spool (under a temporary name, then renamed) before the journal and
    /// spool go.
    public func finish() throws {
        guard stitcher.isComplete else { throw PlanError("segmentation of \(inputPath) is not complete") }
        guard !finished else { return }
        finished = true
        switch sink {
        case .direct(let output):
            try output.commit()
        case .journaled(let journal, let spool, let s):
            let output = try OutputRaster(path: s.path, width: s.width, height: s.height, bands: s.bands, type: s.type,
                                          georeferencing: s.georeferencing, nodata: s.nodata,
                                          creationOptions: s.creationOptions, format: s.format)
            do {
                try spool.copy(into: output)
                try output.commit()
            } catch {
                output.discard()
                throw error
            }
            spool.remove()
            journal.remove()
        }
    }

    /// Gives up: nothing appears at the output path. A journaled run keeps its spool and journal
    /// when `keepProgress` (a later `--resume` continues it); otherwise both go.
    public func abort(keepProgress: Bool = false) {
        finished = true
        switch sink {
        case .direct(let output):
            output.discard()
        case .journaled(let journal, let spool, _):
            if !keepProgress {
                spool.remove()
                journal.remove()
            }
        }
    }

    /// Grid rows durably written (journaled runs).
    public var journaledGridRows: Int {
        if case .journaled(let journal, _, _) = sink { return journal.lastGridRow.map { $0 + 1 } ?? 0 }
        return 0
    }
}
