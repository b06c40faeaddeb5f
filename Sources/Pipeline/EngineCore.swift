import Foundation

/// What the engine needs to know of an opened job to schedule it.
public struct JobShape: Equatable, Sendable {
    /// Tiles [firstTile, tileCount) remain (a resumed job starts past 0).
    public var firstTile: Int
    public var tileCount: Int
    /// Batches never cross a multiple of this (a grid row), so a resumed run groups as the first.
    public var rowLength: Int
    /// Whether workers may be asked to read the scene themselves.
    public var workerSide: Bool
    public init(firstTile: Int, tileCount: Int, rowLength: Int, workerSide: Bool) {
        self.firstTile = firstTile; self.tileCount = tileCount; self.rowLength = max(1, rowLength); self.workerSide = workerSide
    }
}

/// How a job ended, as the engine decided it.
public enum JobEnd: Equatable, Sendable {
    case finished
    case failed(String)
    case cancelled
    /// Its own work (opening, reading, blending, writing) gave no answer for this many seconds.
    case stalled(Double)
    /// It ran past its deadline.
    case timedOut
    case shutdown
}

/// The engine's decisions as a pure state machine — which worker computes which job's next tiles,
/// who prepares them, when a job is finished, failed, cancelled or stalled — with no MPI, GDAL
/// or threads: events in, actions out. `SegmentationEngine` performs the actions; the tests drive
/// it alone.
///
/// Slow per-job work (open, prepare, deliver, finish, abort) is an action the driver runs off its
/// loop, on the job's own thread; its answer comes back as an event. `Payload` is what the
/// driver carries through untouched (prepared batches, results).
public struct EngineCore<Payload> {
    public enum Event {
        /// A new job; past `deadline` (same clock as `now`) it fails as timed out.
        case submitted(job: UInt64, deadline: Double? = nil)
        case cancelled(job: UInt64)
        /// The job's thread opened it.
        case opened(job: UInt64, shape: JobShape)
        /// A worker's answer to `.openScene`.
        case sceneAnswer(job: UInt64, worker: Int, ok: Bool)
        /// The job's thread prepared the tiles of a `.prepare`: `computed` are in `batch`, `skipped`
        /// had no data and were blended as nodata there.
        case prepared(job: UInt64, worker: Int, batch: Payload?, computed: [Int], skipped: [Int])
        /// Preparing failed: the tiles reserved for it are free again, and the job fails.
        case prepareFailed(job: UInt64, worker: Int, tiles: Range<Int>, message: String)
        case result(worker: Int, job: UInt64, tile: Int, payload: Payload)
        case tileFailed(worker: Int, job: UInt64, tile: Int, message: String)
        /// The job's thread took in a delivered result.
        case accepted(job: UInt64)
        case finished(job: UInt64)
        /// The job's thread failed (opening, reading, blending, writing).
        case jobFailed(job: UInt64, message: String)
        /// The executor itself failed: nothing can go on.
        case executorFailed(message: String)
        case tick
        case stop
    }

    public enum Action {
        case open(job: UInt64)
        case openScene(job: UInt64, worker: Int)
        case closeScene(job: UInt64, worker: Int)
        /// Read and prepare tiles on the job's thread for `worker`.
        case prepare(job: UInt64, tiles: Range<Int>, worker: Int)
        /// Send tiles without pixels: the worker reads them.
        case sendWindows(job: UInt64, tiles: Range<Int>, worker: Int)
        case sendPrepared(job: UInt64, worker: Int, batch: Payload)
        case deliver(job: UInt64, payload: Payload)
        case finish(job: UInt64)
        /// The job is over: abort it unless it finished, answer its submitter.
        case complete(job: UInt64, end: JobEnd)
    }

    enum Phase: Equatable { case opening, running, finishing }
    enum SceneState: Equatable { case asked, open, refused }

