import Geo
import Model

/// What one job holds in the coordinator's memory, estimated before it starts so the server can
/// admit it or refuse it (`Admission`). The tiles in flight are not counted here: their number is
/// bounded by the workers' queue depth whatever the jobs, so the server reserves them once.
public enum JobMemory {
    /// Fixed per job: the scene's GDAL handles, the plan, bookkeeping.
    public static let perJob: Int64 = 16 << 20

    /// Bytes for a `width`×`height` scene segmented with `options`; `payloadBytes` is what the
    /// request itself keeps in memory (a base64 body), `answerInMemory` when the output GeoTIFF is
    /// read back into the answer (base64 output: the file, its base64 and the JSON around it).
    public static func estimate(width: Int, height: Int, config: ModelConfig, options: SegmentOptions,
                                payloadBytes: Int64 = 0, answerInMemory: Bool = false) -> Int64 {
        let width = Int64(width), height = Int64(height), classes = Int64(config.numClasses)
        let outputBytesPerPixel: Int64 = options.output == .mask ? 1 : 4 * classes
        var bytes = perJob + payloadBytes
        switch options.tiling {
        case .overlap:
            // The stitcher's open rows — Σw·logits per class, Σw (float) and validity (byte) per
            // pixel over one tile window of rows — and the finished strip on its way to the spool.
            // (Two-class masks blend one margin plane without Σw: kept at the per-class figure,
            // which also covers the tiles' logits waiting in the reorder buffer.)
            let window = Int64((try? TilePlan(sceneWidth: Int(width), sceneHeight: Int(height), tileSize: options.tileSize,
                                              stride: options.stride, scale: options.scale ?? config.preprocessing.trainingScale))?.window
                               ?? options.tileSize)
            let rows = min(height, window)
            bytes += (4 * classes + 4 + 1) * width * rows + outputBytesPerPixel * width * rows
        case .vllm:
            // Crop rows of the mask still open (at most two: one filling, one being written).
            let crop = Int64(config.preprocessing.pluginCrop)
            bytes += 2 * min(height, crop) * width
        }
        if answerInMemory {
            // The file (LZW can exceed raw by a little), its base64 and the JSON string holding it.
            bytes += width * height * outputBytesPerPixel * 41 / 10
        }
        return bytes
    }
}
