import CGDAL
import Foundation

/// A Sentinel-2 L1C or L2A product (a SAFE directory, its zip, or its MTD_MSIL1C/MTD_MSIL2A
/// XML) as one raster of the model's bands: GDAL's SENTINEL2 driver opens the product, each band
/// comes from the finest subdataset that has it (10 m, else 20 m, else 60 m), coarser bands are
/// repeated onto the 10 m grid (nearest, as Earth Engine exported Sen1Floods11's chips), and the
/// reflectance offset of processing baseline ≥ 04.00 is removed, all in a VRT: the rest of the
/// pipeline (validity, tiles, workers reading their own windows) sees an ordinary raster in DN
/// of the old convention (reflectance × 10000, nodata where the product holds 0).
public struct Sentinel2Product: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// Where a model band comes from.
    public struct Source: Sendable, Equatable {
        /// The model's band name (BLUE, …) and the product's (B2, B8A, …).
        public let modelBand: String, productBand: String
        /// The subdataset (a GDAL open string) and the band's 1-based index in it.
        public let subdataset: String, band: Int
        /// Metres per pixel of the subdataset, and its size.
        public let resolution: Int, width: Int, height: Int
        /// Added to every valid DN (the product's RADIO_ADD_OFFSET / BOA_ADD_OFFSET, 0 before 04.00).
        public let offset: Double
    }

    public let input: String
    /// "Level-1C" or "Level-2A", and the processing baseline ("05.09").
    public let level: String, baseline: String
    /// DN per unit reflectance (10000 in every product so far).
    public let quantification: Double
    public let sources: [Source]
    /// The output grid: the finest resolution's size, geotransform and CRS.
    public let width: Int, height: Int
    public let geoTransform: GeoTransform
    public let projectionWKT: String

    /// Bands of the product in the order of the bandId attributes of its metadata.
    static let bandIDs = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]

    /// True when `input` is a product rather than a raster or a folder of band files: a directory
    /// holding an MTD_MSIL1C/MTD_MSIL2A XML (or named *.SAFE), such an XML itself, or a zip
    /// named like a product (S2A_MSIL2A_….zip).
    public static func isProduct(_ input: String) -> Bool {
        let name = URL(fileURLWithPath: input).lastPathComponent.uppercased()
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory)
        if exists, isDirectory.boolValue {
            return name.hasSuffix(".SAFE") || metadataFile(inDirectory: input) != nil
        }
        if isMetadataName(name) { return true }
        return name.hasSuffix(".ZIP") && name.hasPrefix("S2") && (name.contains("_MSIL1C_") || name.contains("_MSIL2A_"))
    }

    /// A product metadata file's name (compact MTD_MSIL1C/MTD_MSIL2A or the older …_MTD_SAFL1C_…).
    static func isMetadataName(_ fileName: String) -> Bool {
        let name = fileName.uppercased()
        return name.hasSuffix(".XML") && (name.hasPrefix("MTD_MSIL1C") || name.hasPrefix("MTD_MSIL2A")
            || name.contains("_MTD_SAFL1C_") || name.contains("_MTD_SAFL2A_"))
    }

    static func metadataFile(inDirectory directory: String) -> String? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
        return names.sorted().first(where: isMetadataName).map { URL(fileURLWithPath: directory).appendingPathComponent($0).path }
    }

    /// Products of processing baseline 04.00 and later store DN + 1000 (a radiometric offset).
    public static func hasReflectanceOffset(baseline: String) -> Bool {
        baseline.compare("04.00", options: .numeric) != .orderedAscending
    }

    /// Opens the product and decides where each of `modelBands` (BLUE, NIR_NARROW, … or B02, B8A, …)
    /// comes from. `warn` hears about a baseline ≥ 04.00 product without an offset list.
    public static func open(_ input: String, modelBands: [String], warn: (String) -> Void = { _ in }) throws -> Sentinel2Product {
        let absolute = input.hasPrefix("/") ? input : FileManager.default.currentDirectoryPath + "/" + input
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory) else { throw Failure("\(input): no such file or directory") }
        var name = absolute
        if isDirectory.boolValue {
            guard let file = metadataFile(inDirectory: absolute) else { throw Failure("\(input): holds no MTD_MSIL1C.xml or MTD_MSIL2A.xml") }
            name = file
        }
        let product: RasterDataset
        do { product = try RasterDataset.open(name: name) } catch { throw Failure("\(input): not a Sentinel-2 product GDAL's SENTINEL2 driver can read (\(error))") }
        let general = product.metadata()
        let level = general["PROCESSING_LEVEL"] ?? ""
        guard level == "Level-1C" || level == "Level-2A" else {
            throw Failure("\(input): a \(level.isEmpty ? "product without a processing level" : level) product; L1C and L2A are read")
        }
        let baseline = general["PROCESSING_BASELINE"] ?? ""
        let subdatasets = product.metadata(domain: "SUBDATASETS")
        var names: [String] = []
        while let next = subdatasets["SUBDATASET_\(names.count + 1)_NAME"] { names.append(next) }
        // One UTM zone: products across a zone boundary (old multi-tile L1C) have a subdataset per zone.
        let grids = names.filter { !$0.contains(":TCI:") }
        let zones = Set(grids.compactMap { $0.split(separator: ":").last.map(String.init) })
        guard zones.count == 1, let xml = grids.first.flatMap(metadataPath(ofSubdataset:)) else {
            throw Failure("\(input): \(zones.isEmpty ? "has no image subdatasets" : "spans several UTM zones (\(zones.sorted().joined(separator: ", ")))"); give one tile's product")
        }
        let characteristics = try Sentinel2Metadata(xml: xml)
        var offsets = characteristics.offsets
        if offsets.isEmpty, hasReflectanceOffset(baseline: baseline) {
            offsets = Dictionary(uniqueKeysWithValues: bandIDs.map { ($0, -1000) })
            warn("\(input): processing baseline \(baseline) but no RADIO_ADD_OFFSET/BOA_ADD_OFFSET list in \(URL(fileURLWithPath: xml).lastPathComponent); removing ESA's documented offset of −1000")
        }
        let quantification = characteristics.quantification ?? 10000

        // Each model band from the finest subdataset that has it.
        var byResolution: [(resolution: Int, name: String, raster: RasterDataset)] = []
        for grid in grids {
            let parts = grid.split(separator: ":")
            guard parts.count >= 3, let metres = Int(parts[parts.count - 2].dropLast()) else { continue }
            byResolution.append((metres, grid, try RasterDataset.open(name: grid)))
        }
        byResolution.sort { $0.resolution < $1.resolution }
        guard let finest = byResolution.first, let transform = finest.raster.geoTransform, let wkt = finest.raster.projectionWKT else {
            throw Failure("\(input): its subdatasets have no georeferencing")
        }
        var sources: [Source] = []
        for modelBand in modelBands {
            let wanted = productBandName(modelBand)
            var found: Source?
            search: for (resolution, grid, raster) in byResolution {
                for index in 0..<raster.bandCount where try raster.metadataItem("BANDNAME", band: index) == wanted {
                    found = Source(modelBand: modelBand, productBand: wanted, subdataset: grid, band: index + 1, resolution: resolution,
                                   width: raster.width, height: raster.height, offset: offsets[wanted] ?? 0)
                    break search
                }
            }
            guard let found else { throw Failure("\(input): has no band \(wanted) for the model's band \(modelBand)") }
            guard finest.raster.width * finest.resolution == found.width * found.resolution,
                  finest.raster.height * finest.resolution == found.height * found.resolution else {
                throw Failure("\(input): band \(wanted)'s \(found.width)×\(found.height) at \(found.resolution) m does not cover the \(finest.raster.width)×\(finest.raster.height) grid at \(finest.resolution) m")
            }
            try characteristics.checkImageFile(of: found, productFolder: URL(fileURLWithPath: xml).deletingLastPathComponent().path, input: input)
            sources.append(found)
        }
        return Sentinel2Product(input: input, level: level, baseline: baseline, quantification: quantification, sources: sources,
                                width: finest.raster.width, height: finest.raster.height, geoTransform: transform, projectionWKT: wkt)
    }

    /// The product's name of a model band: B02 → B2 (the driver's BANDNAME), BLUE → B2, B8A stays.
    public static func productBandName(_ modelBand: String) -> String {
        let token = BandStack.sentinel2[modelBand.uppercased()] ?? modelBand.uppercased()
        guard token.hasPrefix("B"), token.count == 3, token.dropFirst().first == "0" else { return token }
        return "B" + token.dropFirst(2)
    }

    /// `SENTINEL2_L2A:/path/MTD_MSIL2A.xml:10m:EPSG_32630` → `/path/MTD_MSIL2A.xml` (also inside /vsizip/).
    public static func metadataPath(ofSubdataset name: String) -> String? {
        guard let first = name.firstIndex(of: ":") else { return nil }
        let parts = name[name.index(after: first)...].split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count >= 3 else { return nil }
        return parts.dropLast(2).joined(separator: ":")
    }

    /// A short account for the log: level, baseline, bands by resolution, offset and scaling.
    public var summary: String {
        let byResolution = Dictionary(grouping: sources, by: \.resolution).sorted { $0.key < $1.key }
            .map { "\($0.value.map(\.productBand).joined(separator: " ")) \($0.key) m" }.joined(separator: ", ")
        let offsets = Set(sources.map(\.offset))
        let offset = offsets == [0] ? "no reflectance offset" : "offset \(offsets.sorted().map { String(format: "%g", $0) }.joined(separator: "/")) removed"
        let scale = quantification == 10000 ? "" : ", DN × \(String(format: "%g", 10000 / quantification)) to the 10000 scale"
        let finest = sources.map(\.resolution).min() ?? 10
        return "Sentinel-2 \(level) baseline \(baseline): \(byResolution) on the \(finest) m grid (\(width)×\(height), nearest); \(offset)\(scale)"
    }

    /// The VRT XML: float32 bands in the model's order, NaN where the product holds 0 (no data),
    /// (DN + offset) × 10000 / quantification elsewhere — exact for every DN (float32 holds integers to 2^24).
    public func vrt() -> String {
        let escape = VRTText.escape
        let ratio = 10000 / quantification
        var xml = "<VRTDataset rasterXSize=\"\(width)\" rasterYSize=\"\(height)\">\n"
        xml += "  <SRS dataAxisToSRSAxisMapping=\"1,2\">\(escape(projectionWKT))</SRS>\n"
        xml += "  <GeoTransform>\(geoTransform.coefficients.map { String(format: "%.17g", $0) }.joined(separator: ", "))</GeoTransform>\n"
        for (index, source) in sources.enumerated() {
            xml += """
              <VRTRasterBand dataType="Float32" band="\(index + 1)">
                <Description>\(escape(source.modelBand))</Description>
                <NoDataValue>nan</NoDataValue>
                <ComplexSource resampling="nearest">
                  <SourceFilename relativeToVRT="0">\(escape(source.subdataset))</SourceFilename>
                  <SourceBand>\(source.band)</SourceBand>
                  <SrcRect xOff="0" yOff="0" xSize="\(source.width)" ySize="\(source.height)"/>
                  <DstRect xOff="0" yOff="0" xSize="\(width)" ySize="\(height)"/>
                  <NODATA>0</NODATA>
                  <ScaleOffset>\(String(format: "%.17g", source.offset * ratio))</ScaleOffset>
                  <ScaleRatio>\(String(format: "%.17g", ratio))</ScaleRatio>
                </ComplexSource>
              </VRTRasterBand>

            """
        }
        return xml + "</VRTDataset>\n"
    }

    /// Writes the VRT at `path`, rewriting it only when its content changes (so an interrupted
    /// run's journal, which fingerprints IN, still matches on resume).
    public func writeVRT(at path: String) throws {
        do { try VRTText.write(vrt(), to: path) } catch {
            throw Failure("\(path): cannot write the product's band stack: \(error.localizedDescription)")
        }
    }
}

