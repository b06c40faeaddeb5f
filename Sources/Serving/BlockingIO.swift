import Dispatch
import Foundation

/// Runs blocking work (libcurl, GDAL, file I/O) off Swift concurrency's cooperative threads, which
/// must never block, on a lane: a fixed number of threads of its own and a bounded queue. Lanes
/// keep one kind of slow work from starving another — seventy slow downloads fill the download
/// lane (and the next is refused with 503), while checking rasters and reading answers go on —
/// and, unlike a concurrent dispatch queue, they never grow to GCD's thread limit.
public final class BlockingLane: @unchecked Sendable {  // `work`, `started` are guarded by `condition`
    public let name: String
    public let threads: Int
    public let maxQueued: Int
    private let condition = NSCondition()
    private var work: [() -> Void] = []
    private var started = false

    public init(name: String, threads: Int, maxQueued: Int) {
        self.name = name
        self.threads = max(1, threads)
        self.maxQueued = max(0, maxQueued)
    }

    /// Runs `body` on one of the lane's threads; 503 when `maxQueued` jobs wait already.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            condition.lock()
            startIfNeeded()
            guard work.count < maxQueued else {
                condition.unlock()
                continuation.resume(throwing: APIError.unavailable(
                    "the server is busy: \(maxQueued) \(name) jobs are already waiting; try again later", retryAfter: 5))
                return
            }
            work.append { continuation.resume(with: Result { try body() }) }
            condition.signal()
            condition.unlock()
        }
    }

    /// Jobs waiting for a thread.
    public var queued: Int { condition.withLock { work.count } }

    private func startIfNeeded() {
        guard !started else { return }
        started = true
        for index in 0..<threads {
            let thread = Thread { self.loop() }  // lanes live as long as the process
            thread.name = "\(name) \(index)"
            thread.start()
        }
    }

    private func loop() {
        while true {
            condition.lock()
            while work.isEmpty { condition.wait() }
            let next = work.removeFirst()
            condition.unlock()
            next()
        }
    }
}

/// The server's lanes.
public enum BlockingIO {
    /// `url` inputs: each holds a thread for up to `--download-timeout`.
    public static let downloads = BlockingLane(name: "download", threads: 16, maxQueued: 64)
    /// Local files: decoding base64, opening and checking rasters, reading answers back. Inputs that
    /// could block a read forever (FIFOs, devices) are refused before they get here.
    public static let files = BlockingLane(name: "file", threads: 8, maxQueued: 256)
}
