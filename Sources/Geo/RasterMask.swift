import CGDAL
import Foundation

/// GDAL's validity masks: a per-band or per-dataset mask band (an internal TIFF mask, a `.msk`
/// sidecar) or an alpha band. 0 in a band's mask means "no data here", as a nodata value does.
extension RasterDataset {
    /// Which of `bands` carry a mask beyond their nodata value (nodata and NaN are found in the
    /// values themselves), grouped so that a per-dataset mask or an alpha band is read once.
    public func maskSources(for bands: [Int]) throws -> [MaskSource] {
        var sources: [MaskSource] = []
        var perDatasetSeen = false
        for b in bands {
            let flags = GDALGetMaskFlags(try band(b))
            if flags & GMF_ALL_VALID != 0 || flags & GMF_NODATA != 0 { continue }
            if flags & GMF_PER_DATASET != 0 {
                if perDatasetSeen { continue }
                perDatasetSeen = true
            }
            sources.append(MaskSource(band: b, kind: flags & GMF_ALPHA != 0 ? .alpha : (flags & GMF_PER_DATASET != 0 ? .perDataset : .perBand)))
        }
        // GDAL takes an alpha band as the mask of gray+alpha and RGBA rasters only; a stack of
        // model bands plus an alpha band is masked by it just the same.
        if !perDatasetSeen {
            for b in 0..<bandCount where !bands.contains(b) {
                let interpretation = GDALGetRasterColorInterpretation(try band(b))
                if interpretation == GCI_AlphaBand {
                    sources.append(MaskSource(band: b, kind: .alphaBand))
                    break
                }
            }
        }
        return sources
    }

    /// ANDs `window` of `source`'s mask into `valid` (1 valid, 0 not; row-major, window-sized).
    public func applyMask(_ source: MaskSource, window: PixelWindow, to valid: UnsafeMutableBufferPointer<UInt8>) throws {
        guard valid.count >= window.pixelCount else { throw GDALError("\(path): mask buffer too small for \(window)") }
        let mask = source.kind == .alphaBand ? try band(source.band) : GDALGetMaskBand(try band(source.band))
        guard let mask else { throw GDALError.last("\(path): band \(source.band) has no mask band") }
        var bytes = [UInt8](repeating: 0, count: window.pixelCount)
        CPLErrorReset()
        let status = bytes.withUnsafeMutableBytes {
            GDALRasterIO(mask, GF_Read, Int32(window.x), Int32(window.y), Int32(window.width), Int32(window.height),
                         $0.baseAddress, Int32(window.width), Int32(window.height), GDT_Byte, 0, 0)
        }
        guard status == CE_None else { throw GDALError.last("\(path): cannot read the mask of band \(source.band) in \(window)") }
        for p in 0..<window.pixelCount { valid[p] &= bytes[p] != 0 ? 1 : 0 }
    }

    /// Creates a mask for the whole dataset — inside the GeoTIFF, or as a `.msk` sidecar when
    /// `inside` is false — and writes `values` (nonzero valid) into it.
    public func writeDatasetMask(_ values: [UInt8], inside: Bool = true) throws {
        guard values.count == width * height else { throw GDALError("\(path): mask of \(values.count) values for a \(width)×\(height) raster") }
        CPLSetThreadLocalConfigOption("GDAL_TIFF_INTERNAL_MASK", inside ? "YES" : "NO")
        defer { CPLSetThreadLocalConfigOption("GDAL_TIFF_INTERNAL_MASK", nil) }
        CPLErrorReset()
        guard GDALCreateDatasetMaskBand(try openHandle(), Int32(GMF_PER_DATASET)) == CE_None,
              let mask = GDALGetMaskBand(try band(0)) else { throw GDALError.last("\(path): cannot create a mask") }
        let status = values.withUnsafeBytes {
            GDALRasterIO(mask, GF_Write, 0, 0, Int32(width), Int32(height), UnsafeMutableRawPointer(mutating: $0.baseAddress),
                         Int32(width), Int32(height), GDT_Byte, 0, 0)
        }
        guard status == CE_None else { throw GDALError.last("\(path): cannot write the mask") }
    }

    /// Marks band `index` as the alpha band (0 transparent: no data in the other bands).
    public func setAlpha(band index: Int) throws {
        CPLErrorReset()
        guard GDALSetRasterColorInterpretation(try band(index), GCI_AlphaBand) == CE_None else {
            throw GDALError.last("\(path): cannot make band \(index) the alpha band")
        }
    }
}

/// Where a selected band's validity comes from besides its values.
public struct MaskSource: Equatable, Sendable, Codable {
    /// `alpha`: GDAL's mask is the alpha band; `alphaBand`: an alpha band GDAL does not use as
    /// a mask (more than RGBA), read as one.
    public enum Kind: String, Equatable, Sendable, Codable { case perBand, perDataset, alpha, alphaBand }
    public var band: Int
    public var kind: Kind
}
