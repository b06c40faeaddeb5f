import Foundation

/// How well a mask matches a ground truth, per class: IoU, precision, recall, from the joint
/// histogram of (mask value, truth value) over the pixels where the truth is known.
///
/// Conventions: the truth holds class index + 1 with 0 unknown (nodata, cloud), as
/// `create-scene --truth` writes it. A mask that holds only 0 and 255 is a two-class mask as
/// `segment` writes it (255 water = class 1, 0 land = class 0: its nodata pixels are 0 too, but
/// they lie where the truth is unknown); any other mask holds class index + 1 with 0 for no
/// prediction, which counts as a miss of the true class.
public struct MaskScore: Sendable, Equatable {
    public struct ClassScore: Sendable, Equatable {
        public var name: String
        public var truePositives = 0, falsePositives = 0, falseNegatives = 0
        public var iou: Double { ratio(truePositives, truePositives + falsePositives + falseNegatives) }
        public var precision: Double { ratio(truePositives, truePositives + falsePositives) }
        public var recall: Double { ratio(truePositives, truePositives + falseNegatives) }
        /// NaN when the class is in neither the mask nor the truth.
        func ratio(_ a: Int, _ b: Int) -> Double { b == 0 ? .nan : Double(a) / Double(b) }
    }

    public var classes: [ClassScore]
    /// Pixels compared (the truth known) and left out (the truth unknown).
    public var scored = 0, excluded = 0
    public var correct = 0
    public var accuracy: Double { scored == 0 ? .nan : Double(correct) / Double(scored) }

    /// `histogram[m * 256 + t]`: pixels with mask value m and truth value t.
    public init(histogram: [Int]) {
        precondition(histogram.count == 256 * 256)
        let maskValues = (0..<256).filter { m in (0..<256).contains { histogram[m * 256 + $0] > 0 } }
        let binary = maskValues.allSatisfy { $0 == 0 || $0 == 255 }
        // Mask value → predicted class (nil: no prediction).
        func predicted(_ m: Int) -> Int? { binary ? (m == 255 ? 1 : 0) : (m == 0 ? nil : m - 1) }
        let truthMax = (1..<256).last { t in (0..<256).contains { histogram[$0 * 256 + t] > 0 } } ?? 0
        let maskMax = maskValues.compactMap(predicted).max() ?? 0
        let count = max(2, truthMax, maskMax + 1)
        classes = (0..<count).map { ClassScore(name: count == 2 ? ["land", "water"][$0] : "class \($0)") }
        for m in 0..<256 {
            for t in 0..<256 {
                let pixels = histogram[m * 256 + t]
                guard pixels > 0 else { continue }
                guard t > 0 else { excluded += pixels; continue }
                scored += pixels
                let truth = t - 1
                if let guess = predicted(m), guess == truth {
                    classes[truth].truePositives += pixels
                    correct += pixels
                } else {
                    classes[truth].falseNegatives += pixels
                    if let guess = predicted(m) { classes[guess].falsePositives += pixels }
                }
            }
        }
    }

    /// Compares two rasters on the same grid (same size; the same geotransform when both have one),
    /// reading them in strips of rows.
    public static func compare(mask maskPath: String, truth truthPath: String) throws -> MaskScore {
        let mask = try RasterDataset.open(maskPath), truth = try RasterDataset.open(truthPath)
        guard mask.width == truth.width, mask.height == truth.height else {
            throw SceneError("\(maskPath) is \(mask.width)×\(mask.height) but \(truthPath) is \(truth.width)×\(truth.height): they are not on the same grid")
        }
        if let a = mask.geoTransform?.coefficients, let b = truth.geoTransform?.coefficients,
           zip(a, b).contains(where: { abs($0 - $1) > 1e-6 * max(1, abs($0)) }) {
            throw SceneError("\(maskPath) and \(truthPath) have different geotransforms: they are not on the same grid")
        }
        var histogram = [Int](repeating: 0, count: 256 * 256)
        var row = 0
        while row < mask.height {
            let rows = min(256, mask.height - row)
            let window = PixelWindow(x: 0, y: row, width: mask.width, height: rows)
            let m = try mask.read(bands: [0], window: window), t = try truth.read(bands: [0], window: window)
            for i in m.indices {
                guard let mv = UInt8(exactly: m[i]), let tv = UInt8(exactly: t[i]) else {
                    throw SceneError("\(maskPath) and \(truthPath) must hold class values 0…255 (found \(m[i]) and \(t[i]))")
                }
                histogram[Int(mv) * 256 + Int(tv)] += 1
            }
            row += rows
        }
        return MaskScore(histogram: histogram)
    }

    /// A table for people: one line per class, then accuracy and what was left out.
    public var report: String {
        func f(_ v: Double) -> String { v.isNaN ? "   -  " : String(format: "%.4f", v) }
        var lines = ["class      IoU     precision  recall"]
        for c in classes { lines.append(c.name.padding(toLength: 10, withPad: " ", startingAt: 0) + " \(f(c.iou))  \(f(c.precision))     \(f(c.recall))") }
        lines.append("accuracy \(f(accuracy)) over \(scored) pixels; \(excluded) left out (unknown in the truth)")
        return lines.joined(separator: "\n")
    }

    /// The same as JSON-compatible values (NaN as null).
    public var jsonObject: [String: Any] {
        func v(_ x: Double) -> Any { x.isNaN ? NSNull() : x }
        return [
            "scored_pixels": scored, "excluded_pixels": excluded, "accuracy": v(accuracy),
            "classes": classes.map { ["name": $0.name, "iou": v($0.iou), "precision": v($0.precision), "recall": v($0.recall),
                                      "true_positives": $0.truePositives, "false_positives": $0.falsePositives, "false_negatives": $0.falseNegatives] as [String: Any] },
        ]
    }
}
