import Foundation
import Support

/// Wall-clock seconds spent per stage of forward passes (for `coordinator bench`).
public final class ForwardProfile {
    public private(set) var seconds: [String: Double] = [:]
    public private(set) var order: [String] = []
    public init() {}

    func measure<T>(_ stage: String, _ body: () throws -> T) rethrows -> T {
        let start = monotonicSeconds()
        defer {
            if seconds[stage] == nil { order.append(stage) }
            seconds[stage, default: 0] += monotonicSeconds() - start
        }
        return try body()
    }

    public func reset() { seconds = [:]; order = [] }
}

extension Optional where Wrapped == ForwardProfile {
    /// Runs `body`, timing it when a profile is attached.
    func measure<T>(_ stage: String, _ body: () throws -> T) rethrows -> T {
        switch self {
        case .some(let profile): return try profile.measure(stage, body)
        case .none: return try body()
        }
    }
}
