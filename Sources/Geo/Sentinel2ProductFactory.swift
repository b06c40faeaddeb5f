import CGDAL
import Foundation

/// Small Sentinel-2 products (SAFE directories or their zips) with the synthetic scene of
/// `SceneFactory`, for tests and demos without a download: JP2 bands written losslessly through
/// GDAL's OpenJPEG driver in the compact SAFE layout (L1C: IMG_DATA/T…_B02.jp2; L2A:
/// IMG_DATA/R10m|R20m/T…_B02_10m.jp2), and the product and tile XML the SENTINEL2 driver reads.
/// Baselines ≥ 04.00 store DN + 1000 (the radiometric offset) and list the offset as the real
/// products do, so a reader that forgets to remove it sees every reflectance 0.1 too bright.
public enum Sentinel2ProductFactory {
    public enum Level: String, Sendable, CaseIterable { case l1c = "L1C", l2a = "L2A" }

    public struct Spec: Sendable {
        public var level: Level = .l2a
        public var baseline = "05.09"
        /// Size on the 10 m grid; a multiple of 2 so the 20 m bands cover it exactly.
        public var width = 480, height = 360
        public var seed: UInt64 = 1
        public var nodataCorner = 0.25
        /// Also pack the product into PRODUCT.zip (the SAFE directory is removed).
        public var zip = false
        public init() {}
    }

    /// The offset a product of `baseline` adds to every valid DN.
    public static func offset(baseline: String) -> Int { Sentinel2Product.hasReflectanceOffset(baseline: baseline) ? 1000 : 0 }

    static let tile = "T30SYJ", sensing = "20230823T105621", generated = "20230823T124759"

    /// The six model bands of `SceneFactory`'s scene, by product band, and the bands written besides.
    static let modelBands = ["B02", "B03", "B04", "B8A", "B11", "B12"]
    static let tenMetre = ["B02", "B03", "B04", "B08"], twentyMetre = ["B05", "B06", "B07", "B8A", "B11", "B12"]