/// What the SENTINEL2 driver of GDAL 3.6 does not report: the per-band reflectance offsets
/// (RADIO_ADD_OFFSET for L1C, BOA_ADD_OFFSET for L2A, by bandId) and the quantification value,
/// read from the product's XML with GDAL's own parser (so /vsizip/ paths work too).
public struct Sentinel2Metadata {
    public var offsets: [String: Double] = [:]
    public var quantification: Double?
    /// The product's IMAGE_FILE entries (paths below the SAFE folder, without .jp2).
    public var imageFiles: [String] = []

    public init(xml path: String) throws {
        _ = GDALRuntime.ready
        guard let root = CPLParseXMLFile(path) else { throw Sentinel2Product.Failure(GDALError.last("\(path): cannot parse the product metadata").description) }
        defer { CPLDestroyXMLNode(root) }
        CPLStripXMLNamespace(root, nil, 1)
        // The parse returns the first top-level node (the <?xml?> declaration); the document element follows it.
        var topLevel: [UnsafeMutablePointer<CPLXMLNode>] = []
        var next: UnsafeMutablePointer<CPLXMLNode>? = root
        while let node = next { topLevel.append(node); next = node.pointee.psNext }
        for node in topLevel { Self.visit(node) { node, name in
            switch name {
            case "BOA_ADD_OFFSET", "RADIO_ADD_OFFSET":
                if let id = Self.attribute(node, "band_id").flatMap(Int.init), Sentinel2Product.bandIDs.indices.contains(id),
                   let value = Self.text(node).flatMap(Double.init) {
                    offsets[Sentinel2Product.bandIDs[id]] = value
                }
            case "IMAGE_FILE":
                if let file = Self.text(node) { imageFiles.append(file) }
            case "BOA_QUANTIFICATION_VALUE", "QUANTIFICATION_VALUE":
                quantification = Self.text(node).flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil }
            default: break
            }
        } }
    }

    /// GDAL's driver reads a missing band file as zeros (no data) with a mere warning, so a
    /// truncated download would give an empty mask: the file the product lists for a model band
    /// (…_B02.jp2 in L1C, …_B02_10m.jp2 in L2A) must exist. Products listing no such entry (the
    /// old non-compact layout names granules, not files) are left to the driver.
    func checkImageFile(of source: Sentinel2Product.Source, productFolder: String, input: String) throws {
        let band = source.productBand.count == 2 ? "B0" + source.productBand.dropFirst() : source.productBand
        let listed = imageFiles.filter { $0.hasSuffix("_\(band)") || $0.hasSuffix("_\(band)_\(source.resolution)m") }
        guard !listed.isEmpty else { return }
        // Opened rather than stat'ed: works inside /vsizip/ and VSIStatBufL is opaque to Swift.
        let present = listed.contains { file in
            guard let handle = VSIFOpenL("\(productFolder)/\(file).jp2", "rb") else { return false }
            VSIFCloseL(handle)
            return true
        }
        guard present else {
            throw Sentinel2Product.Failure("\(input): the band file \(listed[0]).jp2 of \(source.productBand) is missing (an incomplete download?)")
        }
    }

    /// Calls `body` for every element below `node`, depth first.
    static func visit(_ node: UnsafeMutablePointer<CPLXMLNode>, _ body: (UnsafeMutablePointer<CPLXMLNode>, String) -> Void) {
        var child = node.pointee.psChild
        while let current = child {
            if current.pointee.eType == CXT_Element, let name = current.pointee.pszValue {
                body(current, String(cString: name))
                visit(current, body)
            }
            child = current.pointee.psNext
        }
    }

    static func attribute(_ node: UnsafeMutablePointer<CPLXMLNode>, _ name: String) -> String? {
        var child = node.pointee.psChild
        while let current = child {
            if current.pointee.eType == CXT_Attribute, let key = current.pointee.pszValue, String(cString: key) == name {
                return current.pointee.psChild?.pointee.pszValue.map { String(cString: $0) }
            }
            child = current.pointee.psNext
        }
        return nil
    }

    static func text(_ node: UnsafeMutablePointer<CPLXMLNode>) -> String? {
        var child = node.pointee.psChild
        while let current = child {
            if current.pointee.eType == CXT_Text, let value = current.pointee.pszValue {
                return String(cString: value).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            child = current.pointee.psNext
        }
        return nil
    }
}
