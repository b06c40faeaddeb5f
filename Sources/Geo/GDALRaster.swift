import CGDAL
import Foundation

/// A GDAL call that failed, with GDAL's own message when it gave one.
public struct GDALError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }

    /// `what` followed by GDAL's last error message on this thread, if any.
    static func last(_ what: String) -> GDALError {
        let message = CPLGetLastErrorMsg().map { String(cString: $0) } ?? ""
        return GDALError(message.isEmpty ? what : "\(what): \(message)")
    }
}

/// Registers drivers once and keeps GDAL quiet: failures are reported through `GDALError`.
enum GDALRuntime {
    static let ready: Void = {
        GDALAllRegister()
        // Never leave .aux.xml side files next to users' rasters.
        CPLSetConfigOption("GDAL_PAM_ENABLED", "NO")
        // GDAL's block cache defaults to 5 % of RAM and would grow with the scene; windows are read
        // once in row order, so a small cache suffices. GDAL_CACHEMAX in the environment wins.
        if getenv("GDAL_CACHEMAX") == nil { CPLSetConfigOption("GDAL_CACHEMAX", "64") }
        // Where GDAL itself reaches the network (`segment` on a /vsicurl/ input; served inputs never
        // do), a stalled host must not hang a run: GDAL's defaults wait forever. The environment wins.
        for (key, seconds) in [("GDAL_HTTP_CONNECTTIMEOUT", "30"), ("GDAL_HTTP_TIMEOUT", "120")] where getenv(key) == nil {
            CPLSetConfigOption(key, seconds)
        }
        CPLSetErrorHandler(CPLQuietErrorHandler)
    }()
}

/// Pixel data types this project reads and writes.
public enum RasterDataType: Equatable, Sendable, CustomStringConvertible {
    case byte, uint16, int16, uint32, int32, float32, float64
    case other(String)

    init(_ type: GDALDataType) {
        switch type {
        case GDT_Byte: self = .byte
        case GDT_UInt16: self = .uint16
        case GDT_Int16: self = .int16
        case GDT_UInt32: self = .uint32
        case GDT_Int32: self = .int32
        case GDT_Float32: self = .float32
        case GDT_Float64: self = .float64
        default: self = .other(GDALGetDataTypeName(type).map { String(cString: $0) } ?? "unknown")
        }
    }

    var gdal: GDALDataType? {
        switch self {
        case .byte: return GDT_Byte
        case .uint16: return GDT_UInt16
        case .int16: return GDT_Int16
        case .uint32: return GDT_UInt32
        case .int32: return GDT_Int32
        case .float32: return GDT_Float32
        case .float64: return GDT_Float64
        case .other: return nil
        }
    }

    public var description: String {
        switch self {
        case .other(let name): return name
        default: return gdal.flatMap { GDALGetDataTypeName($0) }.map { String(cString: $0) } ?? "unknown"
        }
    }
}

/// The six affine coefficients mapping pixel (col, row) to georeferenced (x, y):
/// x = c0 + col·c1 + row·c2, y = c3 + col·c4 + row·c5.
public struct GeoTransform: Equatable, Sendable, CustomStringConvertible {
    public var coefficients: [Double]
    public init(_ coefficients: [Double]) {
        precondition(coefficients.count == 6, "a geotransform has six coefficients")
        self.coefficients = coefficients
    }
    public func apply(column: Double, row: Double) -> (x: Double, y: Double) {
        let c = coefficients
        return (c[0] + column * c[1] + row * c[2], c[3] + column * c[4] + row * c[5])
    }
    public var description: String { "(" + coefficients.map { "\($0)" }.joined(separator: ", ") + ")" }
}

/// A rectangle of pixels: column `x`, row `y`, `width` columns, `height` rows.
public struct PixelWindow: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var x: Int, y: Int, width: Int, height: Int
    public init(x: Int, y: Int, width: Int, height: Int) { self.x = x; self.y = y; self.width = width; self.height = height }
    public var pixelCount: Int { width * height }
    public var description: String { "\(width)×\(height) at (\(x), \(y))" }
}

/// A GDAL raster dataset opened for reading or created for writing.
///
/// Not thread-safe (GDAL dataset handles are not): use one dataset from one thread at a time.
public final class RasterDataset {
    private var handle: GDALDatasetH?
    public let path: String
    public let width: Int
    public let height: Int
    public let bandCount: Int

    private init(handle: GDALDatasetH, path: String) {
        self.handle = handle
        self.path = path
        width = Int(GDALGetRasterXSize(handle))
        height = Int(GDALGetRasterYSize(handle))
        bandCount = Int(GDALGetRasterCount(handle))
    }

    deinit { if let handle { GDALClose(handle) } }

