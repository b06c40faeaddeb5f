import Foundation
import Geo
import Tensor

/// Runs tiles through a loaded model. One instance per worker process; not shared across threads.
public protocol TileComputer: AnyObject {
    /// A one-line description for logs (architecture, parameters).
    var summary: String { get }
    /// Computes tiles of one shape together (one forward pass over the batch); logits at the
    /// model's output size.
    func compute(_ tiles: [TileRequest]) throws -> [TileResult]
}

/// A worker's side of a tile, whichever process it runs in: tiles that come without pixels are
/// read and prepared here from the job's scene (`TileSource`, the code the coordinator uses),
/// tiles without any data are answered as skipped, the rest are computed in one forward pass
/// exactly as grouped, and every tile's logits are resampled to its source window.
///
/// Not thread-safe: one worker thread owns it.
public final class TileProcessor {
    public let computer: TileComputer
    /// Names this worker in failure messages.
    public let context: String
    private var scenes: [UInt64: TileSource] = [:]

    public init(computer: TileComputer, context: String) {
        self.computer = computer
        self.context = context
    }

    /// Opens the job's scene when the file here is the coordinator's; nil when open, else why not.
    public func openScene(_ opening: SceneOpening) -> String? {
        do {
            let here = try FileFingerprint.of(opening.path)
            guard here == opening.fingerprint else {
                return "\(opening.path) is another file here (\(here); the coordinator's: \(opening.fingerprint))"
            }
            let raster = try RasterDataset.open(opening.path, allowedDrivers: opening.drivers.isEmpty ? nil : opening.drivers)
            scenes[opening.job] = try TileSource(raster: raster, recipe: opening.recipe)
            return nil
        } catch {
            return "\(error)"
        }
    }

    public func closeScene(job: UInt64) { scenes[job] = nil }

    /// Scenes open now (for tests and logs).
    public var openScenes: Int { scenes.count }

    /// One batch's outcomes, in the batch's order.
    public func process(_ batch: [TileRequest]) -> [Result<TileResult, TileFailure>] {
        var outcomes = [Result<TileResult, TileFailure>?](repeating: nil, count: batch.count)
        var computable: [(index: Int, request: TileRequest, valid: [UInt8])] = []
        for (index, request) in batch.enumerated() {
            guard request.preparedByWorker else {
                computable.append((index, request, []))
                continue
            }
            guard let scene = scenes[request.job] else {
                outcomes[index] = .failure(TileFailure(job: request.job, tile: request.tile,
                                                       message: "\(context): the scene of job \(request.job) is not open here"))
                continue
            }
            do {
                let input = try scene.prepare(request.source)
                if input.validCount == 0 {
                    outcomes[index] = .success(TileResult(job: request.job, tile: request.tile, classes: 1, height: request.window,
                                                          width: request.window, computeSeconds: 0, logits: [], skipped: true))
                    continue
                }
                var prepared = request
                prepared.pixels = input.pixels
                computable.append((index, prepared, input.validCount == input.valid.count ? [] : input.valid))
            } catch {
                outcomes[index] = .failure(TileFailure(job: request.job, tile: request.tile, message: "\(context): \(error)"))
            }
        }
        if !computable.isEmpty {
            do {
                let results = try computer.compute(computable.map(\.request))
                guard results.count == computable.count else { throw SegmentationFailure("the model returned \(results.count) results for \(computable.count) tiles") }
                for (entry, computed) in zip(computable, results) {
                    var result = computed
                    let window = Int(entry.request.window)
                    if window != Int(result.height) || window != Int(result.width) {
                        guard result.height == result.width else { throw SegmentationFailure("non-square logits \(result.height)×\(result.width)") }
                        result.logits = TileSource.resample(result.logits, planes: Int(result.classes), from: Int(result.height), to: window)
                        result.height = Int32(window)
                        result.width = Int32(window)
                    }
                    if entry.request.answer == .classMargin { result = try Self.classMargins(of: result) }
                    result.valid = entry.valid
                    outcomes[entry.index] = .success(result)
                }
            } catch {
                for entry in computable {
                    outcomes[entry.index] = .failure(TileFailure(job: entry.request.job, tile: entry.request.tile, message: "\(context): \(error)"))
                }
            }
        }
        return outcomes.map { $0! }
    }

    /// A two-class result turned into one plane of class 1's logits minus class 0's.
    static func classMargins(of result: TileResult) throws -> TileResult {
        guard result.classes == 2 else { throw SegmentationFailure("class margins need a two-class model, this one has \(result.classes) classes") }
        let plane = Int(result.height) * Int(result.width)
        guard result.logits.count == 2 * plane else { throw SegmentationFailure("\(result.logits.count) logits for 2×\(result.height)×\(result.width)") }
        var margins = result
        margins.classes = 1
        margins.logits = [Float](unsafeUninitializedCapacity: plane) { out, initialized in
            result.logits.withUnsafeBufferPointer { l in
                VectorMath.subtract(l.baseAddress! + plane, l.baseAddress!, into: out.baseAddress!, count: plane)
            }
            initialized = plane
        }
        return margins
    }
}