    struct Job {
        var phase = Phase.opening
        var shape: JobShape?
        var next = 0
        var accounted = 0
        /// Tasks on the job's thread not answered yet, and since when it has owed an answer.
        var outstanding = 0
        var owingSince = 0.0
        var scenes: [Int: SceneState] = [:]
        var deadline: Double?
    }

    public let batch: Int
    /// Seconds a job's own thread may owe an answer before the job fails (nil: no limit).
    public let stallSeconds: Double?
    private var scheduler: TileScheduler
    private var jobs: [UInt64: Job] = [:]
    public private(set) var stopped = false

    public init(workers: [Int], batch: Int = 1, depth: Int? = nil, stallSeconds: Double? = nil) {
        self.batch = max(1, batch)
        self.stallSeconds = stallSeconds
        scheduler = TileScheduler(workers: workers, depth: depth ?? 2 * max(1, batch))
    }

    public var jobCount: Int { jobs.count }
    /// Jobs still being opened (waiting, as far as a client can tell).
    public var jobsOpening: Int { jobs.values.filter { $0.phase == .opening }.count }
    public var tilesInFlight: Int { scheduler.totalInFlight }
    public var busyWorkers: Int { scheduler.workers.filter { scheduler.inFlightCount(worker: $0) > 0 }.count }
    /// Tiles of running jobs not handed out yet.
    public var tilesWaiting: Int { jobs.values.reduce(0) { $0 + max(0, ($1.shape?.tileCount ?? 0) - $1.next) } }
    public func inFlight(worker: Int) -> Int { scheduler.inFlightCount(worker: worker) }

    public mutating func handle(_ event: Event, now: Double) -> [Action] {
        var actions: [Action] = []
        switch event {
        case .submitted(let id, let deadline):
            guard !stopped else { return [.complete(job: id, end: .shutdown)] }
            jobs[id] = Job(deadline: deadline)
            post(id, now)
            actions.append(.open(job: id))
        case .cancelled(let id):
            fail(id, .cancelled, &actions)
        case .opened(let id, let shape):
            guard var job = jobs[id], job.phase == .opening else { break }
            answered(&job, now)
            job.phase = .running
            job.shape = shape
            job.next = shape.firstTile
            if shape.workerSide {
                for worker in scheduler.workers {
                    job.scenes[worker] = .asked
                    actions.append(.openScene(job: id, worker: worker))
                }
            }
            jobs[id] = job
            scheduler.addJob(id)
            finishIfDone(id, now, &actions)
        case .sceneAnswer(let id, let worker, let ok):
            if jobs[id] != nil {
                jobs[id]!.scenes[worker] = ok ? .open : .refused
            } else if ok {
                actions.append(.closeScene(job: id, worker: worker))  // the job ended meanwhile
            }
        case .prepared(let id, let worker, let batch, let computed, let skipped):
            for tile in skipped { scheduler.completed(.init(worker: worker, job: id, tile: tile)) }
            guard var job = jobs[id] else {
                for tile in computed { scheduler.completed(.init(worker: worker, job: id, tile: tile)) }
                break
            }
            answered(&job, now)
            job.accounted += skipped.count
            jobs[id] = job
            if let batch, !computed.isEmpty { actions.append(.sendPrepared(job: id, worker: worker, batch: batch)) }
            finishIfDone(id, now, &actions)
        case .prepareFailed(let id, let worker, let tiles, let message):
            for tile in tiles { scheduler.completed(.init(worker: worker, job: id, tile: tile)) }
            fail(id, .failed(message), &actions)
        case .result(let worker, let id, let tile, let payload):
            guard scheduler.completed(.init(worker: worker, job: id, tile: tile)), var job = jobs[id] else { break }
            job.accounted += 1
            post(&job, now)
            jobs[id] = job
            actions.append(.deliver(job: id, payload: payload))
            finishIfDone(id, now, &actions)
        case .tileFailed(let worker, let id, let tile, let message):
            scheduler.completed(.init(worker: worker, job: id, tile: tile))
            fail(id, .failed(message), &actions)
        case .accepted(let id):
            guard var job = jobs[id] else { break }
            answered(&job, now)
            jobs[id] = job
        case .finished(let id):
            guard let job = jobs[id], job.phase == .finishing else { break }
            close(id, job, &actions)
            jobs[id] = nil
            actions.append(.complete(job: id, end: .finished))
        case .jobFailed(let id, let message):
            fail(id, .failed(message), &actions)
        case .executorFailed(let message):
            stopped = true
            for id in jobs.keys.sorted() { fail(id, .failed(message), &actions, closeScenes: false) }
        case .tick:
            for (id, job) in jobs.sorted(by: { $0.key < $1.key }) where job.deadline.map({ now > $0 }) == true {
                fail(id, .timedOut, &actions)
            }
            if let limit = stallSeconds {
                for (id, job) in jobs.sorted(by: { $0.key < $1.key }) where job.outstanding > 0 && now - job.owingSince > limit {
                    fail(id, .stalled(limit), &actions)
                }
            }
        case .stop:
            stopped = true
            for id in jobs.keys.sorted() { fail(id, .shutdown, &actions) }
        }
        if !stopped { fill(now, &actions) }
        return actions
    }

