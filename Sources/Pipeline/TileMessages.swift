import Foundation
import Geo

/// What the engine exchanges with whoever computes its tiles (in-process or over MPI; the wire
/// encoding is the transport's).

/// What a tile's answer holds.
public enum TileAnswer: UInt8, Sendable {
    /// Every class's logits.
    case logits = 0
    /// One plane, class 1's logit minus class 0's, for two-class masks: the blended mask is its
    /// sign (Σw·(l₁ − l₀) > 0 exactly when class 1 wins the blended argmax, up to rounding), with
    /// half the bytes on the wire and half the blending.
    case classMargin = 1
}

/// One model input tile: `channels × height × width` float32 already scaled and normalised, or
/// no pixels at all — then the worker prepares the tile itself from `source` of the job's scene
/// (opened with `.openScene`). Either way the worker returns logits (or, for `.classMargin`, one
/// plane of margins) resampled to `window`.
public struct TileRequest: Equatable, Sendable {
    public var job: UInt64
    public var tile: UInt64
    public var channels: Int32
    public var height: Int32
    public var width: Int32
    /// The tile's source pixels in the scene.
    public var source: PixelWindow
    /// Side of the source window the logits are resampled to (`height` for none).
    public var window: Int32
    /// (longitude, latitude) in degrees of the scene centre, or empty.
    public var location: [Float]
    /// (year, day of year), or empty.
    public var temporal: [Float]
    /// Empty for a tile the worker reads itself.
    public var pixels: [Float]
    /// What the result carries.
    public var answer: TileAnswer
    public init(job: UInt64, tile: UInt64, channels: Int32, height: Int32, width: Int32, source: PixelWindow, window: Int32,
                location: [Float], temporal: [Float], pixels: [Float], answer: TileAnswer = .logits) {
        self.job = job; self.tile = tile; self.channels = channels; self.height = height; self.width = width
        self.source = source; self.window = window
        self.location = location; self.temporal = temporal; self.pixels = pixels; self.answer = answer
    }

    /// Whether the worker reads and prepares this tile itself.
    public var preparedByWorker: Bool { pixels.isEmpty }
}

/// Per-class logits of one tile on its source window: `classes × height × width` float32 (one
/// plane for a `.classMargin` answer), or nothing for a tile the worker read and found without any data (`skipped`).
public struct TileResult: Equatable, Sendable {
    public var job: UInt64
    public var tile: UInt64
    public var classes: Int32
    public var height: Int32
    public var width: Int32
    public var computeSeconds: Double
    public var logits: [Float]
    /// Validity of the source window's pixels, for tiles the worker prepared with some nodata;
    /// empty when every pixel is valid or the coordinator prepared the tile (it knows).
    public var valid: [UInt8]
    /// A worker-prepared tile whose every pixel is nodata: nothing was computed.
    public var skipped: Bool
    public init(job: UInt64, tile: UInt64, classes: Int32, height: Int32, width: Int32, computeSeconds: Double, logits: [Float],
                valid: [UInt8] = [], skipped: Bool = false) {
        self.job = job; self.tile = tile; self.classes = classes; self.height = height; self.width = width
        self.computeSeconds = computeSeconds; self.logits = logits; self.valid = valid; self.skipped = skipped
    }
}

/// Coordinator → worker: open the job's scene to read tiles from it, if the file the worker sees
/// at `path` is the coordinator's (same fingerprint); the worker answers `.sceneOpened`.
public struct SceneOpening: Equatable, Sendable {
    public var job: UInt64
    public var path: String
    public var fingerprint: FileFingerprint
    public var recipe: TileRecipe
    /// GDAL drivers the worker may open it with (a served input: GTiff only); empty: any.
    public var drivers: [String]
    public init(job: UInt64, path: String, fingerprint: FileFingerprint, recipe: TileRecipe, drivers: [String] = []) {
        self.job = job; self.path = path; self.fingerprint = fingerprint; self.recipe = recipe; self.drivers = drivers
    }
}

/// A tile the worker could not compute (bad shape, out of memory…); the worker stays alive.
public struct TileFailure: Error, Equatable, Sendable {
    public var job: UInt64
    public var tile: UInt64
    public var message: String
    public init(job: UInt64, tile: UInt64, message: String) { self.job = job; self.tile = tile; self.message = message }
}
