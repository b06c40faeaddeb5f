import Foundation

/// Runs tiles through a loaded model, one at a time, reusing its scratch memory.
public final class ModelTileComputer: TileComputer {
    public let model: PrithviSegmentationModel
    private let scratch = Scratch()

    public init(model: PrithviSegmentationModel) { self.model = model }

    public var summary: String { model.summary }

    public func compute(_ tile: TileRequest) throws -> TileResult {
        let channels = Int(tile.channels), height = Int(tile.height), width = Int(tile.width)
        guard channels == model.config.encoder.inChannels else {
            throw ModelConfigError("tile \(tile.tile) has \(channels) bands, the model takes \(model.config.encoder.inChannels)")
        }
        let start = monotonicSeconds()
        let (outHeight, outWidth) = model.outputSize(height: height, width: width)
        var logits = [Float](repeating: 0, count: model.config.numClasses * outHeight * outWidth)
        try tile.pixels.withUnsafeBufferPointer { pixels in
            try logits.withUnsafeMutableBufferPointer { out in
                try model.forward(pixels.baseAddress!, images: 1, height: height, width: width,
                                  location: tile.location.isEmpty ? nil : tile.location,
                                  temporal: tile.temporal.isEmpty ? nil : tile.temporal,
                                  into: out.baseAddress!, scratch: scratch)
            }
        }
        return TileResult(job: tile.job, tile: tile.tile, classes: Int32(model.config.numClasses), height: Int32(outHeight),
                          width: Int32(outWidth), computeSeconds: monotonicSeconds() - start, logits: logits)
    }
}
