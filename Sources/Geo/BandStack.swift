import CGDAL
import Foundation

/// Band-per-file inputs (an HLS S30/L30 granule, a folder of single-band rasters): the files the
/// model's bands name, stacked in the model's order by a VRT (GDALBuildVRT -separate), with an
/// optional cloud mask (HLS Fmask bits) as the VRT's dataset mask, so the rest of the pipeline —
/// validity, tiles, workers reading their own windows — sees one ordinary multi-band raster.
public enum BandStack {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// File-name tokens for each model band, by product: Sentinel-2 / HLS S30 and HLS L30 (Landsat OLI).
    static let sentinel2 = ["COASTAL_AEROSOL": "B01", "BLUE": "B02", "GREEN": "B03", "RED": "B04", "RED_EDGE_1": "B05", "RED_EDGE_2": "B06",
                            "RED_EDGE_3": "B07", "NIR_BROAD": "B08", "NIR_NARROW": "B8A", "WATER_VAPOR": "B09", "CIRRUS": "B10",
                            "SWIR_1": "B11", "SWIR_2": "B12"]
    static let landsat = ["COASTAL_AEROSOL": "B01", "BLUE": "B02", "GREEN": "B03", "RED": "B04", "NIR_NARROW": "B05",
                          "SWIR_1": "B06", "SWIR_2": "B07", "CIRRUS": "B09", "THERMAL_1": "B10", "THERMAL_2": "B11"]

