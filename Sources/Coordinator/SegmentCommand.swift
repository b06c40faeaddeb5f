import ArgumentParser
import Foundation
import Geo
import Logging
import Model
import Pipeline
import Support

struct SegmentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segment",
        abstract: "Segment whole rasters into georeferenced water masks.",
        discussion: """
        Splits IN into overlapping model tiles, runs them on the tile workers (in-process when the
        MPI world has one rank), blends the per-class logits with a smooth window and writes OUT as a
        GeoTIFF with IN's CRS and geotransform. OUT appears only once complete.

          mpirun -np 1 coordinator segment MODEL scene.tif mask.tif : -np 2 tileworker
          coordinator segment MODEL scene.tif mask.tif        # in-process
          mpirun … coordinator segment MODEL a.tif b.tif c.tif --output-dir masks/ : -np 8 tileworker

        With --output-dir (and/or --inputs LIST, one path a line) every IN is segmented in the same
        job, one model load per worker, workers kept busy across scenes; DIR/NAME.tif per input.
        Workers that see an input at the same path (a shared file system) read their own tiles;
        the coordinator ships pixels to the others (--data-path coordinator: always).

        A journal beside each OUT (.OUT.journal, with finished strips in .OUT.strips) records every
        strip written; after a crash (a worker killed, a node lost, a time limit) the same command
        with --resume continues where it stopped and gives a mask identical to an uninterrupted run
        (with --output-dir, scenes already written are skipped).

        IN may also be a Sentinel-2 L1C/L2A product (its .SAFE directory, its .zip, or its
        MTD_MSIL1C/MTD_MSIL2A XML): the model's bands are read through GDAL's SENTINEL2 driver,
        20 m bands repeated onto the 10 m grid, and the offset of baselines ≥ 04.00 removed; OUT
        is on the 10 m grid. Or a folder or glob of band files (an HLS granule), see --band-file.

        --tiling vllm reproduces vLLM's terratorch_segmentation plugin instead: 512-pixel crops
        without overlap, resized to 448, argmax, nearest back (its masks, seams included).

        Exit status: 0 done, 64 usage (also: OUT is IN), 65 bad input (raster, bands, model),
        66 input missing, 70 a tile or worker failed, 73 output cannot be created (also: OUT is a
        directory); with several scenes, the status of the first scene that failed (the others
        are completed).
        """
    )

    @Argument(help: "Model directory or Hugging Face id.")
    var model: String

    @Argument(help: "IN OUT, or with --output-dir one or more inputs (a GDAL-readable raster, a Sentinel-2 SAFE/zip/MTD XML, or band files).")
    var paths: [String] = []

    @Option(help: "Write DIR/NAME.tif for every input (created if missing).")
    var outputDir: String?

    @Option(help: "A file listing inputs, one path a line (with --output-dir).")
    var inputs: String?

    @Option(name: .customLong("band-file"), help: "NAME=FILE: the file of the model's band NAME when IN is a directory or glob of band files (repeatable).")
    var bandFiles: [String] = []

    @Option(help: "FILE:BITS: with band files, pixels of FILE with any of BITS set are invalid (HLS Fmask: 1 cloud, 2 adjacent, 3 shadow, e.g. Fmask.tif:1,2,3).")
    var cloudMask: String?

    @Option(help: "Also write the mask's water polygons to FILE (.gpkg, .fgb or .geojson; in the mask's CRS, with class and area attributes).")
    var vector: String?

    @Option(help: "Comma-separated 0-based band indices fed to the model, in the model's band order.")
    var indices: String = "0,1,2,3,4,5"

    @Option(help: "Model tile size in pixels.")
    var tile: Int = 224

    @Option(help: "Distance between tile origins in model pixels; equal to --tile for no overlap.")
    var stride: Int = 192

    @Option(help: "Source pixels per model pixel (default: the model's training scale, 512/448 for Sen1Floods11).")
    var scale: Double?

    @Option(name: .customLong("output"), help: "What to write: mask (uint8, water 255), logits or probabilities (float32, one band per class).")
    var outputKind: OutputKind = .mask

    @Option(name: .customLong("creation-option"), help: "GDAL creation option KEY=VALUE for OUT (repeatable; with --format cog, the COG driver's).")
    var creationOptions: [String] = []

    @Option(help: "gtiff: a tiled GeoTIFF (default); cog: a Cloud Optimized GeoTIFF with overviews (nearest for masks, average for floats).")
    var format: OutputFormat = .gtiff

    @Option(help: "BLAS threads per worker (default: the worker host's cores shared among its workers).")
    var threads: Int?

    @Option(help: "Tiles per forward pass: consecutive tiles in plan order are grouped (larger GEMMs, more worker memory). Results depend on it in the last bits.")
    var batch: Int = 1

    @Option(help: "overlap: overlapping tiles at the training scale, logits blended (default); vllm: exactly the vLLM terratorch_segmentation plugin's crops and mask.")
    var tiling: TilingMode = .overlap

    @Option(help: "auto: workers that see the input at the same path read their own tiles (default); coordinator: the coordinator reads every tile and ships pixels.")
    var dataPath: DataPath = .auto

    @Option(help: "Scenes open at once with --output-dir (the next one starts while the last tiles of one are computed).")
    var scenesInFlight: Int = 2

    @Option(help: "Seconds a scene's own reading, blending or writing may go without progress before it fails.")
    var stallTimeout: Double = 600

    @Flag(help: "Continue an interrupted run from its journal beside OUT.")
    var resume = false

    @Flag(help: "No progress line.")
    var quiet = false

    func validate() throws {
        if tiling == .vllm {
            guard outputKind == .mask else { throw ValidationError("--tiling vllm writes the plugin's mask; --output \(outputKind.rawValue) needs --tiling overlap") }
            guard !resume else { throw ValidationError("--resume applies to --tiling overlap (vllm mode keeps no journal)") }
        }
        if let vector {
            guard outputDir == nil else { throw ValidationError("--vector names one file: give IN OUT, not --output-dir") }
            guard outputKind == .mask else { throw ValidationError("--vector polygonizes the mask; it cannot go with --output \(outputKind.rawValue)") }
            guard WaterPolygons.driver(for: vector) != nil else { throw ValidationError("--vector \(vector) must end in .gpkg, .fgb or .geojson") }
            guard paths.count != 2 || (Self.resolvedOutput(vector) != Self.resolvedOutput(paths[1]) && Self.resolvedOutput(vector) != Self.canonicalPath(paths[0])) else {
                throw ValidationError("--vector \(vector) must differ from IN and OUT")
            }
        }
        if !bandFiles.isEmpty || cloudMask != nil {
            guard outputDir == nil, paths.count == 2, BandStack.isBandFileInput(paths[0]) else {
                throw ValidationError("--band-file and --cloud-mask apply to one IN that is a directory or a glob of band files")
            }
            for item in bandFiles where !item.contains("=") { throw ValidationError("--band-file \(item) is not NAME=FILE") }
            if let cloudMask, BandStack.CloudMask(argument: cloudMask) == nil {
                throw ValidationError("--cloud-mask \(cloudMask) is not FILE:BITS with bits 0…15, e.g. Fmask.tif:1,2,3")
            }
        }
        if outputDir == nil {
            guard inputs == nil else { throw ValidationError("--inputs needs --output-dir") }
            guard paths.count == 2 else { throw ValidationError("give IN OUT, or inputs with --output-dir DIR") }
        } else if paths.isEmpty && inputs == nil {
            throw ValidationError("--output-dir needs inputs: paths after MODEL or --inputs LIST")
        }
        _ = try parsedIndices()
        guard tile >= 32, tile % 32 == 0 else { throw ValidationError("--tile must be a positive multiple of 32") }
        guard stride >= 1, stride <= tile else { throw ValidationError("--stride must be between 1 and --tile") }
        if let scale { guard scale > 0, scale.isFinite else { throw ValidationError("--scale must be positive") } }
        if let threads { guard threads >= 1 else { throw ValidationError("--threads must be at least 1") } }
        guard batch >= 1, batch <= 16 else { throw ValidationError("--batch must be between 1 and 16") }
        guard scenesInFlight >= 1 else { throw ValidationError("--scenes-in-flight must be at least 1") }
        guard stallTimeout > 0 else { throw ValidationError("--stall-timeout must be positive") }
        for option in creationOptions where !option.contains("=") {
            throw ValidationError("--creation-option \(option) is not KEY=VALUE")
        }
        do {
            try RasterDataset.validateCreationOptions(creationOptions, driver: format == .cog ? "COG" : "GTiff")
        } catch {
            throw ValidationError("--creation-option: \(error)")
        }
    }

    func parsedIndices() throws -> [Int] {
        let parts = indices.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let values = parts.compactMap { Int($0) }
        guard !parts.isEmpty, values.count == parts.count, values.allSatisfy({ $0 >= 0 }) else {
            throw ValidationError("--indices must be comma-separated band indices ≥ 0, e.g. 0,1,2,3,4,5")
        }
        return values
    }

    /// (input, output) of every scene, in order.
    func sceneList() throws -> [(input: String, output: String)] {
        guard let outputDir else { return [(paths[0], paths[1])] }
        var all = paths
        if let inputs {
            guard let text = try? String(contentsOfFile: inputs, encoding: .utf8) else {
                throw ValidationError("--inputs \(inputs) cannot be read")
            }
            all += text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        }
        guard !all.isEmpty else { throw ValidationError("--inputs \(inputs ?? "") lists no input") }
        var seen: [String: String] = [:]
        return try all.map { input in
            // A product's MTD XML is named for its product (the SAFE folder), not MTD_MSIL2A.
            let url = URL(fileURLWithPath: input)
            let named = url.pathExtension.lowercased() == "xml" && Sentinel2Product.isProduct(input) ? url.deletingLastPathComponent() : url
            let name = named.deletingPathExtension().lastPathComponent + ".tif"
            if let other = seen[name] { throw ValidationError("\(other) and \(input) would both write \(outputDir)/\(name)") }
            seen[name] = input
            return (input, URL(fileURLWithPath: outputDir).appendingPathComponent(name).path)
        }
    }

    func run() throws {
        ConsoleLogHandler.bootstrap(label: "coordinator")
        let logger = Logger(label: "coordinator")
        var scenes: [(input: String, output: String)]
        do { scenes = try sceneList() } catch { fail(logger, error, status: ExitStatus.usage) }
        var options = SegmentOptions()
        options.bands = try parsedIndices()
        options.tileSize = tile
        options.stride = stride
        options.scale = scale
        options.output = outputKind
        options.creationOptions = creationOptions
        options.format = format
        options.batch = batch
        options.tiling = tiling
        options.dataPath = dataPath
        if let outputDir {
            do {
                try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
            } catch {
                fail(logger, "--output-dir \(outputDir): \(error.localizedDescription)", status: ExitStatus.cannotCreateOutput)
            }
        }

        let session = try MPISession(logger: logger, handshakeTimeout: 120)
        func stop(_ message: Any, status: Int32) -> Never {
            logger.error("\(message)")
            session.finish(reason: "segment failed", status: status)
            Foundation.exit(status)
        }

        for scene in scenes {
            if let (problem, status) = Self.outputProblem(input: scene.input, output: scene.output) { stop(problem, status: status) }
        }
        if let vector {
            do { _ = try OutputRaster.checkDirectory(of: vector) } catch { stop(error, status: ExitStatus.cannotCreateOutput) }
        }

        let modelDirectory: String
        let config: ModelConfig
        do {
            (modelDirectory, config) = try session.resolveModel(model)
        } catch {
            stop(error, status: ExitStatus.badInput)
        }
        guard options.bands.count == config.encoder.inChannels else {
            stop("--indices selects \(options.bands.count) bands; the model takes \(config.encoder.inChannels) (\(config.bands.joined(separator: ", ")))",
                 status: ExitStatus.usage)
        }
        let single = outputDir == nil
        var stackFiles: [String] = []
        if single, BandStack.isBandFileInput(scenes[0].input) {
            // Band files become one VRT beside OUT (visible to workers as OUT is), kept until the run succeeds for --resume.
            let (input, output) = scenes[0]
            let stack = Self.stackPath(besides: output)
            let overrides = Dictionary(bandFiles.map { item -> (String, String) in
                let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                return (parts[0], parts[1])
            }, uniquingKeysWith: { $1 })
            do {
                let files = try BandStack.resolve(input: input, modelBands: config.bands, overrides: overrides)
                let mask = cloudMask.flatMap(BandStack.CloudMask.init(argument:))
                try BandStack.build(files: files, bandNames: config.bands, cloudMask: mask, at: stack)
                logger.info("\(input): bands \(zip(config.bands, files).map { "\($0)=\(URL(fileURLWithPath: $1).lastPathComponent)" }.joined(separator: " "))\(mask.map { "; invalid where \($0.path) has bits \($0.bits)" } ?? "")")
            } catch {
                stop(error, status: ExitStatus.badInput)
            }
            stackFiles = [stack, stack + ".valid.tif"]
            scenes[0].input = stack
        }
        // Sentinel-2 products become a VRT of the model's bands beside their OUT, like band files.
        var unprepared: [Int32] = []
        scenes = scenes.compactMap { scene in
            guard Sentinel2Product.isProduct(scene.input) else { return scene }
            let stack = Self.stackPath(besides: scene.output)
            do {
                let product = try Sentinel2Product.open(scene.input, modelBands: config.bands, warn: { logger.warning("\($0)") })
                try product.writeVRT(at: stack)
                logger.info("\(scene.input): \(product.summary)")
            } catch {
                let status = FileManager.default.fileExists(atPath: scene.input) ? ExitStatus.badInput : ExitStatus.noInput
                if single { stop(error, status: status) }
                logger.error("\(error)")
                unprepared.append(status)
                return nil
            }
            stackFiles.append(stack)
            return (stack, scene.output)
        }
        if scenes.isEmpty, let status = unprepared.first {
            session.finish(reason: "segment failed", status: status)
            Foundation.exit(status)
        }
        if single, !FileManager.default.fileExists(atPath: scenes[0].input) {
            stop("\(scenes[0].input): no such file", status: ExitStatus.noInput)
        }

        let executor: TileExecutor
        do {
            executor = try session.makeExecutor(modelDirectory: modelDirectory, threads: threads)
        } catch {
            stop(error, status: ExitStatus.badInput)
        }
        let engine = SegmentationEngine(executor: executor, config: config, batch: batch, stallSeconds: stallTimeout, logger: logger)
        engine.start()
        let run = SceneRun(scenes: scenes, options: options, config: config, modelDirectory: modelDirectory, resume: resume,
                           logger: logger, reporter: ProgressReporter(quiet: quiet))
        let names = Dictionary(uniqueKeysWithValues: executor.workerRanks.map { ($0, executor.describe(worker: $0)) })
        let statuses = run.segment(on: engine, scenesInFlight: scenesInFlight, workers: names)
        engine.stop()
        let traffic = executor.traffic
        if traffic.sent + traffic.received > 0 {
            let tiles = max(1, run.tilesComputed)
            logger.info("MPI tile traffic: \(traffic.sent) bytes sent, \(traffic.received) received (\(traffic.sent / tiles) and \(traffic.received / tiles) per computed tile)")
        }
        let failed = unprepared + statuses.filter { $0 != 0 }
        if !single {
            let total = scenes.count + unprepared.count
            logger.info("\(total - failed.count) of \(total) scene(s) done in \(String(format: "%.1f", run.seconds)) s, \(run.tilesComputed) tiles computed\(failed.isEmpty ? "" : "; \(failed.count) failed")")
        }
        if let status = failed.first {
            session.finish(reason: "segment failed", status: status)
            Foundation.exit(status)
        }
        if let vector {
            // After the engine stopped: polygonizing a large mask takes seconds and blocks nothing.
            do {
                let summary = try WaterPolygons.write(maskPath: scenes[0].output, to: vector)
                logger.info("wrote \(vector): \(summary.polygons) polygons, \(String(format: "%.6g", summary.area)) CRS units² of water")
            } catch {
                stop("\(error) (the mask \(scenes[0].output) is complete)", status: ExitStatus.for(FailureKind.of(error)))
            }
        }
        for file in stackFiles { unlink(file) }
        session.finish(reason: "segment done")
    }
}

