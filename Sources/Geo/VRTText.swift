import Foundation

/// The text of VRTs the project writes itself (band-file stacks, Sentinel-2 products).
enum VRTText {
    /// `text` escaped for an XML element's content (paths, WKT, band names).
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// Writes `text` at `path` unless the file already holds exactly it: a journal fingerprints
    /// IN (size and mtime among others), so an unchanged VRT must stay untouched for `--resume`.
    static func write(_ text: String, to path: String) throws {
        guard (try? String(contentsOfFile: path, encoding: .utf8)) != text else { return }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}
