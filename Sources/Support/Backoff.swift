import Foundation

/// Sleep schedule for polling loops: a few immediate retries, then sleeps that double up to a cap.
/// Keeps message latency low while a job is busy and an idle process near 0 % CPU.
public struct Backoff {
    private var attempt = 0
    private let maxSleepMicroseconds: UInt32

    /// `PRITHVI_POLL_MAX_US` overrides the cap for every loop (lower = less latency, more idle CPU).
    public static let defaultMaxSleepMicroseconds: UInt32 =
        ProcessInfo.processInfo.environment["PRITHVI_POLL_MAX_US"].flatMap { UInt32($0) } ?? 2_000

    /// The cap while a reply is expected soon (tiles in flight, a send completing): a quarter
    /// millisecond, i.e. ~4000 cheap wake-ups a second, only while work is under way.
    public static var busy: Backoff { Backoff(maxSleepMicroseconds: min(250, defaultMaxSleepMicroseconds)) }

    public init(maxSleepMicroseconds: UInt32 = Backoff.defaultMaxSleepMicroseconds) {
        self.maxSleepMicroseconds = maxSleepMicroseconds
    }

    public mutating func reset() { attempt = 0 }

    /// The sleep that the next `wait()` will take, in microseconds (0 = just yield).
    public var nextSleepMicroseconds: UInt32 {
        if attempt < 16 { return 0 }
        let shift = min(attempt - 16, 12)
        return min(maxSleepMicroseconds, UInt32(20) << UInt32(shift))
    }

    public var cap: UInt32 { maxSleepMicroseconds }

    /// The next sleep, at most `cap` µs, advancing the schedule: for loops that sleep elsewhere
    /// (a condition wait that other threads can cut short).
    public mutating func advance(cap: UInt32) -> UInt32 {
        defer { attempt += 1 }
        return min(cap, nextSleepMicroseconds)
    }

    public mutating func wait() {
        let micros = nextSleepMicroseconds
        attempt += 1
        if micros == 0 { sched_yield() } else { usleep(micros) }
    }
}

/// Seconds on a monotonic clock, for deadlines and durations.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
