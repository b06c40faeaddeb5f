import Dispatch
import Foundation

/// Runs blocking work (libcurl, GDAL, file I/O) off Swift concurrency's cooperative threads, which
/// must never block: a queue of its own, resumed through a continuation.
public enum BlockingIO {
    private static let queue = DispatchQueue(label: "prithvi.blocking-io", qos: .userInitiated, attributes: .concurrent)

    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}
