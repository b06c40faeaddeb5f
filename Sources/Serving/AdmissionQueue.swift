/// Which requests may run: a memory budget, a limit on jobs at once and a bounded queue of
/// waiters. A pure state machine (no clocks, no threads): each event returns what to do, so it is
/// tested without a server; `Admission` drives it.
///
/// Waiters are admitted strictly first in, first out: a large job at the head is not overtaken by
/// small ones behind it, so it cannot starve.
public struct AdmissionQueue: Sendable {
    public struct Limits: Sendable, Equatable {
        /// Bytes the running jobs' estimates may add up to.
        public var maxBytes: Int64
        /// Jobs running at once.
        public var maxConcurrent: Int
        /// Requests waiting for room; one more is refused (503).
        public var maxWaiting: Int
        public init(maxBytes: Int64, maxConcurrent: Int, maxWaiting: Int) {
            self.maxBytes = maxBytes
            self.maxConcurrent = maxConcurrent
            self.maxWaiting = maxWaiting
        }
    }

    public enum Decision: Equatable, Sendable {
        case admitted
        case waiting
        /// Larger than the whole budget: it could never run (413).
        case tooLarge
        /// The queue is full (503, try later).
        case busy
    }

    public let limits: Limits
    public private(set) var running: [UInt64: Int64] = [:]
    public private(set) var waiting: [(id: UInt64, bytes: Int64)] = []
    public var bytesInUse: Int64 { running.values.reduce(0, +) }

    public init(limits: Limits) { self.limits = limits }

    private func fits(_ bytes: Int64) -> Bool {
        running.count < limits.maxConcurrent && bytesInUse + bytes <= limits.maxBytes
    }

    /// A new request estimated at `bytes`.
    public mutating func request(_ id: UInt64, bytes: Int64) -> Decision {
        guard bytes <= limits.maxBytes else { return .tooLarge }
        if waiting.isEmpty && fits(bytes) {
            running[id] = bytes
            return .admitted
        }
        guard waiting.count < limits.maxWaiting else { return .busy }
        waiting.append((id, bytes))
        return .waiting
    }

    /// A job finished (or a waiter gave up): the waiters that now fit, in order.
    public mutating func release(_ id: UInt64) -> [UInt64] {
        if running.removeValue(forKey: id) == nil {
            waiting.removeAll { $0.id == id }
        }
        var admitted: [UInt64] = []
        while let head = waiting.first, fits(head.bytes) {
            waiting.removeFirst()
            running[head.id] = head.bytes
            admitted.append(head.id)
        }
        return admitted
    }
}
