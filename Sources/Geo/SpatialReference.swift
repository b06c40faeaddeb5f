import CGDAL
import Foundation

/// Longitude and latitude of the centre of a `width`×`height` raster placed by `transform` in the
/// CRS `wkt`: the bounds' centre transformed, as rasterio's `DatasetBase.lnglat()`.
func transformToWGS84(centreOf transform: GeoTransform, width: Int, height: Int, wkt: String) throws -> (lon: Double, lat: Double) {
    let corners = [transform.apply(column: 0, row: 0), transform.apply(column: Double(width), row: Double(height))]
    return try transformToWGS84(x: (corners[0].x + corners[1].x) / 2, y: (corners[0].y + corners[1].y) / 2, wkt: wkt)
}

/// Transforms one point from the CRS given as WKT to (longitude, latitude) in EPSG:4326.
public func transformToWGS84(x: Double, y: Double, wkt: String) throws -> (lon: Double, lat: Double) {
    _ = GDALRuntime.ready
    guard let source = OSRNewSpatialReference(nil), let target = OSRNewSpatialReference(nil) else {
        throw GDALError("cannot allocate spatial references")
    }
    defer { OSRDestroySpatialReference(source); OSRDestroySpatialReference(target) }
    CPLErrorReset()
    guard OSRSetFromUserInput(source, wkt) == OGRERR_NONE else { throw GDALError.last("unreadable CRS") }
    guard OSRImportFromEPSG(target, 4326) == OGRERR_NONE else { throw GDALError.last("EPSG:4326 unavailable (GDAL data missing?)") }
    // x = longitude, y = latitude whatever the CRS's own axis order (rasterio's traditional GIS order).
    OSRSetAxisMappingStrategy(source, OAMS_TRADITIONAL_GIS_ORDER)
    OSRSetAxisMappingStrategy(target, OAMS_TRADITIONAL_GIS_ORDER)
    guard let transform = OCTNewCoordinateTransformation(source, target) else {
        throw GDALError.last("no transformation from the raster's CRS to WGS 84")
    }
    defer { OCTDestroyCoordinateTransformation(transform) }
    var px = x, py = y, pz = 0.0
    guard OCTTransform(transform, 1, &px, &py, &pz) != 0 else { throw GDALError.last("cannot transform (\(x), \(y)) to WGS 84") }
    return (px, py)
}

/// The WKT of an EPSG coordinate reference system (e.g. 32633 for UTM 33N).
public func wktForEPSG(_ code: Int) throws -> String {
    _ = GDALRuntime.ready
    guard let reference = OSRNewSpatialReference(nil) else { throw GDALError("cannot allocate a spatial reference") }
    defer { OSRDestroySpatialReference(reference) }
    CPLErrorReset()
    guard OSRImportFromEPSG(reference, Int32(code)) == OGRERR_NONE else { throw GDALError.last("EPSG:\(code) is unknown") }
    var text: UnsafeMutablePointer<CChar>? = nil
    guard OSRExportToWkt(reference, &text) == OGRERR_NONE, let text else { throw GDALError.last("cannot export EPSG:\(code) as WKT") }
    defer { VSIFree(text) }
    return String(cString: text)
}
