import Foundation
import Logging
import Model
import Support

/// What a finished job reports.
public struct JobReport: Sendable {
    public var tiles: Int
    public var computed: Int
    public var skipped: Int
    /// Tiles done by the interrupted run this one continued.
    public var resumed: Int
    /// From submission to the output in place.
    public var seconds: Double
    /// Sum of the workers' compute time for this job's tiles.
    public var computeSeconds: Double
    public var waitedSeconds: Double
    /// Tiles sent without pixels: read and prepared by the worker.
    public var readByWorkers: Int
    /// Tiles computed by each worker.
    public var perWorker: [Int: Int]
}

/// Progress of one job, for progress lines.
public struct JobProgress: Sendable {
    public var job: UInt64
    public var tilesDone: Int
    public var tilesTotal: Int
    public var tilesComputed: Int
}

public struct SegmentationFailure: Error, CustomStringConvertible {
    public let description: String
    public let kind: FailureKind
    public init(_ description: String, kind: FailureKind = .internal) { self.description = description; self.kind = kind }
}

/// A job whose own work (opening, reading, blending, writing) gave no answer for too long.
public struct JobStalled: Error, CustomStringConvertible {
    public let seconds: Double
    public init(seconds: Double) { self.seconds = seconds }
    public var description: String { "the job made no progress for \(Int(seconds)) s (its raster is too slow to read or write) and was stopped" }
}

/// A job that ran past its time limit.
public struct JobTimedOut: Error, CustomStringConvertible {
    public let seconds: Double
    public var description: String { "the job took longer than its limit of \(Int(seconds)) s and was stopped" }
}

/// The engine is stopping or has lost its workers.
public struct EngineUnavailable: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A job that failed while it was being opened (bad input, output cannot be created), as
/// opposed to while it ran; `underlying` is what went wrong.
public struct JobOpenFailure: Error, CustomStringConvertible {
    public let underlying: Error
    public init(underlying: Error) { self.underlying = underlying }
    public var description: String { "\(underlying)" }
}

/// Hooks the server's metrics hang on; every call comes from the engine thread.
public protocol EngineObserver: AnyObject, Sendable {
    func tileComputed(worker: Int, seconds: Double)
    func queueChanged(jobsRunning: Int, jobsWaiting: Int, tilesQueued: Int, workersBusy: Int)
}

/// Performs `EngineCore`'s decisions: one thread owns the executor (all MPI) and only schedules;
/// every job has a serial queue of its own for its slow work — opening and sampling its scene,
/// preparing tiles the coordinator ships, blending, writing, finishing — so that a slow or huge
/// job delays nobody else's tiles. `segment` (one or many scenes) and `serve` both run on it.
public final class SegmentationEngine: @unchecked Sendable {
    public typealias MakeJob = @Sendable (UInt64) throws -> any TilingJob
    public typealias Completion = @Sendable (Result<JobReport, Error>) -> Void

    /// What the core carries untouched.
    enum Payload { case batch([TileRequest]), result(TileResult) }
    typealias Core = EngineCore<Payload>

    /// One job. `job` is touched only on `queue`; every other field only on the engine thread.
    private final class Context: @unchecked Sendable {
        let id: UInt64
        let queue: DispatchQueue
        let make: MakeJob
        let keepProgress: Bool
        let completion: Completion
        let progress: (@Sendable (JobProgress) -> Void)?
        let timeout: Double?
        var job: (any TilingJob)?
        var shape: JobShape?
        var windows: TileWindows?
        var opening: SceneOpening?
        var error: Error?
        var opened = false
        let submitted = monotonicSeconds()
        var started = 0.0
        var computed = 0, skipped = 0, readByWorkers = 0, computeSeconds = 0.0
        var perWorker: [Int: Int] = [:]
        var answered = false

        init(id: UInt64, make: @escaping MakeJob, keepProgress: Bool, timeout: Double?, completion: @escaping Completion,
             progress: (@Sendable (JobProgress) -> Void)?) {
            self.id = id
            self.timeout = timeout
            self.make = make
            self.keepProgress = keepProgress
            self.completion = completion
            self.progress = progress
            queue = DispatchQueue(label: "segmentation job \(id)")
        }
    }

    private enum Inbox {
        case submit(Context)
        case cancel(UInt64)
        case opened(UInt64, JobShape, (opening: SceneOpening, windows: TileWindows)?)
        case event(Core.Event)
        case failed(UInt64, Error)
        case aborted(UInt64)
    }

    public let config: ModelConfig
    private let executor: TileExecutor
    private let batch: Int
    private let stallSeconds: Double?
    private let logger: Logger
    private weak var observer: (any EngineObserver)?
    private let condition = NSCondition()
    private var inbox: [Inbox] = []
    private var stopping = false
    private var nextID: UInt64 = 1
    private let exited = DispatchSemaphore(value: 0)
    private var started = false