    /// Hands free worker slots to jobs in turn, a batch at a time.
    private mutating func fill(_ now: Double, _ actions: inout [Action]) {
        while let slot = scheduler.nextSlot(tiles: batch) {
            guard var job = jobs[slot.job], job.phase == .running, let shape = job.shape, job.next < shape.tileCount else {
                scheduler.retireJob(slot.job)
                continue
            }
            let rowEnd = (job.next / shape.rowLength + 1) * shape.rowLength
            let tiles = job.next..<min(job.next + batch, rowEnd, shape.tileCount)
            job.next = tiles.upperBound
            for tile in tiles { scheduler.assigned(.init(worker: slot.worker, job: slot.job, tile: tile)) }
            if job.scenes[slot.worker] == .open {
                actions.append(.sendWindows(job: slot.job, tiles: tiles, worker: slot.worker))
            } else {
                post(&job, now)
                actions.append(.prepare(job: slot.job, tiles: tiles, worker: slot.worker))
            }
            jobs[slot.job] = job
            if job.next >= shape.tileCount { scheduler.retireJob(slot.job) }
        }
    }

    private mutating func finishIfDone(_ id: UInt64, _ now: Double, _ actions: inout [Action]) {
        guard var job = jobs[id], job.phase == .running, let shape = job.shape,
              job.accounted >= shape.tileCount - shape.firstTile else { return }
        job.phase = .finishing
        post(&job, now)
        jobs[id] = job
        scheduler.retireJob(id)
        actions.append(.finish(job: id))
    }

    private mutating func fail(_ id: UInt64, _ end: JobEnd, _ actions: inout [Action], closeScenes: Bool = true) {
        guard let job = jobs.removeValue(forKey: id) else { return }
        scheduler.retireJob(id)
        if closeScenes { close(id, job, &actions) }
        actions.append(.complete(job: id, end: end))
    }

    private func close(_ id: UInt64, _ job: Job, _ actions: inout [Action]) {
        for (worker, state) in job.scenes.sorted(by: { $0.key < $1.key }) where state != .refused {
            actions.append(.closeScene(job: id, worker: worker))
        }
    }

    private mutating func post(_ id: UInt64, _ now: Double) {
        guard var job = jobs[id] else { return }
        post(&job, now)
        jobs[id] = job
    }

    /// A task goes to the job's thread.
    private func post(_ job: inout Job, _ now: Double) {
        if job.outstanding == 0 { job.owingSince = now }
        job.outstanding += 1
    }

    /// The job's thread answered a task: it is alive.
    private func answered(_ job: inout Job, _ now: Double) {
        job.outstanding = max(0, job.outstanding - 1)
        job.owingSince = now
    }
}

extension EngineCore.Action: Equatable where Payload: Equatable {}
