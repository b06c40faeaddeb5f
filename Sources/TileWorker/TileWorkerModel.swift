import Foundation
import MPITransport
import Model
import Pipeline

/// Loads the model the coordinator names at setup; the weights are mapped, not copied.
enum TileWorkerModel {
    static func load(_ setup: WorkerSetup) throws -> TileComputer {
        ModelTileComputer(model: try PrithviSegmentationModel(directory: setup.modelDirectory))
    }
}