extension SegmentCommand {
    /// Where a derived input (band files or a product stacked into a VRT) lives: hidden beside
    /// OUT, so workers see it wherever they see OUT, and kept until the run succeeds (for --resume).
    static func stackPath(besides output: String) -> String {
        let url = URL(fileURLWithPath: output)
        return url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + ".stack.vrt").path
    }

    /// Why OUT cannot be written, found before any work: OUT resolving to IN (through `..`, a
    /// symlink at either path, or a relative path; the finished mask is renamed over OUT) or an
    /// existing directory. Nil when OUT may be written (its directory is checked later).
    static func outputProblem(input: String, output: String) -> (String, Int32)? {
        if let inputPath = canonicalPath(input), let outputPath = resolvedOutput(output), inputPath == outputPath {
            return ("\(output) is the input \(input): refusing to replace it with the output", ExitStatus.usage)
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory), isDirectory.boolValue {
            return ("\(output) is a directory; OUT must name a file", ExitStatus.cannotCreateOutput)
        }
        return nil
    }

    /// realpath(3): `path` with every symlink, `.` and `..` resolved; nil if it does not exist.
    static func canonicalPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Where OUT will be: itself resolved when it exists (a symlink followed), else its resolved
    /// directory plus its last component.
    static func resolvedOutput(_ output: String) -> String? {
        if let existing = canonicalPath(output) { return existing }
        let url = URL(fileURLWithPath: output)
        guard let directory = canonicalPath(url.deletingLastPathComponent().path) else { return nil }
        return (directory == "/" ? "" : directory) + "/" + url.lastPathComponent
    }
}