    /// True when `input` names band files rather than one raster: a directory or a glob pattern
    /// (a Sentinel-2 product's SAFE folder is a product, not band files).
    public static func isBandFileInput(_ input: String) -> Bool {
        if Sentinel2Product.isProduct(input) { return false }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory) { return isDirectory.boolValue }
        return input.contains("*") || input.contains("?") || input.contains("[")
    }

    /// The rasters of a directory or a glob pattern, sorted.
    static func candidates(_ input: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory), isDirectory.boolValue {
            let names = try FileManager.default.contentsOfDirectory(atPath: input)
            return names.filter { ["tif", "tiff", "jp2", "vrt"].contains(URL(fileURLWithPath: $0).pathExtension.lowercased()) && !$0.hasPrefix(".") }
                .sorted().map { URL(fileURLWithPath: input).appendingPathComponent($0).path }
        }
        var matches = glob_t()
        defer { globfree(&matches) }
        guard glob(input, 0, nil, &matches) == 0 else { return [] }
        return (0..<Int(matches.gl_pathc)).compactMap { matches.gl_pathv[$0].map { String(cString: $0) } }.sorted()
    }

    /// The file of each model band, in the model's order: `overrides` (band name → file) first,
    /// then the one file whose name has the band's product token (B02, B8A…; Landsat's for
    /// names with an `L30` token) or the band name itself as a token.
    public static func resolve(input: String, modelBands: [String], overrides: [String: String] = [:]) throws -> [String] {
        let files = try candidates(input)
        guard !files.isEmpty || overrides.count == modelBands.count else { throw Failure("\(input): holds no raster files (.tif, .jp2, .vrt)") }
        if let unknown = overrides.keys.first(where: { !modelBands.contains($0) }) {
            throw Failure("--band-file \(unknown)=…: the model's bands are \(modelBands.joined(separator: ", "))")
        }
        return try modelBands.map { band in
            if let file = overrides[band] { return file }
            let matching = files.filter { file in
                let stem = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent.uppercased()
                let tokens = Set(stem.split(whereSeparator: { ".-_ ".contains($0) }).map(String.init))
                let coarse = Set(stem.split(whereSeparator: { ".- ".contains($0) }).map(String.init))
                let table = tokens.contains("L30") ? landsat : sentinel2
                return table[band].map(tokens.contains) == true || coarse.contains(band)
            }
            guard matching.count == 1 else {
                let found = matching.isEmpty ? "no file" : "\(matching.count) files (\(matching.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: ", ")))"
                throw Failure("\(input): \(found) for the model's band \(band)\(sentinel2[band].map { " (\($0))" } ?? ""); name it with --band-file \(band)=FILE")
            }
            return matching[0]
        }
    }

    /// A cloud mask: pixels of `path` with any of `bits` set (or equal to its nodata) are invalid.
    public struct CloudMask: Sendable, Equatable {
        public let path: String, bits: [Int]
        public init(path: String, bits: [Int]) { self.path = path; self.bits = bits }
        /// "FILE:BITS", e.g. "Fmask.tif:1,3" (HLS: 1 cloud, 2 adjacent, 3 shadow).
        public init?(argument: String) {
            guard let colon = argument.lastIndex(of: ":") else { return nil }
            let bits = argument[argument.index(after: colon)...].split(separator: ",").compactMap { Int($0) }
            guard !bits.isEmpty, bits.allSatisfy({ (0..<16).contains($0) }) else { return nil }
            self.init(path: String(argument[..<colon]), bits: bits)
        }
    }

    /// Writes the stack of `files` at `vrtPath` (and its validity mask beside it), rewriting them
    /// only when their content changes, so an interrupted run's journal still matches on resume.
    public static func build(files: [String], bandNames: [String], cloudMask: CloudMask?, at vrtPath: String) throws {
        _ = GDALRuntime.ready
        let staging = vrtPath + ".new"
        defer { unlink(staging) }
        var arguments = ["-separate", "-q"]
        let rasters = try files.map { file in
            let raster = try RasterDataset.open(file)
            guard raster.bandCount == 1 else { throw Failure("\(file): has \(raster.bandCount) bands; band files hold one") }
            return raster
        }
        if let nodata = try rasters[0].noDataValue(band: 0) { arguments += ["-srcnodata", "\(nodata)", "-vrtnodata", "\(nodata)"] }
        CPLErrorReset()
        let options = withCStringArray(arguments) { GDALBuildVRTOptionsNew($0, nil) }
        defer { GDALBuildVRTOptionsFree(options) }
        var usageError: Int32 = 0
        let built = withCStringArray(files) { names in
            GDALBuildVRT(staging, Int32(files.count), nil, UnsafeRawPointer(names)?.assumingMemoryBound(to: UnsafePointer<CChar>?.self), options, &usageError)
        }
        guard let built else { throw Failure(GDALError.last("cannot stack \(files.joined(separator: ", "))").description) }
        let width = Int(GDALGetRasterXSize(built)), height = Int(GDALGetRasterYSize(built))
        for (index, name) in bandNames.enumerated() { GDALSetDescription(GDALGetRasterBand(built, Int32(index + 1)), name) }
        GDALClose(built)
        if let odd = rasters.first(where: { $0.width != width || $0.height != height }) {
            throw Failure("\(odd.path): \(odd.width)×\(odd.height) does not match the stack's \(width)×\(height) grid")
        }
        var text = try String(contentsOfFile: staging, encoding: .utf8)
        if let cloudMask {
            let validPath = vrtPath + ".valid.tif"
            try writeValidity(cloudMask, width: width, height: height, to: validPath)
            let maskBand = """
              <MaskBand>
                <VRTRasterBand dataType="Byte">
                  <SimpleSource><SourceFilename relativeToVRT="0">\(VRTText.escape(validPath))</SourceFilename><SourceBand>1</SourceBand></SimpleSource>
                </VRTRasterBand>
              </MaskBand>
            </VRTDataset>
            """
            guard let end = text.range(of: "</VRTDataset>", options: .backwards) else { throw Failure("\(staging): not a VRT") }
            text.replaceSubrange(end, with: maskBand)
        }
        try VRTText.write(text, to: vrtPath)
    }

    /// 255 where the cloud mask has none of the bits set (and is not its nodata), else 0.
    static func writeValidity(_ mask: CloudMask, width: Int, height: Int, to path: String) throws {
        let source = try RasterDataset.open(mask.path)
        guard source.width == width, source.height == height else {
            throw Failure("--cloud-mask \(mask.path): \(source.width)×\(source.height) does not match the bands' \(width)×\(height)")
        }
        let nodata = try source.noDataValue(band: 0)
        let bitmask = mask.bits.reduce(0) { $0 | (1 << $1) }
        let staging = path + ".new"
        defer { unlink(staging) }
        let output = try RasterDataset.create(staging, width: width, height: height, bands: 1, type: .byte, options: ["COMPRESS=DEFLATE", "TILED=YES"])
        let rows = max(1, (1 << 20) / width)
        for y in stride(from: 0, to: height, by: rows) {
            let window = PixelWindow(x: 0, y: y, width: width, height: min(rows, height - y))
            let values = try source.read(bands: [0], window: window)
            let valid = values.map { value -> UInt8 in value == nodata.map(Float.init) || Int(value) & bitmask != 0 ? 0 : 255 }
            try valid.withUnsafeBufferPointer { try output.write(band: 0, window: window, bytes: $0) }
        }
        try output.close()
        let old = FileManager.default.contents(atPath: path), new = FileManager.default.contents(atPath: staging)
        if old != new, rename(staging, path) != 0 { throw Failure("\(path): cannot write the cloud mask: \(String(cString: strerror(errno)))") }
    }
}
