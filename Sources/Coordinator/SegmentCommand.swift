import ArgumentParser
import Foundation
import Logging
import Shared

struct SegmentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segment",
        abstract: "Segment a whole raster into a georeferenced water mask.",
        discussion: """
        Splits IN into overlapping model tiles, runs them on the tile workers (in-process when the
        MPI world has one rank), blends the per-class logits with a smooth window and writes OUT as a
        GeoTIFF with IN's CRS and geotransform. OUT appears only once complete.

          mpirun -np 1 coordinator segment MODEL scene.tif mask.tif : -np 2 tileworker
          coordinator segment MODEL scene.tif mask.tif        # in-process

        A journal beside OUT (.OUT.journal, with finished strips in .OUT.strips) records every
        strip written; after a crash (a worker killed, a node lost, a time limit) the same command
        with --resume continues where it stopped and gives a mask identical to an uninterrupted run.

        --tiling vllm reproduces vLLM's terratorch_segmentation plugin instead: 512-pixel crops
        without overlap, resized to 448, argmax, nearest back (its masks, seams included).

        Exit status: 0 done, 64 usage (also: OUT is IN), 65 bad input (raster, bands, model),
        66 input missing, 70 a tile or worker failed, 73 output cannot be created (also: OUT is a directory).
        """
    )

    @Argument(help: "Model directory or Hugging Face id.")
    var model: String

    @Argument(help: "Input raster (any GDAL-readable file).")
    var input: String

    @Argument(help: "Output GeoTIFF.")
    var output: String

    @Option(help: "Comma-separated 0-based band indices fed to the model, in the model's band order.")
    var indices: String = "0,1,2,3,4,5"

    @Option(help: "Model tile size in pixels.")
    var tile: Int = 224

    @Option(help: "Distance between tile origins in model pixels; equal to --tile for no overlap.")
    var stride: Int = 192

    @Option(help: "Source pixels per model pixel (default: the model's training scale, 512/448 for Sen1Floods11).")
    var scale: Double?

    @Option(name: .customLong("output"), help: "What to write: mask (uint8, water 255), logits or probabilities (float32, one band per class).")
    var outputKind: String = "mask"

    @Option(name: .customLong("creation-option"), help: "GDAL creation option KEY=VALUE for OUT (repeatable).")
    var creationOptions: [String] = []

    @Option(help: "BLAS threads per worker (default: the worker host's cores shared among its workers).")
    var threads: Int?

    @Option(help: "Tiles per forward pass: consecutive tiles in plan order are grouped (larger GEMMs, more worker memory). Results depend on it in the last bits.")
    var batch: Int = 1

    @Option(help: "overlap: overlapping tiles at the training scale, logits blended (default); vllm: exactly the vLLM terratorch_segmentation plugin's crops and mask.")
    var tiling: String = "overlap"

    @Flag(help: "Continue an interrupted run from its journal beside OUT.")
    var resume = false

    @Flag(help: "No progress line.")
    var quiet = false

    func validate() throws {
        guard let mode = TilingMode(rawValue: tiling) else { throw ValidationError("--tiling must be overlap or vllm, not \(tiling)") }
        if mode == .vllm {
            guard outputKind == "mask" else { throw ValidationError("--tiling vllm writes the plugin's mask; --output \(outputKind) needs --tiling overlap") }
            guard !resume else { throw ValidationError("--resume applies to --tiling overlap (vllm mode keeps no journal)") }
        }
        guard OutputKind(rawValue: outputKind) != nil else {
            throw ValidationError("--output must be mask, logits or probabilities, not \(outputKind)")
        }
        _ = try parsedIndices()
        guard tile >= 32, tile % 32 == 0 else { throw ValidationError("--tile must be a positive multiple of 32") }
        guard stride >= 1, stride <= tile else { throw ValidationError("--stride must be between 1 and --tile") }
        if let scale { guard scale > 0, scale.isFinite else { throw ValidationError("--scale must be positive") } }
        if let threads { guard threads >= 1 else { throw ValidationError("--threads must be at least 1") } }
        guard batch >= 1, batch <= 16 else { throw ValidationError("--batch must be between 1 and 16") }
        for option in creationOptions where !option.contains("=") {
            throw ValidationError("--creation-option \(option) is not KEY=VALUE")
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

    func run() throws {
        ConsoleLogHandler.bootstrap(label: "coordinator")
        let logger = Logger(label: "coordinator")
        var options = SegmentOptions()
        options.bands = try parsedIndices()
        options.tileSize = tile
        options.stride = stride
        options.scale = scale
        options.output = OutputKind(rawValue: outputKind)!
        options.creationOptions = creationOptions
        options.batch = batch
        options.tiling = TilingMode(rawValue: tiling)!

        let session = try MPISession(logger: logger, handshakeTimeout: 120)
        func stop(_ message: Any, status: Int32) -> Never {
            logger.error("\(message)")
            session.finish(reason: "segment failed", status: status)
            Foundation.exit(status)
        }

        if let (problem, status) = Self.outputProblem(input: input, output: output) { stop(problem, status: status) }

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
        guard FileManager.default.fileExists(atPath: input) else { stop("\(input): no such file", status: ExitStatus.noInput) }

        let journalPath = SegmentJournal.paths(for: output).journal
        if options.tiling == .overlap, !resume, FileManager.default.fileExists(atPath: journalPath) {
            logger.warning("\(journalPath) holds an interrupted run; starting over (add --resume to continue it instead)")
        }
        let job: any TilingJob
        do {
            if options.tiling == .vllm {
                job = try PluginTilingJob(id: 1, input: input, output: output, config: config, options: options)
            } else {
                job = try SegmentationJob(id: 1, input: input, output: output, config: config, options: options,
                                          journal: resume ? .resume(model: modelDirectory) : .start(model: modelDirectory))
            }
        } catch let error as SegmentationFailure {
            stop(error, status: ExitStatus.noInput)
        } catch let error as OutputError {
            stop(error, status: ExitStatus.cannotCreateOutput)
        } catch {
            stop(error, status: ExitStatus.badInput)
        }
        if let plugin = job as? PluginTilingJob {
            logger.info("\(input): bands \(options.bands), reflectance ÷\(Int(plugin.reflectanceDivisor)); vLLM plugin tiling: \(plugin.tileCount) crops of \(plugin.crop) px (reflect-padded) resized to \(plugin.side), argmax, nearest back")
        }
        if let job = job as? SegmentationJob {
            if !job.isGeoreferenced {
                logger.warning("\(input) has no CRS or geotransform: the output will have none either")
            }
            let plan = job.plan
            if resume {
                logger.info("resuming: \(job.journaledGridRows) of \(plan.rows) grid rows were written; \(plan.count - job.tilesResumed) tiles to go")
            }
            logger.info("\(input): \(plan.sceneWidth)×\(plan.sceneHeight), bands \(options.bands), reflectance ÷\(Int(job.reader.reflectanceDivisor)); \(plan.count) tiles of \(plan.tileSize) px covering \(plan.window) source px (scale \(String(format: "%.4g", plan.scale)), stride \(plan.stride))")
        }

        let executor: TileExecutor
        do {
            executor = try session.makeExecutor(modelDirectory: modelDirectory, threads: threads)
        } catch {
            job.abort(keepProgress: false)
            stop(error, status: ExitStatus.badInput)
        }

        let reporter = ProgressReporter(quiet: quiet)
        do {
            let final = try runSegmentation(job, on: executor, batch: batch) { reporter.update($0) }
            try job.finish()
            reporter.done()
            let rate = final.seconds > 0 ? Double(final.tilesComputed) / final.seconds : 0
            logger.info("wrote \(output): \(final.tilesTotal) tiles (\(job.tilesComputed) computed, \(job.tilesSkipped) all-nodata skipped) in \(String(format: "%.1f", final.seconds)) s, \(String(format: "%.2f", rate)) tiles/s")
            for (worker, count) in final.perWorker.sorted(by: { $0.key < $1.key }) {
                logger.info("  \(executor.describe(worker: worker)): \(count) tiles, \(String(format: "%.2f", Double(count) / max(final.seconds, 1e-9))) tiles/s")
            }
        } catch let error as OutputError {
            reporter.done()
            job.abort(keepProgress: true)
            stop("\(error)\(resumeHint(job))", status: ExitStatus.cannotCreateOutput)
        } catch {
            reporter.done()
            job.abort(keepProgress: true)
            stop("\(error)\(resumeHint(job))", status: ExitStatus.internalError)
        }
        session.finish(reason: "segment done")
    }
}

extension SegmentCommand {
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

/// What a failed run leaves for `--resume`.
func resumeHint(_ job: any TilingJob) -> String {
    guard let job = job as? SegmentationJob else { return "" }
    return "\n\(job.journaledGridRows) of \(job.plan.rows) grid rows are saved in \(job.journalPath ?? "the journal"); run the same command with --resume to continue"
}

/// The progress line on stderr: rewritten in place on a terminal, a line every few seconds otherwise.
final class ProgressReporter {
    private let quiet: Bool
    private let terminal = isatty(STDERR_FILENO) != 0
    private var lastPrint = 0.0
    private var printed = false

    init(quiet: Bool) { self.quiet = quiet }

    func update(_ p: SegmentProgress) {
        guard !quiet else { return }
        let now = monotonicSeconds()
        guard now - lastPrint >= (terminal ? 0.2 : 5) || p.tilesDone == p.tilesTotal else { return }
        lastPrint = now
        let rate = p.seconds > 0 ? Double(p.tilesComputed) / p.seconds : 0
        let remaining = p.tilesTotal - p.tilesDone
        let eta = rate > 0 ? Double(remaining) / rate : 0
        let line = String(format: "tiles %d/%d (%d %%)  %.2f tiles/s  ETA %@", p.tilesDone, p.tilesTotal,
                          p.tilesTotal > 0 ? 100 * p.tilesDone / p.tilesTotal : 100, rate, Self.duration(eta))
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