/// The scenes of one `segment` run on the engine: at most `scenesInFlight` open at once, each
/// with its journal; a line per scene; the exit status per scene.
final class SceneRun: @unchecked Sendable {
    // Fields below `lock` are shared between the main thread and the engine's callbacks; every
    // access holds the lock.
    let scenes: [(input: String, output: String)]
    let options: SegmentOptions
    let config: ModelConfig
    let modelDirectory: String
    let resume: Bool
    let logger: Logger
    let reporter: ProgressReporter
    private let lock = NSCondition()
    private var statuses: [Int32?]
    private var running = 0
    private var progress: [UInt64: JobProgress] = [:]
    private let start = monotonicSeconds()
    private(set) var seconds = 0.0
    private(set) var tilesComputed = 0

    init(scenes: [(input: String, output: String)], options: SegmentOptions, config: ModelConfig, modelDirectory: String,
         resume: Bool, logger: Logger, reporter: ProgressReporter) {
        self.scenes = scenes
        self.options = options
        self.config = config
        self.modelDirectory = modelDirectory
        self.resume = resume
        self.logger = logger
        self.reporter = reporter
        statuses = Array(repeating: nil, count: scenes.count)
    }

    /// Runs every scene; returns each one's exit status.
    func segment(on engine: SegmentationEngine, scenesInFlight: Int, workers: [Int: String]) -> [Int32] {
        for (index, scene) in scenes.enumerated() {
            lock.lock()
            while running >= scenesInFlight { lock.wait() }
            lock.unlock()
            guard let status = precheck(scene) else {
                lock.withLock { running += 1 }
                submit(index, on: engine, workers: workers)
                continue
            }
            lock.withLock { statuses[index] = status }
        }
        lock.lock()
        while running > 0 { lock.wait() }
        let result = statuses.map { $0 ?? 0 }
        seconds = monotonicSeconds() - start
        lock.unlock()
        reporter.done()
        return result
    }