    /// Writes the product into `directory` under its standard name; returns its path (the .SAFE
    /// directory or the .zip).
    @discardableResult
    public static func create(_ spec: Spec, in directory: String) throws -> String {
        guard spec.width >= 2, spec.height >= 2, spec.width % 2 == 0, spec.height % 2 == 0 else {
            throw SceneError("a Sentinel-2 product's 10 m size must be even (its 20 m bands cover it exactly)")
        }
        let level = spec.level.rawValue
        let baselineCode = spec.baseline.replacingOccurrences(of: ".", with: "")
        let name = "S2B_MSI\(level)_\(sensing)_N\(baselineCode)_R008_\(tile)_\(generated)"
        let safe = URL(fileURLWithPath: directory).appendingPathComponent(name + ".SAFE").path
        let granule = "\(level)_\(tile)_A033753_\(sensing)"
        let granulePath = "\(safe)/GRANULE/\(granule)"
        let imageFolder = "\(granulePath)/IMG_DATA"
        try? FileManager.default.removeItem(atPath: safe)
        for folder in spec.level == .l2a ? ["R10m", "R20m"] : [""] {
            try FileManager.default.createDirectory(atPath: imageFolder + (folder.isEmpty ? "" : "/" + folder), withIntermediateDirectories: true)
        }

        // The scene at 10 m, as SceneFactory makes it (DN, nodata 0).
        let scenePath = "\(directory)/.\(name).scene.tif"
        defer { unlink(scenePath) }
        var sceneSpec = SceneFactory.Spec()
        sceneSpec.width = spec.width; sceneSpec.height = spec.height; sceneSpec.seed = spec.seed
        sceneSpec.nodataCorner = spec.nodataCorner; sceneSpec.type = .uint16
        try SceneFactory.create(sceneSpec, at: scenePath)
        let scene = try RasterDataset.open(scenePath)
        guard let transform = scene.geoTransform, let wkt = scene.projectionWKT else { throw SceneError("\(scenePath): not georeferenced") }
        let pixels = try scene.read(bands: Array(0..<6), window: PixelWindow(x: 0, y: 0, width: spec.width, height: spec.height))
        let plane = spec.width * spec.height
        func modelPlane(_ band: String) -> ArraySlice<Float> {
            let index = modelBands.firstIndex(of: band)!
            return pixels[(index * plane)..<((index + 1) * plane)]
        }
        let offset = Float(offset(baseline: spec.baseline))

        var imageFiles: [String] = []
        func writeBand(_ band: String, resolution: Int, values: [Float], isReflectance: Bool) throws {
            let factor = resolution / 10
            let width = spec.width / factor, height = spec.height / factor
            let stored = isReflectance ? values.map { $0 == 0 ? 0 : min(65535, $0 + offset) } : values
            let stem = spec.level == .l2a ? "\(tile)_\(sensing)_\(band)_\(resolution)m" : "\(tile)_\(sensing)_\(band)"
            let relative = spec.level == .l2a ? "IMG_DATA/R\(resolution)m/\(stem)" : "IMG_DATA/\(stem)"
            imageFiles.append("GRANULE/\(granule)/\(relative)")
            var bandTransform = transform.coefficients
            bandTransform[1] *= Double(factor); bandTransform[5] *= Double(factor)
            try writeJP2(stored, width: width, height: height, transform: GeoTransform(bandTransform), wkt: wkt,
                         to: "\(granulePath)/\(relative).jp2")
        }
        for band in tenMetre {
            let values = Array(modelPlane(band == "B08" ? "B8A" : band))
            try writeBand(band, resolution: 10, values: values, isReflectance: true)
        }
        for band in twentyMetre {
            let fine = modelBands.contains(band) ? Array(modelPlane(band)) : Array(modelPlane("B8A")).map { $0 == 0 ? 0 : $0 * 0.8 }
            try writeBand(band, resolution: 20, values: downsample(fine, width: spec.width, height: spec.height), isReflectance: true)
        }
        if spec.level == .l2a {
            // Scene classification: 0 no data, 6 water (dark NIR), 4 vegetation.
            let nir = downsample(Array(modelPlane("B8A")), width: spec.width, height: spec.height)
            try writeBand("SCL", resolution: 20, values: nir.map { $0 == 0 ? 0 : $0 < 1000 ? 6 : 4 }, isReflectance: false)
            // The rest of the 20 m subdataset (aerosol, water vapour, cloud and snow probabilities), constant.
            try writeBand("AOT", resolution: 20, values: nir.map { $0 == 0 ? 0 : 120 }, isReflectance: false)
            try writeBand("WVP", resolution: 20, values: nir.map { $0 == 0 ? 0 : 1500 }, isReflectance: false)
            try FileManager.default.createDirectory(atPath: "\(granulePath)/QI_DATA", withIntermediateDirectories: true)
            var coarse = transform.coefficients
            coarse[1] *= 2; coarse[5] *= 2
            for mask in ["MSK_CLDPRB_20m", "MSK_SNWPRB_20m"] {
                try writeJP2(nir.map { _ in 0 }, width: spec.width / 2, height: spec.height / 2, transform: GeoTransform(coarse), wkt: wkt,
                             to: "\(granulePath)/QI_DATA/\(mask).jp2")
            }
        }

        let (ulx, uly) = (transform.coefficients[0], transform.coefficients[3])
        try productXML(spec: spec, name: name, imageFiles: imageFiles)
            .write(toFile: "\(safe)/MTD_MSI\(level).xml", atomically: true, encoding: .utf8)
        try tileXML(spec: spec, ulx: ulx, uly: uly).write(toFile: "\(granulePath)/MTD_TL.xml", atomically: true, encoding: .utf8)
        guard spec.zip else { return safe }
        let zip = URL(fileURLWithPath: directory).appendingPathComponent(name + ".zip").path
        try pack(safe, into: zip, under: name + ".SAFE")
        try FileManager.default.removeItem(atPath: safe)
        return zip
    }

    /// 2×2 means on the 20 m grid; no data where any of the four is.
    static func downsample(_ values: [Float], width: Int, height: Int) -> [Float] {
        let w = width / 2, h = height / 2
        var out = [Float](repeating: 0, count: w * h)
        for y in 0..<h {
            for x in 0..<w {
                let four = [values[2 * y * width + 2 * x], values[2 * y * width + 2 * x + 1],
                            values[(2 * y + 1) * width + 2 * x], values[(2 * y + 1) * width + 2 * x + 1]]
                out[y * w + x] = four.contains(0) ? 0 : (four.reduce(0, +) / 4).rounded()
            }
        }
        return out
    }

