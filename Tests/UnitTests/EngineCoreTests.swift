import Pipeline
import Testing

/// The engine's decisions, driven without MPI, GDAL or threads.
@Suite struct EngineCoreTests {
    typealias Core = EngineCore<String>

    static func shape(_ tiles: Int, row: Int = 100, workerSide: Bool = false, first: Int = 0) -> JobShape {
        JobShape(firstTile: first, tileCount: tiles, rowLength: row, workerSide: workerSide)
    }

    /// Prepares every `.prepare` at once (nothing skipped) and returns the resulting sends.
    static func prepareAll(_ core: inout Core, _ actions: [Core.Action], now: Double = 0) -> [Core.Action] {
        var out: [Core.Action] = []
        for action in actions {
            guard case .prepare(let job, let tiles, let worker) = action else { out.append(action); continue }
            out += core.handle(.prepared(job: job, worker: worker, batch: "\(job):\(tiles.lowerBound)-\(tiles.upperBound)", computed: Array(tiles), skipped: []), now: now)
        }
        return out
    }

    static func sends(_ actions: [Core.Action]) -> [(job: UInt64, tiles: [Int], worker: Int)] {
        actions.compactMap {
            switch $0 {
            case .sendPrepared(let job, let worker, let batch):
                let range = batch.split(separator: ":")[1].split(separator: "-").compactMap { Int($0) }
                return (job, Array(range[0]..<range[1]), worker)
            case .sendWindows(let job, let tiles, let worker): return (job, Array(tiles), worker)
            default: return nil
            }
        }
    }

