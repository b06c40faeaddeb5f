import Foundation

/// A size in bytes as flags take it: `1073741824`, `512K`, `64M`, `2G`, `1.5T` (binary units,
/// an optional trailing `B` or `iB`).
public struct ByteCount: Sendable, Equatable, CustomStringConvertible {
    public let bytes: Int64
    public init(bytes: Int64) { self.bytes = bytes }

    public init?(_ text: String) {
        var digits = text.trimmingCharacters(in: .whitespaces).uppercased()
        for suffix in ["IB", "B"] where digits.hasSuffix(suffix) && digits.count > suffix.count { digits.removeLast(suffix.count); break }
        var multiplier: Double = 1
        if let unit = digits.last, let power = ["K": 1, "M": 2, "G": 3, "T": 4][String(unit)] {
            multiplier = pow(1024, Double(power))
            digits.removeLast()
        }
        guard let value = Double(digits), value.isFinite, value >= 0, value * multiplier < 9.2e18 else { return nil }
        bytes = Int64((value * multiplier).rounded())
    }

    public var description: String { Self.describe(bytes) }

    /// `1.5 GiB`, `12.0 MiB`, `512 B`.
    public static func describe(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes), unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }
}
