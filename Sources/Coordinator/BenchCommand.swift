import ArgumentParser
import Foundation
import Logging
import Model
import Support
import Tensor

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the forward pass in this process on 224×224 tiles.",
        discussion: """
        Loads MODEL, runs one warm-up pass, then --tiles timed forward passes of --batch tiles
        each on random normalised input, and prints per-stage times, GFLOP/s, peak RSS and a last
        line `median_tile_ms: X` (median pass time divided by the batch).

          coordinator bench MODEL --tiles 5 --threads 2
        """
    )

    @Argument(help: "Model directory or Hugging Face id.")
    var model: String

    @Option(help: "Timed forward passes (after one warm-up).")
    var tiles: Int = 5

    @Option(help: "Tiles per forward pass.")
    var batch: Int = 1

    @Option(help: "BLAS threads (default: OpenBLAS's own choice).")
    var threads: Int?

    @Option(help: "Tile side in pixels.")
    var size: Int = 224

    func validate() throws {
        guard tiles >= 1 else { throw ValidationError("--tiles must be at least 1") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        ConsoleLogHandler.bootstrap(label: "bench")
        let logger = Logger(label: "bench")
        if let threads { BLAS.threads = threads }
        let loaded: PrithviSegmentationModel
        let loadStart = monotonicSeconds()
        do {
            loaded = try PrithviSegmentationModel(directory: try ModelLocator.resolve(model))
        } catch {
            fail(logger, error, status: ExitStatus.badInput)
        }
        let loadSeconds = monotonicSeconds() - loadStart
        let config = loaded.config
        print("model: \(loaded.summary)")
        print("weights: \(loaded.weightsPath) (loaded in \(String(format: "%.2f", loadSeconds)) s)")
        print(loaded.packingReport)
        print("gemm: \(GEMM.variant)")
        print("blas: \(BLAS.configuration), \(BLAS.threads) thread(s); batch \(batch), \(size)×\(size)")

        var random = UInt64(12345)
        let count = batch * config.encoder.inChannels * size * size
        let pixels = (0..<count).map { _ -> Float in
            random = random &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: random >> 33) % 4000 - 2000) / 1000
        }
        let location: [Float]? = config.encoder.locationEncoding ? (0..<batch).flatMap { _ in [Float(12.49), 41.89] } : nil
        var logits = [Float](repeating: 0, count: batch * config.numClasses * size * size)
        let scratch = Scratch()
        let profile = ForwardProfile()
        func pass() throws -> Double {
            let start = monotonicSeconds()
            try logits.withUnsafeMutableBufferPointer { out in
                try loaded.forward(pixels, images: batch, height: size, width: size, location: location,
                                   into: out.baseAddress!, scratch: scratch, profile: profile)
            }
            return monotonicSeconds() - start
        }
        do {
            let warmup = try pass()
            print(String(format: "warm-up pass: %.1f ms", warmup * 1e3))
            profile.reset()
            var times: [Double] = []
            for index in 0..<tiles {
                let seconds = try pass()
                times.append(seconds)
                print(String(format: "pass %d: %.1f ms (%.1f ms per tile)", index + 1, seconds * 1e3, seconds * 1e3 / Double(batch)))
            }
            for stage in profile.order {
                print(String(format: "stage %@: %.1f ms per tile", stage, profile.seconds[stage]! * 1e3 / Double(tiles * batch)))
            }
            let median = times.sorted()[times.count / 2] / Double(batch)
            let flops = ModelFLOPs.forward(config, height: size, width: size)
            print(String(format: "work: %.1f GFLOP per tile, %.1f GFLOP/s at the median", flops / 1e9, flops / median / 1e9))
            print("scratch: \(scratch.bytes / 1_048_576) MiB; peak RSS: \(peakResidentMegabytes()) MiB")
            print(String(format: "median_tile_ms: %.1f", median * 1e3))
        } catch {
            fail(logger, error, status: ExitStatus.internalError)
        }
    }
}

/// Peak resident set size of this process, in MiB (getrusage: kilobytes on Linux).
func peakResidentMegabytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss) / 1024
}
