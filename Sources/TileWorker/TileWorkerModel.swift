import Foundation
import Shared

/// Loads the model the coordinator names at setup.
enum TileWorkerModel {
    static func load(_ setup: WorkerSetup) throws -> TileComputer {
        throw ModelLoadError("model loading is not implemented yet (\(setup.modelDirectory))")
    }
}

struct ModelLoadError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
