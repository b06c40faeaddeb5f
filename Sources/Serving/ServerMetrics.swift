import Foundation
import Metrics
import Pipeline

/// The server's metrics through swift-metrics (rendered as Prometheus text by `serve`): requests
/// by status, request latency, tiles and tile latency per worker, queue depth, busy workers, plus
/// vLLM's own gauge names so existing dashboards keep working.
public final class ServerMetrics: EngineObserver, RequestObserver, AdmissionObserver, @unchecked Sendable {
    private let lock = NSLock()
    private var requestCounters: [Int: Counter] = [:]
    private var tileTimers: [Int: Metrics.Timer] = [:]
    private let requestLatency = Metrics.Timer(label: "prithvi_request_duration_seconds", preferredDisplayUnit: .seconds)
    private let tiles = Counter(label: "prithvi_tiles_total")
    private let tilesQueued = Gauge(label: "prithvi_queue_tiles")
    private let jobsRunning = Gauge(label: "prithvi_jobs_running")
    private let jobsWaiting = Gauge(label: "prithvi_jobs_waiting")
    private let workersBusy = Gauge(label: "prithvi_workers_busy")
    private let vllmRunning = Gauge(label: "vllm:num_requests_running")
    private let vllmWaiting = Gauge(label: "vllm:num_requests_waiting")
    private let admitted = Gauge(label: "prithvi_requests_admitted")
    private let queuedForRoom = Gauge(label: "prithvi_requests_queued")
    private let admittedBytes = Gauge(label: "prithvi_admitted_memory_bytes")

    public init() {}

    public func requestFinished(status: Int, seconds: Double) {
        let counter = lock.withLock {
            if let counter = requestCounters[status] { return counter }
            let counter = Counter(label: "prithvi_requests_total", dimensions: [("status", "\(status)")])
            requestCounters[status] = counter
            return counter
        }
        counter.increment()
        requestLatency.recordNanoseconds(Int64(seconds * 1e9))
    }

    public func tileComputed(worker: Int, seconds: Double) {
        tiles.increment()
        let timer = lock.withLock {
            if let timer = tileTimers[worker] { return timer }
            let timer = Metrics.Timer(label: "prithvi_tile_duration_seconds", dimensions: [("worker", "\(worker)")], preferredDisplayUnit: .seconds)
            tileTimers[worker] = timer
            return timer
        }
        timer.recordNanoseconds(Int64(seconds * 1e9))
    }

    public func queueChanged(jobsRunning running: Int, jobsWaiting waiting: Int, tilesQueued queued: Int, workersBusy busy: Int) {
        jobsRunning.record(running)
        jobsWaiting.record(waiting)
        tilesQueued.record(queued)
        workersBusy.record(busy)
        vllmRunning.record(running)
        vllmWaiting.record(waiting)
    }

    public func admissionChanged(bytes: Int64, running: Int, waiting: Int) {
        admitted.record(running)
        queuedForRoom.record(waiting)
        admittedBytes.record(bytes)
    }
}
