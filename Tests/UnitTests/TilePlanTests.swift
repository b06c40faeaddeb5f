import Geo
import Pipeline
import Testing

@Suite struct TilePlanTests {
    @Test func exactTileIsOneTile() throws {
        let plan = try TilePlan(sceneWidth: 224, sceneHeight: 224)
        #expect(plan.count == 1)
        #expect(plan.tile(0).source == PixelWindow(x: 0, y: 0, width: 224, height: 224))
    }

    @Test func lastTileShiftsInwardToTheEdge() throws {
        let plan = try TilePlan(sceneWidth: 1000, sceneHeight: 700, tileSize: 224, stride: 192)
        #expect(plan.columnOrigins == [0, 192, 384, 576, 768, 776])
        #expect(plan.rowOrigins == [0, 192, 384, 476])
        for index in 0..<plan.count {
            let s = plan.tile(index).source
            #expect(s.x >= 0 && s.y >= 0 && s.x + s.width <= 1000 && s.y + s.height <= 700)
            #expect(s.width == 224 && s.height == 224)
        }
    }

    @Test func strideEqualToTileMeansNoOverlapWhenItDivides() throws {
        let plan = try TilePlan(sceneWidth: 672, sceneHeight: 448, tileSize: 224, stride: 224)
        #expect(plan.columnOrigins == [0, 224, 448])
        #expect(plan.rowOrigins == [0, 224])
    }

    @Test func trainingScaleWidensTheSourceWindow() throws {
        let plan = try TilePlan(sceneWidth: 1000, sceneHeight: 700, tileSize: 224, stride: 192, scale: 512.0 / 448.0)
        #expect(plan.window == 256)
        #expect(plan.columnOrigins == [0, 219, 438, 657, 744])
        #expect(plan.tile(plan.count - 1).source == PixelWindow(x: 744, y: 444, width: 256, height: 256))
    }

    @Test func smallSceneIsOnePaddedTile() throws {
        let plan = try TilePlan(sceneWidth: 100, sceneHeight: 300, tileSize: 224, stride: 192)
        #expect(plan.columnOrigins == [0])
        #expect(plan.rowOrigins == [0, 76])
        #expect(plan.tile(0).source.width == 100)
    }

    @Test func rowsBecomeFinalAtTheNextGridRow() throws {
        let plan = try TilePlan(sceneWidth: 500, sceneHeight: 500, tileSize: 224, stride: 192)
        #expect(plan.rowOrigins == [0, 192, 276])
        #expect(plan.rowsFinal(afterGridRow: 0) == 192)
        #expect(plan.rowsFinal(afterGridRow: 1) == 276)
        #expect(plan.rowsFinal(afterGridRow: 2) == 500)
    }

    @Test func badPlansAreErrors() {
        #expect(throws: PlanError.self) { try TilePlan(sceneWidth: 0, sceneHeight: 10) }
        #expect(throws: PlanError.self) { try TilePlan(sceneWidth: 10, sceneHeight: 10, stride: 0) }
        #expect(throws: PlanError.self) { try TilePlan(sceneWidth: 10, sceneHeight: 10, stride: 300) }
        #expect(throws: PlanError.self) { try TilePlan(sceneWidth: 10, sceneHeight: 10, scale: .nan) }
    }
}

@Suite struct TileSchedulerTests {
    @Test func everyWorkerGetsTwoTilesInFlight() {
        var scheduler = TileScheduler(workers: [1, 2], depth: 2)
        scheduler.addJob(7)
        var slots: [Int] = []
        var tile = 0
        while let slot = scheduler.nextSlot() {
            slots.append(slot.worker)
            scheduler.assigned(.init(worker: slot.worker, job: slot.job, tile: tile))
            tile += 1
        }
        #expect(slots.sorted() == [1, 1, 2, 2])
        #expect(scheduler.totalInFlight == 4)
        let worker2Tile = slots.indices.first { slots[$0] == 2 }!
        let finished = scheduler.completed(.init(worker: 2, job: 7, tile: worker2Tile))
        #expect(finished)
        #expect(scheduler.nextSlot()?.worker == 2)
    }

    @Test func freeSlotsAlternateBetweenJobs() {
        var scheduler = TileScheduler(workers: [1], depth: 1)
        scheduler.addJob(1)  // a big scene
        scheduler.addJob(2)  // a small request arriving later
        var order: [UInt64] = []
        for tile in 0..<6 {
            let slot = scheduler.nextSlot()!
            order.append(slot.job)
            scheduler.assigned(.init(worker: 1, job: slot.job, tile: tile))
            #expect(scheduler.nextSlot() == nil, "depth 1: one tile at a time")
            scheduler.completed(.init(worker: 1, job: slot.job, tile: tile))
        }
        #expect(order == [1, 2, 1, 2, 1, 2])
        scheduler.retireJob(2)
        #expect(scheduler.nextSlot()?.job == 1)
    }

    @Test func removingAWorkerReturnsWhatItHeld() {
        var scheduler = TileScheduler(workers: [1, 2], depth: 2)
        scheduler.addJob(3)
        scheduler.assigned(.init(worker: 1, job: 3, tile: 0))
        scheduler.assigned(.init(worker: 2, job: 3, tile: 1))
        scheduler.assigned(.init(worker: 1, job: 3, tile: 2))
        let lost = scheduler.removeWorker(1)
        #expect(lost.map(\.tile) == [0, 2])
        #expect(scheduler.workers == [2])
        #expect(scheduler.inFlight(job: 3).map(\.tile) == [1])
        let stray = scheduler.completed(.init(worker: 1, job: 3, tile: 0))
        #expect(!stray, "a removed worker's result is stray")
    }

    @Test func noJobsNoSlots() {
        var scheduler = TileScheduler(workers: [1])
        #expect(scheduler.nextSlot() == nil)
        scheduler.addJob(1)
        scheduler.retireJob(1)
        #expect(scheduler.nextSlot() == nil)
        #expect(!scheduler.hasActiveJobs)
    }
}