    /// Opens a raster read-only. `allowedDrivers` (GDAL short names, e.g. ["GTiff"]) limits the
    /// drivers GDAL may use and refuses GDAL's virtual paths (`/vsicurl/`, `/vsizip/`, …), so a
    /// VRT or any other format that reads further files or URLs never opens; nil: any driver.
    public static func open(_ path: String, allowedDrivers: [String]? = nil) throws -> RasterDataset {
        _ = GDALRuntime.ready
        if let allowedDrivers {
            guard !path.hasPrefix("/vsi") else { throw GDALError("\(path): GDAL virtual file system paths are not opened here") }
            guard !allowedDrivers.isEmpty else { throw GDALError("\(path): no GDAL driver is allowed") }
        }
        guard FileManager.default.fileExists(atPath: path) || (allowedDrivers == nil && path.hasPrefix("/vsi")) else {
            throw GDALError("\(path): no such file")
        }
        CPLErrorReset()
        let flags = UInt32(GDAL_OF_RASTER | GDAL_OF_READONLY | GDAL_OF_VERBOSE_ERROR)
        // An empty list is NULL (any driver) for withCStringArray; refused above. The cast only adds
        // const (char** → const char* const*), which GDALOpenEx's papszAllowedDrivers takes.
        let opened = withCStringArray(allowedDrivers ?? []) { drivers in
            GDALOpenEx(path, flags, UnsafeRawPointer(drivers)?.assumingMemoryBound(to: UnsafePointer<CChar>?.self), nil, nil)
        }
        guard let handle = opened else {
            let formats = allowedDrivers.map { " with the \($0.joined(separator: ", ")) driver" } ?? ""
            throw GDALError.last("\(path): not a raster GDAL can read\(formats)")
        }
        let dataset = RasterDataset(handle: handle, path: path)
        guard dataset.width > 0, dataset.height > 0, dataset.bandCount > 0 else {
            throw GDALError("\(path): empty raster (\(dataset.width)×\(dataset.height), \(dataset.bandCount) bands)")
        }
        return dataset
    }

    /// Opens a GDAL dataset name that is not a file path (a subdataset such as
    /// `SENTINEL2_L2A:…/MTD_MSIL2A.xml:10m:EPSG_32630`) with any driver.
    public static func open(name: String) throws -> RasterDataset {
        _ = GDALRuntime.ready
        CPLErrorReset()
        guard let handle = GDALOpenEx(name, UInt32(GDAL_OF_RASTER | GDAL_OF_READONLY | GDAL_OF_VERBOSE_ERROR), nil, nil, nil) else {
            throw GDALError.last("\(name): GDAL cannot open it")
        }
        return RasterDataset(handle: handle, path: name)
    }

    /// For a server reading untrusted inputs, process-wide: GDAL never lists an input's directory
    /// nor probes for sidecars beside it (.ovr, .msk, .aux.xml, .RPB: the pipeline uses none of
    /// them, only the GeoTIFF's own pixels and nodata), and PROJ never downloads grids.
    public static func restrictToInputFiles() {
        _ = GDALRuntime.ready
        CPLSetConfigOption("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR")
        OSRSetPROJEnableNetwork(0)
    }

    /// Creates a raster with `driver` (GeoTIFF by default) and creation options such as `COMPRESS=LZW`.
    public static func create(
        _ path: String, width: Int, height: Int, bands: Int, type: RasterDataType,
        driver driverName: String = "GTiff", options: [String] = []
    ) throws -> RasterDataset {
        _ = GDALRuntime.ready
        guard width > 0, height > 0, bands > 0 else {
            throw GDALError("\(path): cannot create a \(width)×\(height) raster with \(bands) bands")
        }
        guard let gdalType = type.gdal else { throw GDALError("\(path): cannot create rasters of type \(type)") }
        guard let driver = GDALGetDriverByName(driverName) else { throw GDALError("GDAL has no driver named \(driverName)") }
        for option in options where !option.contains("=") {
            throw GDALError("creation option \"\(option)\" is not of the form KEY=VALUE")
        }
        CPLErrorReset()
        let handle = withCStringArray(options) { list in
            GDALCreate(driver, path, Int32(width), Int32(height), Int32(bands), gdalType, list)
        }
        guard let handle else { throw GDALError.last("\(path): cannot create raster") }
        return RasterDataset(handle: handle, path: path)
    }