    /// A status when the scene needs no job: missing (66), or already done (0, --resume with
    /// --output-dir).
    private func precheck(_ scene: (input: String, output: String)) -> Int32? {
        guard FileManager.default.fileExists(atPath: scene.input) else {
            logger.error("\(scene.input): no such file")
            return ExitStatus.noInput
        }
        let journal = SegmentJournal.paths(for: scene.output).journal
        let hasJournal = FileManager.default.fileExists(atPath: journal)
        if scenes.count > 1, resume, !hasJournal, FileManager.default.fileExists(atPath: scene.output) {
            logger.info("\(scene.output) is complete already; skipped")
            return 0
        }
        if options.tiling == .overlap, !resume, hasJournal {
            logger.warning("\(journal) holds an interrupted run; starting over (add --resume to continue it instead)")
        }
        return nil
    }

    private func submit(_ index: Int, on engine: SegmentationEngine, workers: [Int: String]) {
        let (input, output) = scenes[index]
        let options = self.options, config = self.config, logger = self.logger
        // A single scene resumes as asked (and says so when there is nothing to resume); with many,
        // scenes without a journal start.
        let resumes = resume && (scenes.count == 1 || FileManager.default.fileExists(atPath: SegmentJournal.paths(for: output).journal))
        let journal: JournalMode = resumes ? .resume(model: modelDirectory) : .start(model: modelDirectory)
        let several = scenes.count > 1
        engine.submit(keepProgress: true, progress: { [self] in update($0) }, make: { id in
            let job: any TilingJob
            if options.tiling == .vllm {
                let plugin = try PluginTilingJob(id: id, input: input, output: output, config: config, options: options, lockOutput: true)
                if let warning = plugin.georeferencingWarning { logger.warning("\(input) \(warning)") }
                logger.info("\(input): bands \(options.bands), reflectance ÷\(Int(plugin.reflectanceDivisor)); vLLM plugin tiling: \(plugin.tileCount) crops of \(plugin.crop) px (reflect-padded) resized to \(plugin.side), argmax, nearest back")
                job = plugin
            } else {
                let tiled = try SegmentationJob(id: id, input: input, output: output, config: config, options: options, journal: journal)
                if let warning = tiled.georeferencingWarning { logger.warning("\(input) \(warning)") }
                let plan = tiled.plan
                if resumes {
                    logger.info("resuming\(several ? " " + output : ""): \(tiled.journaledGridRows) of \(plan.rows) grid rows were written; \(plan.count - tiled.tilesResumed) tiles to go")
                }
                logger.info("\(input): \(plan.sceneWidth)×\(plan.sceneHeight), bands \(options.bands), reflectance ÷\(Int(tiled.reader.reflectanceDivisor)); \(plan.count) tiles of \(plan.tileSize) px covering \(plan.window) source px (scale \(String(format: "%.4g", plan.scale)), stride \(plan.stride))")
                job = tiled
            }
            return job
        }) { [self] result in
            finished(index, result, workers: workers)
        }
    }