    @Test func aJobRunsFromOpenToFinishWithTwoTilesInFlightPerWorker() {
        var core = Core(workers: [1, 2], batch: 1)
        #expect(core.handle(.submitted(job: 7), now: 0) == [.open(job: 7)])
        let first = core.handle(.opened(job: 7, shape: Self.shape(5)), now: 0)
        #expect(first == [.prepare(job: 7, tiles: 0..<1, worker: 1), .prepare(job: 7, tiles: 1..<2, worker: 2),
                          .prepare(job: 7, tiles: 2..<3, worker: 1), .prepare(job: 7, tiles: 3..<4, worker: 2)])
        let sent = Self.sends(Self.prepareAll(&core, first))
        #expect(sent.map(\.tiles) == [[0], [1], [2], [3]])
        // A result frees a slot: tile 4 goes to that worker, the result is delivered.
        let afterFirst = core.handle(.result(worker: 1, job: 7, tile: 0, payload: "r0"), now: 1)
        #expect(afterFirst == [.deliver(job: 7, payload: "r0"), .prepare(job: 7, tiles: 4..<5, worker: 1)])
        _ = Self.prepareAll(&core, afterFirst)
        for (worker, tile) in [(2, 1), (1, 2), (2, 3)] {
            #expect(core.handle(.result(worker: worker, job: 7, tile: tile, payload: "r\(tile)"), now: 1) == [.deliver(job: 7, payload: "r\(tile)")])
        }
        #expect(core.handle(.result(worker: 1, job: 7, tile: 4, payload: "r4"), now: 1) == [.deliver(job: 7, payload: "r4"), .finish(job: 7)])
        #expect(core.handle(.finished(job: 7), now: 2) == [.complete(job: 7, end: .finished)])
        #expect(core.jobCount == 0 && core.tilesInFlight == 0)
    }

    @Test func batchesAreConsecutiveTilesThatNeverCrossAGridRow() {
        var core = Core(workers: [1], batch: 2, depth: 100)
        _ = core.handle(.submitted(job: 1), now: 0)
        let actions = core.handle(.opened(job: 1, shape: Self.shape(7, row: 3)), now: 0)
        #expect(actions == [.prepare(job: 1, tiles: 0..<2, worker: 1), .prepare(job: 1, tiles: 2..<3, worker: 1),
                            .prepare(job: 1, tiles: 3..<5, worker: 1), .prepare(job: 1, tiles: 5..<6, worker: 1),
                            .prepare(job: 1, tiles: 6..<7, worker: 1)])
    }

    @Test func aResumedJobStartsAtItsFirstTileAndOneWithNothingLeftFinishesAtOnce() {
        var core = Core(workers: [1], batch: 2, depth: 100)
        _ = core.handle(.submitted(job: 1), now: 0)
        #expect(core.handle(.opened(job: 1, shape: Self.shape(6, row: 3, first: 3)), now: 0)
            == [.prepare(job: 1, tiles: 3..<5, worker: 1), .prepare(job: 1, tiles: 5..<6, worker: 1)])
        _ = core.handle(.submitted(job: 2), now: 0)
        #expect(core.handle(.opened(job: 2, shape: Self.shape(6, row: 3, first: 6)), now: 0) == [.finish(job: 2)])
    }

    @Test func workersThatOpenTheSceneGetWindowsTheOthersPreparedPixels() {
        var core = Core(workers: [1, 2], batch: 1)
        _ = core.handle(.submitted(job: 3), now: 0)
        let opened = core.handle(.opened(job: 3, shape: Self.shape(20, workerSide: true)), now: 0)
        // Until a worker answers, the coordinator prepares its tiles (same bits either way).
        #expect(Array(opened.prefix(2)) == [.openScene(job: 3, worker: 1), .openScene(job: 3, worker: 2)])
        #expect(opened.dropFirst(2).allSatisfy { if case .prepare = $0 { return true } else { return false } })
        _ = Self.prepareAll(&core, opened)
        #expect(core.handle(.sceneAnswer(job: 3, worker: 1, ok: true), now: 0).isEmpty)
        #expect(core.handle(.sceneAnswer(job: 3, worker: 2, ok: false), now: 0).isEmpty)
        #expect(core.handle(.result(worker: 1, job: 3, tile: 0, payload: "a"), now: 0) == [.deliver(job: 3, payload: "a"), .sendWindows(job: 3, tiles: 4..<5, worker: 1)])
        #expect(core.handle(.result(worker: 2, job: 3, tile: 1, payload: "b"), now: 0) == [.deliver(job: 3, payload: "b"), .prepare(job: 3, tiles: 5..<6, worker: 2)])
        // A failure closes the scene where it is open, not where it was refused.
        #expect(core.handle(.cancelled(job: 3), now: 0) == [.closeScene(job: 3, worker: 1), .complete(job: 3, end: .cancelled)])
    }

    @Test func freeSlotsGoToJobsInTurn() {
        var core = Core(workers: [1], batch: 1, depth: 4)
        _ = core.handle(.submitted(job: 1), now: 0)
        _ = core.handle(.submitted(job: 2), now: 0)
        var actions = core.handle(.opened(job: 1, shape: Self.shape(100)), now: 0)
        #expect(actions.count == 4)  // job 1 alone takes every slot
        actions = Self.prepareAll(&core, actions)
        _ = core.handle(.opened(job: 2, shape: Self.shape(100)), now: 0)
        var order: [UInt64] = []
        for tile in 0..<4 {
            for action in core.handle(.result(worker: 1, job: 1, tile: tile, payload: "r"), now: 0) {
                if case .prepare(let job, _, _) = action { order.append(job) }
            }
        }
        #expect(order.count == 4 && Set(order) == [1, 2] && zip(order, order.dropFirst()).allSatisfy { $0 != $1 }, "\(order)")
    }

    @Test func aCancelledJobsLateResultsAreDroppedAndItsSlotsFreed() {
        var core = Core(workers: [1], batch: 1)
        _ = core.handle(.submitted(job: 1), now: 0)
        _ = Self.prepareAll(&core, core.handle(.opened(job: 1, shape: Self.shape(10)), now: 0))
        #expect(core.handle(.cancelled(job: 1), now: 0) == [.complete(job: 1, end: .cancelled)])
        _ = core.handle(.submitted(job: 2), now: 0)
        // Both slots are still taken by job 1's tiles on the worker.
        #expect(core.handle(.opened(job: 2, shape: Self.shape(10)), now: 0).isEmpty)
        #expect(core.handle(.result(worker: 1, job: 1, tile: 0, payload: "late"), now: 0) == [.prepare(job: 2, tiles: 0..<1, worker: 1)])
        // A batch prepared for a job that has ended meanwhile is never sent, and frees its slot.
        #expect(core.handle(.prepared(job: 1, worker: 1, batch: "x", computed: [5], skipped: []), now: 0).isEmpty)
    }

    @Test func aFailingJobEndsAloneAndTheOthersGoOn() {
        var core = Core(workers: [1], batch: 1, depth: 2)
        for job: UInt64 in [1, 2] { _ = core.handle(.submitted(job: job), now: 0) }
        _ = Self.prepareAll(&core, core.handle(.opened(job: 1, shape: Self.shape(3)), now: 0))
        _ = core.handle(.opened(job: 2, shape: Self.shape(1)), now: 0)
        let failed = core.handle(.tileFailed(worker: 1, job: 1, tile: 0, message: "out of memory"), now: 0)
        #expect(failed == [.complete(job: 1, end: .failed("out of memory")), .prepare(job: 2, tiles: 0..<1, worker: 1)])
        #expect(core.handle(.jobFailed(job: 1, message: "again"), now: 0).isEmpty)  // once only
        _ = Self.prepareAll(&core, failed)
        #expect(core.handle(.result(worker: 1, job: 2, tile: 0, payload: "ok"), now: 0) == [.deliver(job: 2, payload: "ok"), .finish(job: 2)])
        // Preparing fails: the reserved tiles are free again.
        var other = Core(workers: [1], batch: 1, depth: 1)
        _ = other.handle(.submitted(job: 5), now: 0)
        _ = other.handle(.opened(job: 5, shape: Self.shape(4)), now: 0)
        #expect(other.handle(.prepareFailed(job: 5, worker: 1, tiles: 0..<1, message: "read error"), now: 0) == [.complete(job: 5, end: .failed("read error"))])
        #expect(other.tilesInFlight == 0)
    }

    @Test func tilesWithoutDataCountAsDoneAndAnAllNodataJobFinishes() {
        var core = Core(workers: [1], batch: 2, depth: 4)
        _ = core.handle(.submitted(job: 1), now: 0)
        let actions = core.handle(.opened(job: 1, shape: Self.shape(4, row: 2)), now: 0)
        #expect(actions == [.prepare(job: 1, tiles: 0..<2, worker: 1), .prepare(job: 1, tiles: 2..<4, worker: 1)])
        #expect(core.handle(.prepared(job: 1, worker: 1, batch: nil, computed: [], skipped: [0, 1]), now: 0).isEmpty)
        #expect(core.handle(.prepared(job: 1, worker: 1, batch: nil, computed: [], skipped: [2, 3]), now: 0) == [.finish(job: 1)])
        #expect(core.tilesInFlight == 0)
    }

    @Test func aLostExecutorEndsEveryJobAndSchedulesNothingMore() {
        var core = Core(workers: [1, 2], batch: 1)
        for job: UInt64 in [1, 2] { _ = core.handle(.submitted(job: job), now: 0) }
        _ = core.handle(.opened(job: 1, shape: Self.shape(10, workerSide: true)), now: 0)
        let end = core.handle(.executorFailed(message: "rank 2 died"), now: 0)
        #expect(end == [.complete(job: 1, end: .failed("rank 2 died")), .complete(job: 2, end: .failed("rank 2 died"))])
        #expect(core.stopped)
        #expect(core.handle(.submitted(job: 3), now: 0) == [.complete(job: 3, end: .shutdown)])
    }

    @Test func aJobWhoseOwnThreadOwesAnAnswerTooLongStalls() {
        var core = Core(workers: [1], batch: 1, stallSeconds: 30)
        _ = core.handle(.submitted(job: 1), now: 100)          // opening: its thread owes .opened
        _ = core.handle(.submitted(job: 2), now: 100)
        _ = Self.prepareAll(&core, core.handle(.opened(job: 2, shape: Self.shape(1000)), now: 101), now: 101)
        #expect(core.handle(.tick, now: 129).isEmpty)
        // Job 2 only waits for its worker (nothing owed on its own thread): it does not stall.
        #expect(core.handle(.tick, now: 131) == [.complete(job: 1, end: .stalled(30))])
        #expect(core.handle(.tick, now: 1000).isEmpty)
        #expect(core.handle(.stop, now: 1000) == [.complete(job: 2, end: .shutdown)])
    }

    @Test func aJobPastItsDeadlineTimesOutWhateverItIsDoing() {
        var core = Core(workers: [1], batch: 1)
        _ = core.handle(.submitted(job: 1, deadline: 10), now: 0)
        _ = core.handle(.submitted(job: 2), now: 0)
        _ = Self.prepareAll(&core, core.handle(.opened(job: 1, shape: Self.shape(1000)), now: 1), now: 1)
        #expect(core.handle(.tick, now: 9.9).isEmpty)
        let ended = core.handle(.tick, now: 10.1)
        #expect(ended.first == .complete(job: 1, end: .timedOut))
        // Its tiles on the worker still hold their slots until they come back; then job 2 gets them.
        _ = core.handle(.opened(job: 2, shape: Self.shape(3)), now: 11)
        #expect(core.handle(.result(worker: 1, job: 1, tile: 0, payload: "late"), now: 11) == [.prepare(job: 2, tiles: 0..<1, worker: 1)])
    }
}
