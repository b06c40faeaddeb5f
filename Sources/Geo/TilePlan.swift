/// Where the model tiles of a scene lie.
///
/// Each tile is `tileSize` model pixels covering `window` = round(tileSize · scale) source pixels.
/// Origins step by `stride · scale` source pixels; the last tile of a row or column is shifted
/// inward to end at the scene's edge, so every tile lies inside the scene. A scene side shorter
/// than the window gets one tile covering it, reflect-padded up to the window.
public struct TilePlan: Equatable, Sendable {
    public struct Tile: Equatable, Sendable {
        public var index: Int
        /// Row and column of the tile in the plan's grid.
        public var gridRow: Int, gridColumn: Int
        /// Source pixels read (inside the scene); smaller than the window only when the scene is.
        public var source: PixelWindow
    }

    public let sceneWidth: Int
    public let sceneHeight: Int
    public let tileSize: Int
    public let stride: Int
    public let scale: Double
    /// Source pixels per tile side.
    public let window: Int
    public let columnOrigins: [Int]
    public let rowOrigins: [Int]

    public init(sceneWidth: Int, sceneHeight: Int, tileSize: Int = 224, stride: Int = 192, scale: Double = 1) throws {
        guard sceneWidth > 0, sceneHeight > 0 else { throw PlanError("the scene is empty (\(sceneWidth)×\(sceneHeight))") }
        guard tileSize > 0 else { throw PlanError("tile size must be positive") }
        guard stride > 0, stride <= tileSize else { throw PlanError("stride \(stride) must be between 1 and the tile size \(tileSize)") }
        guard scale > 0, scale.isFinite else { throw PlanError("scale \(scale) must be a positive number") }
        self.sceneWidth = sceneWidth
        self.sceneHeight = sceneHeight
        self.tileSize = tileSize
        self.stride = stride
        self.scale = scale
        window = max(1, Int((Double(tileSize) * scale).rounded()))
        let step = max(1, Int((Double(stride) * scale).rounded()))
        columnOrigins = Self.origins(length: sceneWidth, window: window, step: step)
        rowOrigins = Self.origins(length: sceneHeight, window: window, step: step)
    }

    /// 0, step, 2·step, … while the window fits, plus a last origin flush with the end.
    static func origins(length: Int, window: Int, step: Int) -> [Int] {
        guard length > window else { return [0] }
        var origins = Array(Swift.stride(from: 0, through: length - window, by: step))
        if origins.last! != length - window { origins.append(length - window) }
        return origins
    }

    public var count: Int { rowOrigins.count * columnOrigins.count }
    public var rows: Int { rowOrigins.count }
    public var columns: Int { columnOrigins.count }

    public func tile(_ index: Int) -> Tile {
        let row = index / columns, column = index % columns
        let source = PixelWindow(x: columnOrigins[column], y: rowOrigins[row],
                                 width: min(window, sceneWidth), height: min(window, sceneHeight))
        return Tile(index: index, gridRow: row, gridColumn: column, source: source)
    }

    /// Scene rows final once every tile of grid rows 0…`gridRow` has been blended: all rows
    /// above the next grid row's origin (all rows after the last grid row).
    public func rowsFinal(afterGridRow gridRow: Int) -> Int {
        gridRow + 1 < rows ? rowOrigins[gridRow + 1] : sceneHeight
    }
}

public struct PlanError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