    /// `stallSeconds`: a job whose own thread owes an answer for that long fails (nil: never).
    public init(executor: TileExecutor, config: ModelConfig, batch: Int = 1, stallSeconds: Double? = nil, logger: Logger,
                observer: (any EngineObserver)? = nil) {
        self.executor = executor
        self.config = config
        self.batch = max(1, batch)
        self.stallSeconds = stallSeconds
        self.logger = logger
        self.observer = observer
    }

    /// Starts the engine thread.
    public func start() {
        started = true
        let thread = Thread { [self] in
            self.run()
            self.exited.signal()
        }
        thread.name = "segmentation engine"
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Stops: running jobs end as failed (their outputs removed or, with `keepProgress`, their
    /// journals kept). Returns once the engine thread has made its last executor call, so the
    /// caller may use MPI again.
    /// Safe to call more than once and from several threads (a signal handler and the main thread):
    /// each call returns only after the engine thread has exited.
    public func stop() {
        post(nil)
        guard started else { return }
        exited.wait()
        exited.signal()  // for the next caller
    }

    /// Queues an entry for the engine thread; `wake: false` for news that can wait for the
    /// loop's next turn (at most a few milliseconds), saving a thread wake-up per tile.
    private func post(_ entry: Inbox?, wake: Bool = true) {
        condition.lock()
        if let entry { inbox.append(entry) } else { stopping = true }
        if wake { condition.broadcast() }
        condition.unlock()
    }

    private func newID() -> UInt64 {
        condition.withLock {
            defer { nextID += 1 }
            return nextID
        }
    }

    /// Queues a job; `completion` is called once, from the engine thread, when it is done or has
    /// failed. `keepProgress`: a failed job keeps its journal for `--resume`.
    @discardableResult
    public func submit(keepProgress: Bool = false, timeout: Double? = nil, progress: (@Sendable (JobProgress) -> Void)? = nil,
                       make: @escaping MakeJob, completion: @escaping Completion) -> UInt64 {
        let id = newID()
        post(.submit(Context(id: id, make: make, keepProgress: keepProgress, timeout: timeout, completion: completion, progress: progress)))
        return id
    }

    public func cancel(_ id: UInt64) { post(.cancel(id)) }

    /// Segments `input` into `output`; returns when the output is complete and in place.
    /// Cancelling the task aborts the job (nothing is left at `output`).
    /// Past `timeout` seconds the job fails with `JobTimedOut`.
    public func segment(input: String, output: String, options: SegmentOptions, timeout: Double? = nil) async throws -> JobReport {
        let config = self.config
        let box = UncheckedSendableID()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<JobReport, Error>) in
                let id = submit(timeout: timeout, make: { id in try makeTilingJob(id: id, input: input, output: output, config: config, options: options) }) {
                    continuation.resume(with: $0)
                }
                if box.set(id) { cancel(id) }
            }
        } onCancel: {
            if let id = box.cancelRequested() { self.cancel(id) }
        }
    }

    // MARK: - The engine thread

    private var contexts: [UInt64: Context] = [:]
    private var core: Core!

    private func run() {
        core = Core(workers: executor.workerRanks, batch: batch, stallSeconds: stallSeconds)
        executor.setWakeHandler { [condition] in
            condition.lock()
            condition.broadcast()
            condition.unlock()
        }
        var backoff = Backoff()
        var lastTick = monotonicSeconds()
        var stopHandled = false
        var stopDeadline = Double.infinity
        while true {
            condition.lock()
            let entries = inbox
            inbox.removeAll()
            let stop = stopping
            condition.unlock()

            var busy = !entries.isEmpty
            for entry in entries { handle(entry) }
            if !core.stopped || core.tilesInFlight > 0 {
                do {
                    let outcomes = try executor.poll()
                    busy = busy || !outcomes.isEmpty
                    for outcome in outcomes { handle(outcome) }
                } catch {
                    logger.critical("segmentation engine lost its workers: \(error)")
                    apply(core.handle(.executorFailed(message: "tile workers unavailable: \(error)"), now: monotonicSeconds()))
                }
            }
            let now = monotonicSeconds()
            if now - lastTick >= 0.25 {
                lastTick = now
                apply(core.handle(.tick, now: now))
            }
            if stop && !stopHandled {
                stopHandled = true
                stopDeadline = now + 10
                apply(core.handle(.stop, now: now))
            }
            if stopHandled && (contexts.isEmpty || now > stopDeadline) {
                if !contexts.isEmpty { logger.warning("\(contexts.count) job(s) still busy at shutdown; not waiting for them") }
                return
            }
            if busy {
                publish()
                backoff.reset()
                continue
            }
            // Nothing happened: wait for the inbox, or poll MPI again soon.
            let micros: UInt32
            if executor.needsPolling {
                // Every worker holds a second batch while it computes one, so a result read up to
                // a millisecond late idles nobody; polling faster only burns the coordinator's core
                // (each early wake-up is a futex round trip: ≈ 24 of them between two results at
                // 130 tiles/s cost more CPU than blending the tile). Idle, back off as usual.
                let cap = Backoff.defaultMaxSleepMicroseconds
                micros = core.tilesInFlight > 0 ? min(1_000, cap) : max(20, backoff.advance(cap: min(2_000, cap)))
            } else {
                micros = 250_000
            }
            condition.lock()
            if inbox.isEmpty && !stopping { _ = condition.wait(until: Date(timeIntervalSinceNow: Double(micros) * 1e-6)) }
            condition.unlock()
        }
    }

    private func handle(_ entry: Inbox) {
        let now = monotonicSeconds()
        switch entry {
        case .submit(let context):
            contexts[context.id] = context
            apply(core.handle(.submitted(job: context.id, deadline: context.timeout.map { context.submitted + $0 }), now: now))
        case .cancel(let id):
            apply(core.handle(.cancelled(job: id), now: now))
        case .opened(let id, let shape, let scene):
            guard let context = contexts[id] else { return }
            context.opened = true
            context.shape = shape
            context.opening = scene?.opening
            context.windows = scene?.windows
            apply(core.handle(.opened(job: id, shape: shape), now: now))
        case .event(let event):
            if case .prepared(let id, _, _, _, let skipped) = event, let context = contexts[id] {
                context.skipped += skipped.count
                report(context)
            }
            apply(core.handle(event, now: now))
        case .failed(let id, let error):
            guard let context = contexts[id] else { return }
            if context.error == nil { context.error = context.opened ? error : JobOpenFailure(underlying: error) }
            apply(core.handle(.jobFailed(job: id, message: "\(error)"), now: now))
        case .aborted(let id):
            guard let context = contexts.removeValue(forKey: id) else { return }
            answer(context, .failure(context.error ?? EngineUnavailable("job \(id) was aborted")))
        }
    }

    private func handle(_ outcome: TileOutcome) {
        let now = monotonicSeconds()
        switch outcome {
        case .result(let result, let worker):
            if let context = contexts[result.job] {
                if result.skipped { context.skipped += 1 } else {
                    context.computed += 1
                    context.computeSeconds += result.computeSeconds
                    context.perWorker[worker, default: 0] += 1
                }
                report(context)
            }
            if !result.skipped { observer?.tileComputed(worker: worker, seconds: result.computeSeconds) }
            apply(core.handle(.result(worker: worker, job: result.job, tile: Int(result.tile), payload: .result(result)), now: now))
        case .failure(let failure, let worker):
            let message = "tile \(failure.tile) failed on \(executor.describe(worker: worker)): \(failure.message)"
            if let context = contexts[failure.job], context.error == nil { context.error = SegmentationFailure(message) }
            apply(core.handle(.tileFailed(worker: worker, job: failure.job, tile: Int(failure.tile), message: message), now: now))
        case .sceneOpened(let job, let worker, let error):
            if let context = contexts[job] {
                let name = context.opening?.path ?? "job \(job)"
                if let error {
                    logger.info("job \(job): \(executor.describe(worker: worker)) cannot read \(name) itself (\(error)); the coordinator ships its pixels")
                } else {
                    logger.debug("job \(job): \(executor.describe(worker: worker)) reads its own tiles of \(name)")
                }
            }
            apply(core.handle(.sceneAnswer(job: job, worker: worker, ok: error == nil), now: now))
        }
    }

    private func report(_ context: Context) {
        guard let progress = context.progress, let shape = context.shape else { return }
        progress(JobProgress(job: context.id, tilesDone: shape.firstTile + context.computed + context.skipped,
                             tilesTotal: shape.tileCount, tilesComputed: context.computed))
    }

    /// Runs `body` on the job's queue with its job; errors fail the job.
    private func onJob(_ context: Context, wake: Bool = true, _ body: @escaping @Sendable (any TilingJob) throws -> Inbox?) {
        context.queue.async { [self] in
            guard let job = context.job else { return }
            do {
                if let entry = try body(job) { post(entry, wake: wake) }
            } catch {
                post(.failed(context.id, error))
            }
        }
    }

    private func apply(_ actions: [Core.Action]) {
        for action in actions { perform(action) }
    }

    private func perform(_ action: Core.Action) {
        switch action {
        case .open(let id):
            guard let context = contexts[id] else { return }
            context.started = monotonicSeconds()
            let inProcess = executor.isInProcess
            context.queue.async { [self] in
                do {
                    let job = try context.make(id)
                    context.job = job
                    var shape = job.shape
                    shape.workerSide = shape.workerSide && job.windows != nil && (job.dataPath == .worker || !inProcess)
                    let scene = shape.workerSide ? (opening: try job.sceneOpening(), windows: job.windows!) : nil
                    post(.opened(id, shape, scene))
                } catch {
                    post(.failed(id, error))
                }
            }
        case .openScene(let id, let worker):
            guard let opening = contexts[id]?.opening else { return }
            send { try executor.openScene(opening, on: worker) }
        case .closeScene(let id, let worker):
            send { try executor.closeScene(job: id, on: worker) }
        case .prepare(let id, let tiles, let worker):
            guard let context = contexts[id] else { return }
            context.queue.async { [self] in
                guard let job = context.job else { return }
                do {
                    let (requests, skipped) = try job.prepare(tiles: tiles)
                    post(.event(.prepared(job: id, worker: worker, batch: requests.isEmpty ? nil : .batch(requests),
                                          computed: requests.map { Int($0.tile) }, skipped: skipped)))
                } catch {
                    post(.failed(id, error))
                    post(.event(.prepareFailed(job: id, worker: worker, tiles: tiles, message: "\(error)")))
                }
            }
        case .sendWindows(let id, let tiles, let worker):
            guard let context = contexts[id], let windows = context.windows else { return }
            context.readByWorkers += tiles.count
            send { try executor.send(tiles.map { windows.request($0) }, to: worker) }
        case .sendPrepared(_, let worker, let payload):
            guard case .batch(let requests) = payload else { return }
            send { try executor.send(requests, to: worker) }
        case .deliver(let id, let payload):
            guard let context = contexts[id], case .result(let result) = payload else { return }
            // Nothing waits for a blended tile (only the stall clock does): no wake-up for it.
            onJob(context, wake: false) { job in
                try job.accept(result)
                return .event(.accepted(job: id))
            }
        case .finish(let id):
            guard let context = contexts[id] else { return }
            onJob(context) { job in
                try job.finish()
                return .event(.finished(job: id))
            }
        case .complete(let id, let end):
            guard let context = contexts[id] else { return }
            switch end {
            case .finished:
                contexts[id] = nil
                let now = monotonicSeconds()
                answer(context, .success(JobReport(
                    tiles: context.shape?.tileCount ?? 0, computed: context.computed, skipped: context.skipped,
                    resumed: context.shape?.firstTile ?? 0, seconds: now - context.submitted, computeSeconds: context.computeSeconds,
                    waitedSeconds: context.started - context.submitted, readByWorkers: context.readByWorkers, perWorker: context.perWorker)))
            case .failed(let message):
                if context.error == nil { context.error = SegmentationFailure(message) }
            case .cancelled:
                context.error = CancellationError()
            case .stalled(let seconds):
                context.error = JobStalled(seconds: seconds)
            case .timedOut:
                context.error = JobTimedOut(seconds: context.timeout ?? 0)
            case .shutdown:
                if context.error == nil { context.error = EngineUnavailable("the server is shutting down") }
            }
            guard end != .finished else { return }
            // Abort on the job's queue, after whatever it is doing; answer once aborted — or now,
            // when that queue is what is stuck.
            let keep = context.keepProgress
            context.queue.async { [self] in
                context.job?.abort(keepProgress: keep)
                post(.aborted(id))
            }
            switch end {
            case .timedOut, .stalled: answer(context, .failure(context.error!))
            default: break
            }
        }
    }

    private func answer(_ context: Context, _ result: Result<JobReport, Error>) {
        guard !context.answered else { return }
        context.answered = true
        context.completion(result)
    }

    /// An executor call; a failure there is the end of every job.
    private func send(_ body: () throws -> Void) {
        do {
            try body()
        } catch {
            logger.critical("segmentation engine lost its workers: \(error)")
            apply(core.handle(.executorFailed(message: "tile workers unavailable: \(error)"), now: monotonicSeconds()))
        }
    }

    private func publish() {
        guard let observer else { return }
        let opening = core.jobsOpening
        observer.queueChanged(jobsRunning: core.jobCount - opening, jobsWaiting: opening, tilesQueued: core.tilesWaiting,
                              workersBusy: core.busyWorkers)
    }
}

/// The job id of an async `segment` call, shared between its submission and its cancellation
/// handler (which can run first, on another thread): every access holds `lock`.
private final class UncheckedSendableID: @unchecked Sendable {
    private let lock = NSLock()
    private var id: UInt64?
    private var cancelled = false

    /// Records the id; true when cancellation was asked for already.
    func set(_ id: UInt64) -> Bool { lock.withLock { self.id = id; return cancelled } }

    /// Marks the call cancelled; the id when it is known.
    func cancelRequested() -> UInt64? { lock.withLock { cancelled = true; return id } }
}