    static func writeJP2(_ values: [Float], width: Int, height: Int, transform: GeoTransform, wkt: String, to path: String) throws {
        let memory = try RasterDataset.create("", width: width, height: height, bands: 1, type: .uint16, driver: "MEM")
        try memory.setGeoTransform(transform)
        try memory.setProjection(wkt: wkt)
        try values.withUnsafeBufferPointer { try memory.write(band: 0, window: PixelWindow(x: 0, y: 0, width: width, height: height), values: $0) }
        try memory.copy(to: path, driver: "JP2OpenJPEG", options: ["REVERSIBLE=YES", "QUALITY=100", "RESOLUTIONS=1"])
    }

    /// Copies every file below `folder` into a new zip through GDAL's /vsizip/ writer.
    static func pack(_ folder: String, into zip: String, under root: String) throws {
        unlink(zip)
        guard let walker = FileManager.default.enumerator(atPath: folder) else { throw SceneError("\(folder): cannot list") }
        let files = walker.compactMap { $0 as? String }.filter {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: "\(folder)/\($0)", isDirectory: &isDirectory) && !isDirectory.boolValue
        }.sorted()
        for file in files {
            guard let data = FileManager.default.contents(atPath: "\(folder)/\(file)") else { throw SceneError("\(folder)/\(file): cannot read") }
            guard let handle = VSIFOpenL("/vsizip/\(zip)/\(root)/\(file)", "wb") else { throw GDALError.last("\(zip): cannot add \(file)") }
            let written = data.withUnsafeBytes { VSIFWriteL($0.baseAddress, 1, data.count, handle) }
            guard VSIFCloseL(handle) == 0, written == data.count else { throw GDALError.last("\(zip): cannot write \(file)") }
        }
    }

    static func productXML(spec: Spec, name: String, imageFiles: [String]) -> String {
        let level = spec.level.rawValue
        let root = spec.level == .l2a ? "Level-2A_User_Product" : "Level-1C_User_Product"
        let offsets = offset(baseline: spec.baseline) == 0 ? "" : {
            let (list, item) = spec.level == .l2a ? ("BOA_ADD_OFFSET_VALUES_LIST", "BOA_ADD_OFFSET") : ("Radiometric_Offset_List", "RADIO_ADD_OFFSET")
            return "<\(list)>" + (0..<13).map { "<\(item) band_id=\"\($0)\">-1000</\(item)>" }.joined() + "</\(list)>"
        }()
        let quantification = spec.level == .l2a
            ? "<QUANTIFICATION_VALUES_LIST><BOA_QUANTIFICATION_VALUE unit=\"none\">10000</BOA_QUANTIFICATION_VALUE><AOT_QUANTIFICATION_VALUE unit=\"none\">1000.0</AOT_QUANTIFICATION_VALUE><WVP_QUANTIFICATION_VALUE unit=\"cm\">1000.0</WVP_QUANTIFICATION_VALUE></QUANTIFICATION_VALUES_LIST>"
            : "<QUANTIFICATION_VALUE unit=\"none\">10000</QUANTIFICATION_VALUE>"
        let spectral = Sentinel2Product.bandIDs.enumerated().map { id, band in
            let resolution = ["B2", "B3", "B4", "B8"].contains(band) ? 10 : ["B1", "B9", "B10"].contains(band) ? 60 : 20
            return "<Spectral_Information bandId=\"\(id)\" physicalBand=\"\(band)\"><RESOLUTION>\(resolution)</RESOLUTION></Spectral_Information>"
        }.joined()
        return """
        <?xml version="1.0" encoding="UTF-8" standalone="no"?>
        <n1:\(root) xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-\(level.dropFirst()).xsd">
          <n1:General_Info>
            <Product_Info>
              <PRODUCT_START_TIME>2023-08-23T10:56:21.024Z</PRODUCT_START_TIME>
              <PRODUCT_STOP_TIME>2023-08-23T10:56:21.024Z</PRODUCT_STOP_TIME>
              <PRODUCT_URI>\(name).SAFE</PRODUCT_URI>
              <PROCESSING_LEVEL>Level-\(level.dropFirst())</PROCESSING_LEVEL>
              <PRODUCT_TYPE>S2MSI\(level.dropFirst())</PRODUCT_TYPE>
              <PROCESSING_BASELINE>\(spec.baseline)</PROCESSING_BASELINE>
              <GENERATION_TIME>2023-08-23T12:47:59.000000Z</GENERATION_TIME>
              <Datatake datatakeIdentifier="GS2B_\(sensing)_033753_N\(spec.baseline)">
                <SPACECRAFT_NAME>Sentinel-2B</SPACECRAFT_NAME>
                <DATATAKE_TYPE>INS-NOBS</DATATAKE_TYPE>
                <DATATAKE_SENSING_START>2023-08-23T10:56:21.024Z</DATATAKE_SENSING_START>
                <SENSING_ORBIT_NUMBER>8</SENSING_ORBIT_NUMBER>
                <SENSING_ORBIT_DIRECTION>DESCENDING</SENSING_ORBIT_DIRECTION>
              </Datatake>
              <Query_Options completeSingleTile="true"><PRODUCT_FORMAT>SAFE_COMPACT</PRODUCT_FORMAT></Query_Options>
              <Product_Organisation>
                <Granule_List>
                  <Granule datastripIdentifier="S2B_OPER_MSI_\(level)_DS_2BPS_\(generated)_S\(sensing)_N\(spec.baseline)" granuleIdentifier="S2B_OPER_MSI_\(level)_TL_2BPS_\(generated)_A033753_\(tile)_N\(spec.baseline)" imageFormat="JPEG2000">
                    \(imageFiles.map { "<IMAGE_FILE>\($0)</IMAGE_FILE>" }.joined(separator: "\n            "))
                  </Granule>
                </Granule_List>
              </Product_Organisation>
            </Product_Info>
            <Product_Image_Characteristics>
              <Special_Values><SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT><SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX></Special_Values>
              <Special_Values><SPECIAL_VALUE_TEXT>SATURATED</SPECIAL_VALUE_TEXT><SPECIAL_VALUE_INDEX>65535</SPECIAL_VALUE_INDEX></Special_Values>
              \(quantification)
              \(offsets)
              <Spectral_Information_List>\(spectral)</Spectral_Information_List>
            </Product_Image_Characteristics>
          </n1:General_Info>
        </n1:\(root)>

        """
    }

    static func tileXML(spec: Spec, ulx: Double, uly: Double) -> String {
        let level = spec.level.rawValue
        let grids = [10, 20, 60].map { resolution -> String in
            let factor = resolution / 10
            return "<Size resolution=\"\(resolution)\"><NROWS>\(spec.height / factor)</NROWS><NCOLS>\(spec.width / factor)</NCOLS></Size>"
        }.joined() + [10, 20, 60].map { resolution in
            "<Geoposition resolution=\"\(resolution)\"><ULX>\(ulx)</ULX><ULY>\(uly)</ULY><XDIM>\(resolution)</XDIM><YDIM>-\(resolution)</YDIM></Geoposition>"
        }.joined()
        return """
        <?xml version="1.0" encoding="UTF-8" standalone="no"?>
        <n1:Level-\(level.dropFirst())_Tile_ID xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-\(level.dropFirst())_Tile_Metadata.xsd">
          <n1:General_Info>
            <TILE_ID metadataLevel="Brief">S2B_OPER_MSI_\(level)_TL_2BPS_\(generated)_A033753_\(tile)_N\(spec.baseline)</TILE_ID>
            <SENSING_TIME metadataLevel="Standard">2023-08-23T11:05:35.271949Z</SENSING_TIME>
          </n1:General_Info>
          <n1:Geometric_Info>
            <Tile_Geocoding metadataLevel="Brief">
              <HORIZONTAL_CS_NAME>WGS84 / UTM zone 30N</HORIZONTAL_CS_NAME>
              <HORIZONTAL_CS_CODE>EPSG:32630</HORIZONTAL_CS_CODE>
              \(grids)
            </Tile_Geocoding>
          </n1:Geometric_Info>
        </n1:Level-\(level.dropFirst())_Tile_ID>

        """
    }
}
