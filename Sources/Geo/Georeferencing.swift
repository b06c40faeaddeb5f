import CGDAL
import Foundation

/// A ground control point: pixel/line in the raster and its position in the GCPs' CRS.
public struct GroundControlPoint: Equatable, Sendable {
    public var id: String, info: String
    public var pixel: Double, line: Double
    public var x: Double, y: Double, z: Double
    public init(id: String = "", info: String = "", pixel: Double, line: Double, x: Double, y: Double, z: Double = 0) {
        self.id = id; self.info = info; self.pixel = pixel; self.line = line; self.x = x; self.y = y; self.z = z
    }
}

/// Everything that places a raster on the ground, copied unchanged from the input to every output
/// (outputs share the input's pixel grid): geotransform and CRS, GCPs with their CRS, and the RPC
/// metadata domain (kept as GDAL's key/value pairs so nothing is lost in a round trip).
public struct Georeferencing: Equatable, Sendable {
    public var geoTransform: GeoTransform?
    public var projectionWKT: String?
    public var gcps: [GroundControlPoint] = []
    public var gcpProjectionWKT: String?
    /// The "RPC" metadata domain ("LINE_OFF=…", "SAMP_NUM_COEFF=…", …), empty when there is none.
    public var rpc: [String] = []

    public init(geoTransform: GeoTransform? = nil, projectionWKT: String? = nil, gcps: [GroundControlPoint] = [],
                gcpProjectionWKT: String? = nil, rpc: [String] = []) {
        self.geoTransform = geoTransform; self.projectionWKT = projectionWKT
        self.gcps = gcps; self.gcpProjectionWKT = gcpProjectionWKT; self.rpc = rpc
    }

    public static let none = Georeferencing()

    /// Longitude and latitude (degrees, WGS 84) of the centre of a `width`×`height` raster from the
    /// best georeferencing there is: the geotransform with its CRS (the bounds' centre, as
    /// rasterio's `lnglat()`), else the GCPs with theirs (a least-squares affine fit), else the RPCs
    /// (the centre pixel through the RPC model at height 0); nil with none of them.
    public func centreLonLat(width: Int, height: Int) throws -> (lon: Double, lat: Double)? {
        if let transform = geoTransform, let wkt = projectionWKT {
            return try transformToWGS84(centreOf: transform, width: width, height: height, wkt: wkt)
        }
        if let fitted = gcpTransform, let wkt = gcpProjectionWKT {
            return try transformToWGS84(centreOf: fitted, width: width, height: height, wkt: wkt)
        }
        if !rpc.isEmpty { return try rpcLonLat(pixel: Double(width) / 2, line: Double(height) / 2) }
        return nil
    }

    /// The affine transform that fits the GCPs best (GDAL's own fit, approximate allowed); nil
    /// with fewer than three or when they are collinear.
    var gcpTransform: GeoTransform? {
        guard gcps.count >= 3 else { return nil }
        var coefficients = [Double](repeating: 0, count: 6)
        let fitted = withGDALGCPs { GDALGCPsToGeoTransform(Int32(gcps.count), $0, &coefficients, 1) }
        return fitted != 0 ? GeoTransform(coefficients) : nil
    }

    /// Where pixel (`pixel`, `line`) lies by the RPC model (RPCs map to WGS 84 longitude/latitude).
    func rpcLonLat(pixel: Double, line: Double) throws -> (lon: Double, lat: Double) {
        var info = GDALRPCInfoV2()
        let extracted = withCStringArray(rpc) { GDALExtractRPCInfoV2($0, &info) }
        guard extracted != 0 else { throw GDALError.last("the RPC metadata is incomplete") }
        guard let transformer = GDALCreateRPCTransformerV2(&info, 0, 0, nil) else {
            throw GDALError.last("cannot make an RPC transformer")
        }
        defer { GDALDestroyRPCTransformer(transformer) }
        var x = pixel, y = line, z = 0.0
        var ok: Int32 = 0
        guard GDALRPCTransform(transformer, 0, 1, &x, &y, &z, &ok) != 0, ok != 0 else {
            throw GDALError.last("the RPC model does not place pixel (\(pixel), \(line))")
        }
        return (x, y)
    }