    private func update(_ job: JobProgress) {
        let (done, total, computed) = lock.withLock { () -> (Int, Int, Int) in
            progress[job.job] = job
            let values = progress.values
            return (values.reduce(0) { $0 + $1.tilesDone }, values.reduce(0) { $0 + $1.tilesTotal }, tilesComputed + values.reduce(0) { $0 + $1.tilesComputed })
        }
        reporter.update(tilesDone: done, tilesTotal: total, tilesComputed: computed, seconds: monotonicSeconds() - start)
    }

    private func finished(_ index: Int, _ result: Result<JobReport, Error>, workers: [Int: String]) {
        let (input, output) = scenes[index]
        reporter.done()
        let status: Int32
        switch result {
        case .success(let report):
            status = 0
            let rate = report.seconds > 0 ? Double(report.computed) / report.seconds : 0
            logger.info("wrote \(output): \(report.tiles) tiles (\(report.computed) computed, \(report.skipped) all-nodata skipped\(report.resumed > 0 ? ", \(report.resumed) resumed" : "")) in \(String(format: "%.1f", report.seconds)) s, \(String(format: "%.2f", rate)) tiles/s; \(report.readByWorkers) tiles read by the workers")
            for (worker, count) in report.perWorker.sorted(by: { $0.key < $1.key }) {
                logger.info("  \(workers[worker] ?? "rank \(worker)"): \(count) tiles, \(String(format: "%.2f", Double(count) / max(report.seconds, 1e-9))) tiles/s")
            }
        case .failure(let error):
            status = Self.exitStatus(for: error)
            let opened = !(error is JobOpenFailure)
            let journal = SegmentJournal.paths(for: output).journal
            let hint = opened && options.tiling == .overlap && FileManager.default.fileExists(atPath: journal)
                ? "\nprogress is saved in \(journal); run the same command with --resume to continue" : ""
            logger.error("\(scenes.count > 1 ? "\(input): " : "")\(error)\(hint)")
        }
        lock.withLock {
            statuses[index] = status
            if case .success(let report) = result { tilesComputed += report.computed }
            running -= 1
            lock.broadcast()
        }
    }