    /// Refuses creation options `driver` does not know or whose value it would reject (GDAL itself
    /// only warns and goes on without them, so a typo would silently give another file).
    public static func validateCreationOptions(_ options: [String], driver driverName: String) throws {
        _ = GDALRuntime.ready
        guard let driver = GDALGetDriverByName(driverName) else { throw GDALError("GDAL has no driver named \(driverName)") }
        for option in options {
            guard option.contains("=") else { throw GDALError("creation option \"\(option)\" is not of the form KEY=VALUE") }
            CPLErrorReset()
            let valid = withCStringArray([option]) { GDALValidateCreationOptions(driver, $0) }
            if valid == 0 { throw GDALError.last("creation option \(option) is not valid for GDAL's \(driverName) driver") }
        }
    }

    /// Writes a copy at `path` with `driver` (e.g. COG, which can only copy) and its creation
    /// options; the copy is closed (and flushed) before this returns.
    public func copy(to path: String, driver driverName: String, options: [String] = []) throws {
        guard let driver = GDALGetDriverByName(driverName) else { throw GDALError("GDAL has no driver named \(driverName)") }
        let source = try openHandle()
        CPLErrorReset()
        let copied = withCStringArray(options) { list in GDALCreateCopy(driver, path, source, 0, list, nil, nil) }
        guard let copied else { throw GDALError.last("\(path): cannot write a \(driverName) copy of \(self.path)") }
        try RasterDataset(handle: copied, path: path).close()
    }

    func openHandle() throws -> GDALDatasetH {
        guard let handle else { throw GDALError("\(path): dataset already closed") }
        return handle
    }

    func band(_ index: Int) throws -> GDALRasterBandH {
        guard index >= 0, index < bandCount else {
            throw GDALError("\(path): band index \(index) out of range (the raster has \(bandCount) bands, indices 0…\(bandCount - 1))")
        }
        guard let band = GDALGetRasterBand(try openHandle(), Int32(index + 1)) else { throw GDALError.last("\(path): band \(index)") }
        return band
    }

    public func dataType(band index: Int) throws -> RasterDataType {
        RasterDataType(GDALGetRasterDataType(try band(index)))
    }

    /// The geotransform, or nil when the raster has none.
    public var geoTransform: GeoTransform? {
        guard let handle else { return nil }
        var c = [Double](repeating: 0, count: 6)
        guard GDALGetGeoTransform(handle, &c) == CE_None else { return nil }
        return GeoTransform(c)
    }

    public func setGeoTransform(_ transform: GeoTransform) throws {
        var c = transform.coefficients
        CPLErrorReset()
        guard GDALSetGeoTransform(try openHandle(), &c) == CE_None else { throw GDALError.last("\(path): cannot set geotransform") }
    }

    /// The coordinate reference system as WKT, or nil when the raster has none.
    public var projectionWKT: String? {
        guard let handle, let wkt = GDALGetProjectionRef(handle) else { return nil }
        let text = String(cString: wkt)
        return text.isEmpty ? nil : text
    }

    public func setProjection(wkt: String) throws {
        CPLErrorReset()
        guard GDALSetProjection(try openHandle(), wkt) == CE_None else { throw GDALError.last("\(path): cannot set CRS") }
    }

    /// The dataset's metadata in `domain` ("" the default, "SUBDATASETS", "RPC", …) as GDAL holds
    /// it: KEY=VALUE lines in its order.
    public func metadataLines(domain: String = "") -> [String] {
        guard let handle, var entry = GDALGetMetadata(handle, domain) else { return [] }
        var lines: [String] = []
        while let item = entry.pointee {
            lines.append(String(cString: item))
            entry += 1
        }
        return lines
    }

    /// The dataset's metadata in `domain` as KEY → value.
    public func metadata(domain: String = "") -> [String: String] {
        var items: [String: String] = [:]
        for line in metadataLines(domain: domain) {
            if let equals = line.firstIndex(of: "=") { items[String(line[..<equals])] = String(line[line.index(after: equals)...]) }
        }
        return items
    }

    /// One metadata item of a band (e.g. the SENTINEL2 driver's BANDNAME), nil when absent.
    public func metadataItem(_ key: String, band index: Int) throws -> String? {
        GDALGetMetadataItem(try band(index), key, nil).map { String(cString: $0) }
    }

    /// The band's nodata value, or nil when none is set.
    public func noDataValue(band index: Int) throws -> Double? {
        var set: Int32 = 0
        let value = GDALGetRasterNoDataValue(try band(index), &set)
        return set != 0 ? value : nil
    }

    public func setNoDataValue(_ value: Double, band index: Int) throws {
        CPLErrorReset()
        guard GDALSetRasterNoDataValue(try band(index), value) == CE_None else {
            throw GDALError.last("\(path): cannot set nodata on band \(index)")
        }
    }

    /// Natural block size of a band (GDAL reads whole blocks; aligned windows are cheapest).
    public func blockSize(band index: Int) throws -> (width: Int, height: Int) {
        var w: Int32 = 0, h: Int32 = 0
        GDALGetBlockSize(try band(index), &w, &h)
        return (Int(w), Int(h))
    }