    /// What a user should know when some georeferencing is missing: nil when the raster has a
    /// geotransform with a CRS (or GCPs with theirs); otherwise exactly what is absent, what the
    /// output keeps, and what the model is given as location.
    public func warning(width: Int, height: Int) -> String? {
        if geoTransform != nil, projectionWKT != nil { return nil }
        let fitted = gcpTransform
        if !gcps.isEmpty, gcpProjectionWKT != nil, fitted != nil { return nil }
        var kept: [String] = []
        if geoTransform != nil { kept.append("its geotransform") }
        if projectionWKT != nil { kept.append("its CRS") }
        if !gcps.isEmpty { kept.append("its \(gcps.count) GCPs") }
        if !rpc.isEmpty { kept.append("its RPCs") }
        var missing: [String] = []
        if geoTransform == nil, gcps.isEmpty { missing.append("geotransform or GCPs") }
        if geoTransform != nil, projectionWKT == nil { missing.append("CRS for its geotransform") }
        if !gcps.isEmpty, gcpProjectionWKT == nil { missing.append("CRS for its GCPs") }
        if !gcps.isEmpty, gcpProjectionWKT != nil, fitted == nil { missing.append("GCPs that fit a transform (\(gcps.count) given, collinear or fewer than 3)") }
        let location: String
        if let centre = try? centreLonLat(width: width, height: height) {
            location = String(format: "the model's location comes from %@ (%.5f°, %.5f°)", rpc.isEmpty ? "the georeferencing" : "its RPCs", centre.lon, centre.lat)
        } else {
            location = "the model is given no location"
        }
        let output = kept.isEmpty ? "the output will have no georeferencing either" : "the output keeps \(kept.joined(separator: ", "))"
        return "has no \(missing.joined(separator: " and ")): \(output); \(location)"
    }

    func withGDALGCPs<T>(_ body: (UnsafePointer<GDAL_GCP>?) -> T) -> T {
        let ids = gcps.map { strdup($0.id) }, infos = gcps.map { strdup($0.info) }
        defer { ids.forEach { free($0) }; infos.forEach { free($0) } }
        let list = gcps.indices.map { i in
            GDAL_GCP(pszId: ids[i], pszInfo: infos[i], dfGCPPixel: gcps[i].pixel, dfGCPLine: gcps[i].line,
                     dfGCPX: gcps[i].x, dfGCPY: gcps[i].y, dfGCPZ: gcps[i].z)
        }
        return list.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}

extension RasterDataset {
    /// The raster's georeferencing, whatever kinds it has.
    public var georeferencing: Georeferencing {
        guard let handle = try? openHandle() else { return .none }
        var result = Georeferencing(geoTransform: geoTransform, projectionWKT: projectionWKT)
        let count = Int(GDALGetGCPCount(handle))
        if count > 0, let points = GDALGetGCPs(handle) {
            result.gcps = (0..<count).map { i in
                let p = points[i]
                return GroundControlPoint(id: p.pszId.map { String(cString: $0) } ?? "", info: p.pszInfo.map { String(cString: $0) } ?? "",
                                          pixel: p.dfGCPPixel, line: p.dfGCPLine, x: p.dfGCPX, y: p.dfGCPY, z: p.dfGCPZ)
            }
            if let wkt = GDALGetGCPProjection(handle).map({ String(cString: $0) }), !wkt.isEmpty { result.gcpProjectionWKT = wkt }
        }
        result.rpc = metadataLines(domain: "RPC")
        return result
    }

    /// Gives the raster `georeferencing` (a new dataset: GeoTIFF keeps a geotransform or GCPs, not both).
    public func setGeoreferencing(_ georeferencing: Georeferencing) throws {
        if let transform = georeferencing.geoTransform { try setGeoTransform(transform) }
        if let wkt = georeferencing.projectionWKT { try setProjection(wkt: wkt) }
        let handle = try openHandle()
        if !georeferencing.gcps.isEmpty {
            CPLErrorReset()
            let status = georeferencing.withGDALGCPs {
                GDALSetGCPs(handle, Int32(georeferencing.gcps.count), $0, georeferencing.gcpProjectionWKT ?? "")
            }
            guard status == CE_None else { throw GDALError.last("\(path): cannot set GCPs") }
        }
        if !georeferencing.rpc.isEmpty {
            CPLErrorReset()
            let status = withCStringArray(georeferencing.rpc) { GDALSetMetadata(handle, $0, "RPC") }
            guard status == CE_None else { throw GDALError.last("\(path): cannot set RPC metadata") }
        }
    }

    /// Longitude and latitude of the raster's centre from its best georeferencing (see
    /// `Georeferencing.centreLonLat`); nil without any.
    public func centreLonLat() throws -> (lon: Double, lat: Double)? {
        try georeferencing.centreLonLat(width: width, height: height)
    }
}
