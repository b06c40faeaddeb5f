import CGDAL
import Foundation

/// Polygons of a finished mask (`--vector`): every connected run of one non-zero class value
/// becomes a polygon (GDALPolygonize, 4-connected, pixel-edge boundaries) in the mask's CRS, with
/// its class value and its area in CRS units². GDAL polygonizes into a scratch GeoPackage on disk
/// and the features are streamed from there into the requested format, so memory does not grow
/// with the number of polygons (FlatGeobuf, for one, can only be written sequentially).
public enum WaterPolygons {
    /// The OGR driver for an output name, from its extension.
    public static func driver(for path: String) -> String? {
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "gpkg": return "GPKG"
        case "fgb": return "FlatGeobuf"
        case "geojson", "json": return "GeoJSON"
        default: return nil
        }
    }

    public struct Summary: Sendable { public let polygons: Int; public let area: Double }

    /// Writes the polygons of `maskPath` to `outputPath` (under a temporary name, renamed when
    /// complete; nothing is left at either name on failure).
    public static func write(maskPath: String, to outputPath: String) throws -> Summary {
        guard let driverName = driver(for: outputPath) else {
            throw OutputError("\(outputPath): the vector output must end in .gpkg, .fgb or .geojson")
        }
        let directory = try OutputRaster.checkDirectory(of: outputPath)
        let name = URL(fileURLWithPath: outputPath).lastPathComponent
        let scratch = directory + "/.\(name).polygons-\(getpid()).gpkg"
        let temporary = directory + "/.\(name).partial-\(getpid()).\(URL(fileURLWithPath: outputPath).pathExtension)"
        defer { unlink(scratch) }
        do {
            try polygonize(maskPath, into: scratch)
            let summary = try copyWithArea(from: scratch, to: temporary, driver: driverName)
            guard rename(temporary, outputPath) == 0 else {
                throw OutputError("\(outputPath): cannot move the finished polygons into place: \(String(cString: strerror(errno)))")
            }
            return summary
        } catch let error as OutputError {
            unlink(temporary)
            throw error
        } catch {
            unlink(temporary)
            throw OutputError.writeFailed(temporary, "cannot write the polygons (\(error))", errorNumber: nil)
        }
    }

    static func create(_ path: String, driver driverName: String) throws -> GDALDatasetH {
        guard let driver = GDALGetDriverByName(driverName) else { throw GDALError("GDAL has no driver named \(driverName)") }
        CPLErrorReset()
        guard let dataset = GDALCreate(driver, path, 0, 0, 0, GDT_Unknown, nil) else {
            throw GDALError.last("\(path): cannot create a \(driverName) dataset")
        }
        return dataset
    }

    static func makeLayer(in dataset: GDALDatasetH, wkt: String?, path: String) throws -> OGRLayerH {
        let reference = wkt.flatMap { text in OSRNewSpatialReference(text) }
        defer { if let reference { OSRRelease(reference) } }
        if let reference { OSRSetAxisMappingStrategy(reference, OAMS_TRADITIONAL_GIS_ORDER) }
        CPLErrorReset()
        guard let layer = GDALDatasetCreateLayer(dataset, "water", reference, wkbPolygon, nil) else {
            throw GDALError.last("\(path): cannot create the layer")
        }
        for (field, type) in [("class", OFTInteger), ("area", OFTReal)] {
            let definition = OGR_Fld_Create(field, type)
            defer { OGR_Fld_Destroy(definition) }
            guard OGR_L_CreateField(layer, definition, 1) == OGRERR_NONE else { throw GDALError.last("\(path): cannot create field \(field)") }
        }
        return layer
    }

    /// GDALPolygonize of band 1 with itself as the mask: zero (land and nodata) gives no polygon.
    static func polygonize(_ maskPath: String, into scratch: String) throws {
        let mask = try RasterDataset.open(maskPath)
        let band = try mask.band(0)
        let dataset = try create(scratch, driver: "GPKG")
        defer { GDALClose(dataset) }
        let layer = try makeLayer(in: dataset, wkt: mask.projectionWKT, path: scratch)
        // One transaction: GeoPackage commits per feature otherwise.
        _ = OGR_L_StartTransaction(layer)
        CPLErrorReset()
        guard GDALPolygonize(band, band, layer, 0, nil, nil, nil) == CE_None else {
            throw GDALError.last("\(maskPath): polygonizing failed")
        }
        guard OGR_L_CommitTransaction(layer) == OGRERR_NONE else { throw GDALError.last("\(scratch): cannot commit the polygons") }
    }

    /// Streams the scratch features into `path`, each with its area.
    static func copyWithArea(from scratch: String, to path: String, driver: String) throws -> Summary {
        CPLErrorReset()
        guard let source = GDALOpenEx(scratch, UInt32(GDAL_OF_VECTOR | GDAL_OF_READONLY), nil, nil, nil),
              let sourceLayer = GDALDatasetGetLayer(source, 0) else {
            throw GDALError.last("\(scratch): cannot reopen the polygons")
        }
        defer { GDALClose(source) }
        let wkt: String? = OGR_L_GetSpatialRef(sourceLayer).flatMap { reference in
            var text: UnsafeMutablePointer<CChar>? = nil
            guard OSRExportToWkt(reference, &text) == OGRERR_NONE, let text else { return nil }
            defer { VSIFree(text) }
            return String(cString: text)
        }
        let output = try create(path, driver: driver)
        var closed = false
        defer { if !closed { GDALClose(output) } }
        let layer = try makeLayer(in: output, wkt: wkt, path: path)
        let definition = OGR_L_GetLayerDefn(layer)
        _ = OGR_L_StartTransaction(layer)
        var polygons = 0, total = 0.0
        OGR_L_ResetReading(sourceLayer)
        while let feature = OGR_L_GetNextFeature(sourceLayer) {
            defer { OGR_F_Destroy(feature) }
            guard let geometry = OGR_F_GetGeometryRef(feature) else { continue }
            let area = OGR_G_Area(geometry)
            let copy = OGR_F_Create(definition)
            defer { OGR_F_Destroy(copy) }
            OGR_F_SetFieldInteger(copy, 0, OGR_F_GetFieldAsInteger(feature, 0))
            OGR_F_SetFieldDouble(copy, 1, area)
            _ = OGR_F_SetGeometry(copy, geometry)
            guard OGR_L_CreateFeature(layer, copy) == OGRERR_NONE else { throw GDALError.last("\(path): cannot write polygon \(polygons)") }
            polygons += 1
            total += area
        }
        guard OGR_L_CommitTransaction(layer) == OGRERR_NONE else { throw GDALError.last("\(path): cannot commit the polygons") }
        closed = true
        CPLErrorReset()
        GDALClose(output)
        if CPLGetLastErrorType() == CE_Failure { throw GDALError.last("\(path): closing failed") }
        return Summary(polygons: polygons, area: total)
    }
}
