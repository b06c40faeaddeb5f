import Foundation
import Geo
import Testing

/// The warning names exactly what is missing and what the output keeps, for each incomplete kind
/// of georeferencing (whole-raster cases against `gdaltransform`: IntegrationTests/GeoreferencingTests).
@Suite struct GeoreferencingWarningTests {
    static let corners = [
        GroundControlPoint(pixel: 0, line: 0, x: 500_000, y: 5_000_000),
        GroundControlPoint(pixel: 100, line: 0, x: 503_000, y: 5_000_000),
        GroundControlPoint(pixel: 0, line: 100, x: 500_000, y: 4_997_000),
    ]

    @Test func placedScenesHaveNoWarning() throws {
        let utm = try wktForEPSG(32633)
        #expect(Georeferencing(geoTransform: GeoTransform([500_000, 30, 0, 5_000_000, 0, -30]), projectionWKT: utm).warning(width: 100, height: 100) == nil)
        let gcps = Georeferencing(gcps: Self.corners, gcpProjectionWKT: utm)
        #expect(gcps.warning(width: 100, height: 100) == nil)
        // gdaltransform -s_srs EPSG:32633 -t_srs EPSG:4326 of (501500, 4998500), the centre by the GCPs
        let centre = try #require(try gcps.centreLonLat(width: 100, height: 100))
        #expect(abs(centre.lon - 15.0190783) < 1e-6 && abs(centre.lat - 45.1399730) < 1e-6, "\(centre)")
    }

    @Test func eachMissingPieceIsNamed() throws {
        let utm = try wktForEPSG(32633)
        #expect(Georeferencing.none.warning(width: 10, height: 10)
                == "has no geotransform or GCPs: the output will have no georeferencing either; the model is given no location")
        #expect(Georeferencing(projectionWKT: utm).warning(width: 10, height: 10)
                == "has no geotransform or GCPs: the output keeps its CRS; the model is given no location")
        #expect(Georeferencing(gcps: Self.corners).warning(width: 100, height: 100)
                == "has no CRS for its GCPs: the output keeps its 3 GCPs; the model is given no location")
        let collinear = [0.0, 50, 100].map { GroundControlPoint(pixel: $0, line: $0, x: 500_000 + 30 * $0, y: 5_000_000 - 30 * $0) }
        #expect(Georeferencing(gcps: collinear, gcpProjectionWKT: utm).warning(width: 100, height: 100)
                == "has no GCPs that fit a transform (3 given, collinear or fewer than 3): the output keeps its 3 GCPs; the model is given no location")
        #expect(Georeferencing(rpc: ["LINE_OFF=1"]).warning(width: 10, height: 10)
                == "has no geotransform or GCPs: the output keeps its RPCs; the model is given no location")
    }
}
