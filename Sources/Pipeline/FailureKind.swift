import Foundation
import Geo
import Model

/// What went wrong, as the user must act on it — the one classification that `segment`'s exit
/// statuses and `serve`'s HTTP statuses are both mapped from (never from Swift error types
/// scattered over the commands).
public enum FailureKind: String, Sendable, CaseIterable {
    /// The input, its bands, the model or the options do not fit (the user's data is wrong).
    case badInput
    /// Something asked for is not there (the input file, the journal to resume).
    case missingInput
    /// The output cannot be created or written (directory missing, read-only, a rename refused).
    case output
    /// The disk (or quota) is full.
    case outOfSpace
    /// The job ran past a time limit or made no progress.
    case timedOut
    /// The engine is stopping or lost its workers.
    case unavailable
    /// A defect or a failure of a tile or worker.
    case `internal`

    public static func of(_ error: Error) -> FailureKind {
        switch error {
        case let error as any ClassifiedError: return error.kind
        case is SceneError, is PlanError, is ModelConfigError, is CheckpointError: return .badInput
        case is GDALError: return .badInput
        case is JobStalled, is JobTimedOut: return .timedOut
        case is EngineUnavailable: return .unavailable
        default: return .internal
        }
    }
}

/// An error that says its own kind.
public protocol ClassifiedError: Error {
    var kind: FailureKind { get }
}

extension JobOpenFailure: ClassifiedError {
    public var kind: FailureKind { FailureKind.of(underlying) }
}

extension SegmentationFailure: ClassifiedError {}

extension OutputError: ClassifiedError {
    public var kind: FailureKind { outOfSpace ? .outOfSpace : .output }
}
