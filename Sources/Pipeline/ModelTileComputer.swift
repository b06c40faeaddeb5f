import Foundation
import Model
import Support
import Tensor

/// Runs tiles through a loaded model, one at a time, reusing its scratch memory.
public final class ModelTileComputer: TileComputer {
    public let model: PrithviSegmentationModel
    private let scratch = Scratch()

    public init(model: PrithviSegmentationModel) { self.model = model }

    public var summary: String { model.summary + "; " + model.packingReport }

    /// Tiles of one shape in one forward pass (the caller groups them; see `computeBatch`).
    public func compute(_ tiles: [TileRequest]) throws -> [TileResult] {
        guard let first = tiles.first else { return [] }
        let channels = Int(first.channels), height = Int(first.height), width = Int(first.width)
        guard channels == model.config.encoder.inChannels else {
            throw ModelConfigError("tile \(first.tile) has \(channels) bands, the model takes \(model.config.encoder.inChannels)")
        }
        guard tiles.allSatisfy({ $0.channels == first.channels && $0.height == first.height && $0.width == first.width }) else {
            throw ModelConfigError("tiles of different shapes cannot share a forward pass")
        }
        let start = monotonicSeconds()
        let classes = model.config.numClasses
        let (outHeight, outWidth) = model.outputSize(height: height, width: width)
        let plane = classes * outHeight * outWidth
        var logits = [Float](repeating: 0, count: tiles.count * plane)
        let pixels = tiles.count == 1 ? first.pixels : tiles.flatMap(\.pixels)
        let location = first.location.isEmpty ? nil : tiles.flatMap(\.location)
        let temporal = first.temporal.isEmpty ? nil : tiles.flatMap(\.temporal)
        try pixels.withUnsafeBufferPointer { input in
            try logits.withUnsafeMutableBufferPointer { out in
                try model.forward(input.baseAddress!, images: tiles.count, height: height, width: width,
                                  location: location, temporal: temporal, into: out.baseAddress!, scratch: scratch)
            }
        }
        let seconds = (monotonicSeconds() - start) / Double(tiles.count)
        return tiles.enumerated().map { index, tile in
            TileResult(job: tile.job, tile: tile.tile, classes: Int32(classes), height: Int32(outHeight), width: Int32(outWidth),
                       computeSeconds: seconds, logits: Array(logits[(index * plane)..<((index + 1) * plane)]))
        }
    }
}
