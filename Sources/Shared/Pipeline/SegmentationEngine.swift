import Foundation
import Logging

/// What a finished job reports.
public struct JobReport: Sendable {
    public var tiles: Int
    public var computed: Int
    public var skipped: Int
    /// From submission to the output renamed into place.
    public var seconds: Double
    /// Sum of the workers' compute time for this job's tiles.
    public var computeSeconds: Double
    public var waitedSeconds: Double
}

/// Hooks the server's metrics hang on; every call comes from the engine thread.
public protocol EngineObserver: AnyObject, Sendable {
    func tileComputed(worker: Int, seconds: Double)
    func queueChanged(jobsRunning: Int, jobsWaiting: Int, tilesQueued: Int, workersBusy: Int)
}

/// Runs many segmentations at once on one executor, from one thread that owns all GDAL and MPI
/// work: jobs come in through `submit` (from any thread or task) and share the workers fairly
/// (round-robin slots), so a huge scene does not starve small requests. A failing job is
/// aborted alone; the engine goes on.
public final class SegmentationEngine: @unchecked Sendable {
    private struct Submission {
        let id: UInt64
        let input: String
        let output: String
        let options: SegmentOptions
        let submitted: Double
        let completion: @Sendable (Result<JobReport, Error>) -> Void
    }

    private final class Running {
        let job: any TilingJob
        let submission: Submission
        let started: Double
        var computeSeconds = 0.0
        var firstSent: Double?
        var lastResult: Double?
        init(job: any TilingJob, submission: Submission) { self.job = job; self.submission = submission; started = monotonicSeconds() }
    }

    public let config: ModelConfig
    private let executor: TileExecutor
    private let batch: Int
    private let logger: Logger
    private weak var observer: (any EngineObserver)?
    private let condition = NSCondition()
    private var inbox: [Submission] = []
    private var cancelled: Set<UInt64> = []
    private var stopping = false
    private var nextID: UInt64 = 1
    private var thread: Thread?

    public init(executor: TileExecutor, config: ModelConfig, batch: Int = 1, logger: Logger, observer: (any EngineObserver)? = nil) {
        self.executor = executor
        self.config = config
        self.batch = max(1, batch)
        self.logger = logger
        self.observer = observer
    }

    /// Starts the engine thread.
    public func start() {
        let thread = Thread { [self] in self.run() }
        thread.name = "segmentation engine"
        thread.stackSize = 8 << 20
        self.thread = thread
        thread.start()
    }

