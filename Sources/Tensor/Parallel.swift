import Dispatch
import Support

// The closures run concurrently on disjoint ranges of the caller's buffers (raw pointers, hence
// not Sendable): the data race freedom is by construction of the ranges.

/// Splitting our own loops over the cores BLAS uses, for the work between GEMMs (GELU, softmax,
/// attention heads) that would otherwise run on one core while the others wait.
public enum Parallel {
    /// Workers for our loops: the BLAS thread count (one knob for both).
    public static var workers: Int { max(1, BLAS.threads) }

    /// Runs `body` on `count` items split into one contiguous range per worker; ranges smaller
    /// than `minimum` items are not worth a thread and run inline.
    public static func forRanges(_ count: Int, minimum: Int = 4096, _ body: (Range<Int>) -> Void) {
        let parts = min(workers, max(1, count / max(1, minimum)))
        forParts(parts) { part in body((part * count / parts)..<((part + 1) * count / parts)) }
    }

    /// Runs `body(0) … body(parts − 1)` concurrently, one call per worker thread.
    public static func forParts(_ parts: Int, _ body: (Int) -> Void) {
        guard parts > 1 else { if parts == 1 { body(0) }; return }
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedBox(body)
            DispatchQueue.concurrentPerform(iterations: parts) { shared.value($0) }
        }
    }

    /// Runs items `0..<count` on at most `workers` workers (read once by the caller, who sized
    /// per-worker scratch with it: a second read could see another thread's BLAS setting and
    /// index past that scratch), each taking a contiguous share and knowing its index `< workers`.
    /// BLAS runs single-threaded inside, as the workers already use every core.
    public static func forEachWithWorker(_ count: Int, workers: Int, _ body: (_ item: Int, _ worker: Int) -> Void) {
        let parts = max(1, min(workers, count))
        guard parts > 1 else { for item in 0..<count { body(item, 0) }; return }
        let threads = BLAS.threads
        BLAS.threads = 1
        defer { BLAS.threads = threads }
        forParts(parts) { part in
            for item in (part * count / parts)..<((part + 1) * count / parts) { body(item, part) }
        }
    }
}
