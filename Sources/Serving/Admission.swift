import Dispatch
import Foundation
import Support

/// Drives `AdmissionQueue` for the server: `admit` returns when the job may run (or throws the
/// 413/503/504 a client should see), and the returned ticket gives the room back exactly once.
/// A waiter whose task is cancelled (its client went away) or whose deadline passes leaves the
/// queue, and whoever fits then is let in.
public final class Admission: @unchecked Sendable {  // every field is guarded by `lock`
    private let lock = NSLock()
    private var queue: AdmissionQueue
    private var waiters: [UInt64: CheckedContinuation<Void, Error>] = [:]
    private var nextID: UInt64 = 1
    /// Waiters that gave up before their continuation existed, with the error they leave with.
    private var gaveUp: [UInt64: Error] = [:]
    /// Seconds recent jobs took, for `Retry-After`.
    private var recentSeconds: [Double] = []

    private let observer: (any AdmissionObserver)?

    public var limits: AdmissionQueue.Limits { queue.limits }
    public init(limits: AdmissionQueue.Limits, observer: (any AdmissionObserver)? = nil) {
        queue = AdmissionQueue(limits: limits)
        self.observer = observer
    }

    /// Tells the observer; called with `lock` held, so the gauges follow the state in order.
    private func changed() {
        observer?.admissionChanged(bytes: queue.bytesInUse, running: queue.running.count, waiting: queue.waiting.count)
    }

    /// The running jobs' estimates and the number waiting (for /metrics and tests).
    public var state: (bytes: Int64, running: Int, waiting: Int) {
        lock.withLock { (queue.bytesInUse, queue.running.count, queue.waiting.count) }
    }

    public final class Ticket: @unchecked Sendable {  // `released` is guarded by the admission's lock
        fileprivate let id: UInt64
        fileprivate weak var admission: Admission?
        fileprivate var released = false
        fileprivate let admitted = monotonicSeconds()
        fileprivate init(id: UInt64, admission: Admission) { self.id = id; self.admission = admission }
        /// Gives the job's room back (idempotent).
        public func release() { admission?.release(self) }
        deinit { release() }
    }

    /// Waits until a job estimated at `bytes` fits; `deadline` (monotonic seconds) bounds the wait.
    public func admit(bytes: Int64, deadline: Double?) async throws -> Ticket {
        let id: UInt64 = lock.withLock { defer { nextID += 1 }; return nextID }
        let decision = lock.withLock { defer { changed() }; return queue.request(id, bytes: bytes) }
        switch decision {
        case .admitted: return Ticket(id: id, admission: self)
        case .tooLarge:
            throw APIError.tooLarge("the request needs an estimated \(ByteCount.describe(bytes)) of memory, more than the server's --max-memory \(ByteCount.describe(limits.maxBytes))")
        case .busy:
            throw APIError.unavailable("the server is busy: \(limits.maxWaiting) requests are already waiting; try again later",
                                       retryAfter: retryAfterSeconds())
        case .waiting:
            break
        }
        if let deadline {
            let delay = max(0, deadline - monotonicSeconds())
            DispatchQueue.global().asyncAfter(deadline: .now() + delay) { [weak self] in
                self?.giveUp(id, APIError(status: 504, type: "TimeoutError", "the request waited for room past --request-timeout"))
            }
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                // Between `request` and here the job may have been let in, or may have given up.
                enum Now { case wait, run, fail(Error) }
                let now = lock.withLock { () -> Now in
                    if queue.running[id] != nil { return .run }
                    if let error = gaveUp.removeValue(forKey: id) { return .fail(error) }
                    waiters[id] = continuation
                    return .wait
                }
                switch now {
                case .wait: break
                case .run: continuation.resume()
                case .fail(let error): continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            giveUp(id, CancellationError())
        }
        return Ticket(id: id, admission: self)
    }

    /// A waiter leaves the queue with `error` (no-op once it was admitted).
    private func giveUp(_ id: UInt64, _ error: Error) {
        let (continuation, admitted) = lock.withLock { () -> (CheckedContinuation<Void, Error>?, [CheckedContinuation<Void, Error>]) in
            guard queue.waiting.contains(where: { $0.id == id }) else { return (nil, []) }
            let waiter = waiters.removeValue(forKey: id)
            if waiter == nil { gaveUp[id] = error }  // it has not started waiting yet
            defer { changed() }
            return (waiter, queue.release(id).compactMap { waiters.removeValue(forKey: $0) })
        }
        continuation?.resume(throwing: error)
        for waiter in admitted { waiter.resume() }
    }

    private func release(_ ticket: Ticket) {
        let admitted = lock.withLock { () -> [CheckedContinuation<Void, Error>] in
            guard !ticket.released else { return [] }
            ticket.released = true
            recentSeconds.append(monotonicSeconds() - ticket.admitted)
            if recentSeconds.count > 16 { recentSeconds.removeFirst() }
            defer { changed() }
            return queue.release(ticket.id).compactMap { waiters.removeValue(forKey: $0) }
        }
        for waiter in admitted { waiter.resume() }
    }

    /// A hint for clients refused with 503: about one recent job's time, 1…60 s.
    private func retryAfterSeconds() -> Int {
        let recent = lock.withLock { recentSeconds }
        guard !recent.isEmpty else { return 1 }
        return min(60, max(1, Int((recent.reduce(0, +) / Double(recent.count)).rounded(.up))))
    }
}

/// Hears every change of what is admitted (the server's gauges).
public protocol AdmissionObserver: AnyObject, Sendable {
    func admissionChanged(bytes: Int64, running: Int, waiting: Int)
}