    /// Stops after the current step; running jobs are aborted (their outputs removed).
    public func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    /// Segments `input` into `output`; returns when the output is complete and in place.
    /// Cancelling the task aborts the job (nothing is left at `output`).
    public func segment(input: String, output: String, options: SegmentOptions) async throws -> JobReport {
        let id: UInt64 = condition.withLock {
            defer { nextID += 1 }
            return nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<JobReport, Error>) in
                let submission = Submission(id: id, input: input, output: output, options: options, submitted: monotonicSeconds()) {
                    continuation.resume(with: $0)
                }
                condition.lock()
                if stopping {
                    condition.unlock()
                    continuation.resume(throwing: APIError.unavailable("the server is shutting down"))
                    return
                }
                inbox.append(submission)
                condition.broadcast()
                condition.unlock()
            }
        } onCancel: {
            condition.lock()
            cancelled.insert(id)
            condition.broadcast()
            condition.unlock()
        }
    }

    private func run() {
        var scheduler = TileScheduler(workers: executor.workerRanks, depth: 2 * batch)
        var running: [UInt64: Running] = [:]
        var order: [UInt64] = []

        func finish(_ id: UInt64, _ result: Result<JobReport, Error>) {
            guard let entry = running.removeValue(forKey: id) else { return }
            order.removeAll { $0 == id }
            scheduler.retireJob(id)
            if case .failure = result { entry.job.abort(keepProgress: false) }
            entry.submission.completion(result)
        }

        func complete(_ id: UInt64) {
            guard let entry = running[id] else { return }
            do {
                try entry.job.finish()
                let s = entry.submission.submitted
                func ms(_ t: Double?) -> String { t.map { String(format: "%.1f", ($0 - s) * 1e3) } ?? "-" }
                logger.debug("job \(id) (ms since submission): opened \(ms(entry.started)), first tile sent \(ms(entry.firstSent)), last result \(ms(entry.lastResult)), written \(ms(monotonicSeconds())); compute \(String(format: "%.1f", entry.computeSeconds * 1e3))")
                let now = monotonicSeconds()
                finish(id, .success(JobReport(tiles: entry.job.tileCount, computed: entry.job.tilesComputed, skipped: entry.job.tilesSkipped,
                                              seconds: now - entry.submission.submitted, computeSeconds: entry.computeSeconds,
                                              waitedSeconds: entry.started - entry.submission.submitted)))
            } catch {
                finish(id, .failure(error))
            }
        }

        func publish(_ scheduler: TileScheduler, _ running: [UInt64: Running]) {
            guard let observer else { return }
            let busy = executor.workerRanks.filter { scheduler.inFlightCount(worker: $0) > 0 }.count
            let queued = running.values.reduce(0) { $0 + $1.job.tilesRemaining }
            condition.lock()
            let waiting = inbox.count
            condition.unlock()
            observer.queueChanged(jobsRunning: running.count, jobsWaiting: waiting, tilesQueued: queued, workersBusy: busy)
        }
        var earlyCancels: Set<UInt64> = []
        while true {
            // Take new work and cancellations; sleep when there is nothing to do.
            condition.lock()
            while inbox.isEmpty && running.isEmpty && cancelled.isEmpty && !stopping { condition.wait() }
            let arrivals = inbox
            inbox.removeAll()
            let cancellations = cancelled
            cancelled.removeAll()
            let stop = stopping
            condition.unlock()

            if stop {
                for id in order { finish(id, .failure(APIError.unavailable("the server is shutting down"))) }
                for arrival in arrivals { arrival.completion(.failure(APIError.unavailable("the server is shutting down"))) }
                return
            }
            for id in cancellations {
                if running[id] != nil { finish(id, .failure(CancellationError())) } else { earlyCancels.insert(id) }
            }
            for arrival in arrivals {
                if earlyCancels.remove(arrival.id) != nil { arrival.completion(.failure(CancellationError())); continue }
                do {
                    let job = try makeTilingJob(id: arrival.id, input: arrival.input, output: arrival.output, config: config, options: arrival.options)
                    running[arrival.id] = Running(job: job, submission: arrival)
                    order.append(arrival.id)
                    scheduler.addJob(arrival.id)
                } catch {
                    arrival.completion(.failure(error))
                }
            }

            do {
                // Fill free worker slots, job by job in turn.
                while let slot = scheduler.nextSlot(tiles: batch) {
                    guard let entry = running[slot.job] else { scheduler.retireJob(slot.job); continue }
                    let tiles: [TileRequest]
                    do {
                        tiles = try entry.job.nextBatch(size: batch)
                    } catch {
                        finish(slot.job, .failure(error))
                        continue
                    }
                    if tiles.isEmpty { scheduler.retireJob(slot.job); if entry.job.isComplete { complete(slot.job) }; continue }
                    try executor.send(tiles, to: slot.worker)
                    if entry.firstSent == nil { entry.firstSent = monotonicSeconds() }
                    for tile in tiles { scheduler.assigned(.init(worker: slot.worker, job: slot.job, tile: Int(tile.tile))) }
                }
                // Jobs whose every tile was nodata (nothing to send) are complete already.
                for id in order where running[id]?.job.isComplete == true && scheduler.inFlight(job: id).isEmpty { complete(id) }

                publish(scheduler, running)
                guard scheduler.totalInFlight > 0 else { continue }
                defer { publish(scheduler, running) }
                for outcome in try executor.poll(timeout: 0.05) {
                    switch outcome {
                    case .result(let result, let worker):
                        scheduler.completed(.init(worker: worker, job: result.job, tile: Int(result.tile)))
                        observer?.tileComputed(worker: worker, seconds: result.computeSeconds)
                        guard let entry = running[result.job] else { continue }  // its job failed or was cancelled
                        entry.computeSeconds += result.computeSeconds
                        entry.lastResult = monotonicSeconds()
                        do {
                            try entry.job.accept(result)
                            if entry.job.isComplete { complete(result.job) }
                        } catch {
                            finish(result.job, .failure(error))
                        }
                    case .failure(let failure, let worker):
                        scheduler.completed(.init(worker: worker, job: failure.job, tile: Int(failure.tile)))
                        finish(failure.job, .failure(SegmentationFailure(
                            "tile \(failure.tile) failed on \(executor.describe(worker: worker)): \(failure.message)")))
                    }
                }
            } catch {
                // The executor itself failed (MPI): nothing can go on.
                logger.critical("segmentation engine stopped: \(error)")
                for id in order { finish(id, .failure(APIError.unavailable("tile workers unavailable: \(error)"))) }
                condition.lock()
                stopping = true
                condition.unlock()
            }
        }

    }
}