    /// The exit status for a scene that failed, from the kind of failure (`ExitStatus.for`); a
    /// failure while opening that is not classified is the input's (65), while running a defect (70).
    static func exitStatus(for error: Error) -> Int32 {
        let kind = FailureKind.of(error)
        if error is JobOpenFailure, kind == .internal { return ExitStatus.badInput }
        return ExitStatus.for(kind)
    }
}

extension OutputKind: ExpressibleByArgument {}
extension TilingMode: ExpressibleByArgument {}
extension DataPath: ExpressibleByArgument {}
extension OutputFormat: ExpressibleByArgument {}

/// The progress line on stderr: rewritten in place on a terminal, a line every few seconds otherwise.
/// Called from the engine thread while scenes run, and from the main thread once they are done (never at once).
final class ProgressReporter: @unchecked Sendable {
    private let quiet: Bool
    private let terminal = isatty(STDERR_FILENO) != 0
    private var lastPrint = 0.0
    private var printed = false

    init(quiet: Bool) { self.quiet = quiet }

    func update(tilesDone: Int, tilesTotal: Int, tilesComputed: Int, seconds: Double) {
        guard !quiet else { return }
        let now = monotonicSeconds()
        guard now - lastPrint >= (terminal ? 0.2 : 5) || tilesDone == tilesTotal else { return }
        lastPrint = now
        let rate = seconds > 0 ? Double(tilesComputed) / seconds : 0
        let remaining = tilesTotal - tilesDone
        let eta = rate > 0 ? Double(remaining) / rate : 0
        let line = String(format: "tiles %d/%d (%d %%)  %.2f tiles/s  ETA %@", tilesDone, tilesTotal,
                          tilesTotal > 0 ? 100 * tilesDone / tilesTotal : 100, rate, Self.duration(eta))
        FileHandle.standardError.write(Data((terminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
        printed = true
    }

    func done() {
        if printed && terminal { FileHandle.standardError.write(Data("\n".utf8)) }
        printed = false
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600)h\(String(format: "%02d", s % 3600 / 60))m" : s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s"
    }
}