    private func checkWindow(_ window: PixelWindow) throws {
        guard window.width > 0, window.height > 0, window.x >= 0, window.y >= 0,
              window.x + window.width <= width, window.y + window.height <= height else {
            throw GDALError("\(path): window \(window) is outside the \(width)×\(height) raster")
        }
    }

    /// Reads `window` of the given bands (0-based) as float32, band-sequential: `[band][row][col]`.
    public func read(bands: [Int], window: PixelWindow, into buffer: UnsafeMutableBufferPointer<Float>) throws {
        try checkWindow(window)
        for b in bands { _ = try band(b) }
        guard buffer.count >= bands.count * window.pixelCount else {
            throw GDALError("\(path): buffer of \(buffer.count) floats cannot hold \(bands.count) bands of \(window)")
        }
        var bandMap = bands.map { Int32($0 + 1) }
        CPLErrorReset()
        let float = MemoryLayout<Float>.size
        let status = GDALDatasetRasterIO(
            try openHandle(), GF_Read, Int32(window.x), Int32(window.y), Int32(window.width), Int32(window.height),
            buffer.baseAddress, Int32(window.width), Int32(window.height), GDT_Float32,
            Int32(bands.count), &bandMap, Int32(float), Int32(float * window.width), Int32(float * window.pixelCount))
        guard status == CE_None else { throw GDALError.last("\(path): cannot read \(window)") }
    }

    public func read(bands: [Int], window: PixelWindow) throws -> [Float] {
        var values = [Float](repeating: 0, count: bands.count * window.pixelCount)
        try values.withUnsafeMutableBufferPointer { try read(bands: bands, window: window, into: $0) }
        return values
    }

    /// Writes float32 values (row-major) into `window` of one band; GDAL converts to the band's type.
    public func write(band index: Int, window: PixelWindow, values: UnsafeBufferPointer<Float>) throws {
        try write(band: index, window: window, raw: UnsafeRawBufferPointer(values), count: values.count, type: GDT_Float32)
    }

    /// Writes bytes (row-major) into `window` of one band.
    public func write(band index: Int, window: PixelWindow, bytes: UnsafeBufferPointer<UInt8>) throws {
        try write(band: index, window: window, raw: UnsafeRawBufferPointer(bytes), count: bytes.count, type: GDT_Byte)
    }

    private func write(band index: Int, window: PixelWindow, raw: UnsafeRawBufferPointer, count: Int, type: GDALDataType) throws {
        try checkWindow(window)
        guard count >= window.pixelCount else {
            throw GDALError("\(path): \(count) values cannot fill \(window)")
        }
        CPLErrorReset()
        let status = GDALRasterIO(
            try band(index), GF_Write, Int32(window.x), Int32(window.y), Int32(window.width), Int32(window.height),
            UnsafeMutableRawPointer(mutating: raw.baseAddress), Int32(window.width), Int32(window.height), type, 0, 0)
        guard status == CE_None else { throw GDALError.last("\(path): cannot write \(window) of band \(index)") }
    }

    /// Writes block (`x`, `y`) of a band straight to the driver, bypassing the block cache:
    /// `data` holds a whole block (block width × height values of the band's type).
    public func writeBlock(band index: Int, x: Int, y: Int, data: UnsafeRawPointer) throws {
        CPLErrorReset()
        let status = GDALWriteBlock(try band(index), Int32(x), Int32(y), UnsafeMutableRawPointer(mutating: data))
        guard status == CE_None else { throw GDALError.last("\(path): cannot write block \(x), \(y) of band \(index)") }
    }

    /// Flushes and closes; errors while flushing (disk full, I/O) are reported, not lost.
    public func close() throws {
        guard let handle else { return }
        self.handle = nil
        CPLErrorReset()
        GDALFlushCache(handle)
        let flushFailed = CPLGetLastErrorType() == CE_Failure || CPLGetLastErrorType() == CE_Fatal
        let flushError = GDALError.last("\(path): writing failed")
        CPLErrorReset()
        GDALClose(handle)
        if flushFailed { throw flushError }
        if CPLGetLastErrorType() == CE_Failure || CPLGetLastErrorType() == CE_Fatal {
            throw GDALError.last("\(path): closing failed")
        }
    }
}

/// Calls `body` with a NULL-terminated `char**` list (GDAL's CSL form) of `strings`.
func withCStringArray<R>(_ strings: [String], _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> R) -> R {
    guard !strings.isEmpty else { return body(nil) }
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeMutableBufferPointer { body($0.baseAddress) }
}
