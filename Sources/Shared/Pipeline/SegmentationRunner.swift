import Foundation

/// Progress of a running segmentation, for the progress line and the summary.
public struct SegmentProgress: Sendable {
    public var tilesDone: Int
    public var tilesTotal: Int
    public var tilesComputed: Int
    public var seconds: Double
    /// Tiles computed by each worker.
    public var perWorker: [Int: Int]
}

public struct SegmentationFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Drives one job on an executor: sends batches of `batch` tiles, keeping two batches in flight
/// per worker, blends results as they come, and reports progress. Throws on the first tile that
/// fails (the job is then aborted by the caller).
public func runSegmentation(
    _ job: any TilingJob, on executor: TileExecutor, batch: Int = 1,
    progress: ((SegmentProgress) -> Void)? = nil
) throws -> SegmentProgress {
    var scheduler = TileScheduler(workers: executor.workerRanks, depth: 2 * batch)
    scheduler.addJob(job.id)
    let start = monotonicSeconds()
    var perWorker: [Int: Int] = [:]
    func report() -> SegmentProgress {
        SegmentProgress(tilesDone: job.tilesDone, tilesTotal: job.tileCount, tilesComputed: job.tilesComputed,
                        seconds: monotonicSeconds() - start, perWorker: perWorker)
    }
    while !job.isComplete {
        while let slot = scheduler.nextSlot(tiles: batch) {
            let tiles = try job.nextBatch(size: batch)
            guard !tiles.isEmpty else {
                scheduler.retireJob(job.id)
                break
            }
            try executor.send(tiles, to: slot.worker)
            for tile in tiles { scheduler.assigned(.init(worker: slot.worker, job: job.id, tile: Int(tile.tile))) }
        }
        if job.isComplete { break }
        guard scheduler.totalInFlight > 0 else {
            throw SegmentationFailure("internal error: no tile in flight and the scene is not complete")
        }
        for outcome in try executor.poll(timeout: 0.25) {
            switch outcome {
            case .result(let result, let worker):
                scheduler.completed(.init(worker: worker, job: result.job, tile: Int(result.tile)))
                try job.accept(result)
                perWorker[worker, default: 0] += 1
            case .failure(let failure, let worker):
                throw SegmentationFailure("tile \(failure.tile) failed on \(executor.describe(worker: worker)): \(failure.message)")
            }
            progress?(report())
        }
    }
    return report()
}
