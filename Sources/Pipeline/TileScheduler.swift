/// Which worker computes which job's next tile: a pure state machine (no I/O, no MPI), tested
/// on its own.
///
/// Every worker keeps up to `depth` tiles in flight, so the next tile is already there when one
/// finishes. Free slots go to jobs in turn (round-robin), so one huge scene cannot starve small
/// requests that arrive after it.
public struct TileScheduler: Sendable {
    public struct Assignment: Hashable, Sendable {
        public var worker: Int
        public var job: UInt64
        public var tile: Int
        public init(worker: Int, job: UInt64, tile: Int) { self.worker = worker; self.job = job; self.tile = tile }
    }

    public let depth: Int
    public private(set) var workers: [Int] = []
    private var inFlight: [Int: Set<Assignment>] = [:]
    /// Jobs that may still have tiles to hand out, in arrival order.
    private var activeJobs: [UInt64] = []
    private var cursor = 0

    public init(workers: [Int], depth: Int = 2) {
        precondition(depth >= 1, "depth must be at least 1")
        self.depth = depth
        for worker in workers { addWorker(worker) }
    }

    public mutating func addWorker(_ worker: Int) {
        guard inFlight[worker] == nil else { return }
        workers.append(worker)
        inFlight[worker] = []
    }

    /// Removes a worker; returns what it had in flight (those tiles are lost with it).
    public mutating func removeWorker(_ worker: Int) -> [Assignment] {
        workers.removeAll { $0 == worker }
        return Array(inFlight.removeValue(forKey: worker) ?? []).sorted { ($0.job, $0.tile) < ($1.job, $1.tile) }
    }

    /// A job with tiles to hand out.
    public mutating func addJob(_ job: UInt64) {
        if !activeJobs.contains(job) { activeJobs.append(job) }
    }

    /// The job has handed out its last tile (or was cancelled): offer it no more slots.
    public mutating func retireJob(_ job: UInt64) {
        guard let index = activeJobs.firstIndex(of: job) else { return }
        activeJobs.remove(at: index)
        if index < cursor { cursor -= 1 }
        if cursor >= activeJobs.count { cursor = 0 }
    }

    /// The next free slot for `tiles` tiles: the least busy worker that stays within `depth`, for
    /// the job whose turn it is. Nil when every worker is full or no job is active.
    public mutating func nextSlot(tiles: Int = 1) -> (worker: Int, job: UInt64)? {
        guard !activeJobs.isEmpty else { return nil }
        guard let worker = workers.filter({ inFlight[$0]!.count + tiles <= depth }).min(by: { inFlight[$0]!.count < inFlight[$1]!.count })
        else { return nil }
        if cursor >= activeJobs.count { cursor = 0 }
        let job = activeJobs[cursor]
        cursor = (cursor + 1) % activeJobs.count
        return (worker, job)
    }

    public mutating func assigned(_ assignment: Assignment) {
        inFlight[assignment.worker, default: []].insert(assignment)
    }

    /// Records a finished tile; false when it was not in flight there (a stray or duplicate).
    @discardableResult
    public mutating func completed(_ assignment: Assignment) -> Bool {
        inFlight[assignment.worker]?.remove(assignment) != nil
    }

    public func inFlightCount(worker: Int) -> Int { inFlight[worker]?.count ?? 0 }
    public var totalInFlight: Int { inFlight.values.reduce(0) { $0 + $1.count } }
    /// Tiles of `job` in flight anywhere.
    public func inFlight(job: UInt64) -> [Assignment] { inFlight.values.flatMap { $0.filter { $0.job == job } } }
    public var hasActiveJobs: Bool { !activeJobs.isEmpty }
}
