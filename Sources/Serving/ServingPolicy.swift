import Foundation
import Pipeline
import Support

/// Where inputs may come from and outputs may go, as `serve`'s flags and the plugin's
/// configuration set it.
public struct ServingPolicy: Sendable {
    /// `path` inputs are read only under this directory (none: `path` inputs are refused).
    public var allowedLocalMediaPath: String?
    /// `url` inputs only from these domains (and their subdomains); empty: any.
    public var allowedMediaDomains: [String]
    public var downloadLimits: DownloadLimits
    /// Largest image accepted, in pixels.
    public var maxRequestPixels: Int
    /// Outputs are written under this directory.
    public var outputDirectory: String
    /// Tiling of requests that do not choose one (`data.tiling`).
    public var defaultTiling: TilingMode = .overlap
    /// Who reads `path` inputs' tiles; downloaded and base64 inputs live in the coordinator's
    /// scratch directory and are always read there.
    public var dataPath: DataPath = .auto
    /// Seconds a request may take from arrival to answer (nil: no limit); past it, 504.
    public var requestTimeout: Double?
    /// `--deny-private-addresses`: `url` inputs never connect to a `PrivateAddress` (any hop).
    public var denyPrivateAddresses = false

    public init(allowedLocalMediaPath: String?, allowedMediaDomains: [String], downloadLimits: DownloadLimits,
                maxRequestPixels: Int, outputDirectory: String) {
        self.allowedLocalMediaPath = allowedLocalMediaPath
        self.allowedMediaDomains = allowedMediaDomains
        self.downloadLimits = downloadLimits
        self.maxRequestPixels = maxRequestPixels
        self.outputDirectory = outputDirectory
    }

    /// The output directory from `TERRATORCH_SEGMENTATION_IO_PROCESSOR_CONFIG={"output_path": …}`
    /// (the plugin's setting), else `$HOME`; it must exist and be writable.
    public static func outputDirectory(environment: [String: String]) throws -> String {
        var directory = environment["HOME"] ?? NSHomeDirectory()
        if let text = environment["TERRATORCH_SEGMENTATION_IO_PROCESSOR_CONFIG"], !text.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw APIError.badRequest("TERRATORCH_SEGMENTATION_IO_PROCESSOR_CONFIG is not a JSON object")
            }
            if let path = object["output_path"] as? String, !path.isEmpty { directory = path }
        }
        guard let resolved = realDirectory(directory) else {
            throw APIError.badRequest("the output path \(directory) does not exist or is not a directory")
        }
        guard access(resolved, W_OK) == 0 else { throw APIError.badRequest("the output path \(directory) is not writable") }
        return resolved
    }

    /// The canonical path of an existing directory (symlinks resolved), nil otherwise.
    public static func realDirectory(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        var isDirectory: ObjCBool = false
        let text = String(cString: resolved)
        guard FileManager.default.fileExists(atPath: text, isDirectory: &isDirectory), isDirectory.boolValue else { return nil }
        return text
    }

    /// Whether canonical `path` lies inside canonical directory `root`.
    static func isInside(_ path: String, _ root: String) -> Bool {
        root == "/" || path == root || path.hasPrefix(root.hasSuffix("/") ? root : root + "/")
    }

    /// A `path` input: an existing regular file under `--allowed-local-media-path` (symlinks
    /// resolved first, so a link cannot point outside). A path outside gets the same answer whether
    /// or not anything exists there; FIFOs, devices, sockets and directories are refused by type
    /// before anything opens them (a FIFO would block its reader forever).
    public func localInput(_ path: String) throws -> String {
        guard let allowed = allowedLocalMediaPath else {
            throw APIError.badRequest("cannot read local files without --allowed-local-media-path")
        }
        guard !path.hasPrefix("/vsi") else {
            throw APIError.badRequest("\(path) is a GDAL virtual file system path; only files under --allowed-local-media-path are read")
        }
        let outside = APIError.badRequest("the file path \(path) must be a subpath of --allowed-local-media-path \(allowed)")
        guard let resolved = realpath(path, nil) else {
            // Nothing there: say so only for paths that would be inside.
            let lexical = URL(fileURLWithPath: path).standardizedFileURL.path
            throw Self.isInside(lexical, allowed) ? APIError.badRequest("\(path): no such file") : outside
        }
        defer { free(resolved) }
        let text = String(cString: resolved)
        guard Self.isInside(text, allowed) else { throw outside }
        var info = stat()
        guard stat(text, &info) == 0 else { throw APIError.badRequest("\(path): no such file") }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return text
        case S_IFDIR: throw APIError.badRequest("\(path) is a directory, not a GeoTIFF")
        default: throw APIError.badRequest("\(path) is not a regular file (a FIFO, device or socket), not a GeoTIFF")
        }
    }

    /// A `url` input or one of its redirects: http(s) only, from an allowed domain.
    public func checkURL(_ text: String) throws {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = url.host?.lowercased(), !host.isEmpty else {
            throw APIError.badRequest("\(text) is not an http(s) URL")
        }
        if !allowedMediaDomains.isEmpty {
            let domains = allowedMediaDomains.map { $0.lowercased() }
            guard domains.contains(where: { host == $0 || host.hasSuffix("." + $0) }) else {
                throw APIError.badRequest("the domain \(host) is not in --allowed-media-domains")
            }
        }
    }

    /// The directory of a `path` output: the output directory, or the request's `out_path` when
    /// it is an existing writable directory inside it.
    public func outputDirectory(for outPath: String?) throws -> String {
        guard let outPath else { return outputDirectory }
        guard let resolved = Self.realDirectory(outPath) else { throw APIError.badRequest("the output path \(outPath) does not exist") }
        guard Self.isInside(resolved, outputDirectory) else {
            throw APIError.badRequest("the output path \(outPath) is outside the server's output directory \(outputDirectory)")
        }
        guard access(resolved, W_OK) == 0 else { throw APIError.badRequest("the output path \(outPath) is not writable") }
        return resolved
    }

    /// The largest request body: a base64 image of at most --max-input-bytes, and never more than
    /// the largest image --max-request-pixels admits could need (float64 samples, uncompressed, plus
    /// 1 MiB of TIFF structure), with 64 KiB for the JSON around it.
    public static func bodyLimit(maxInputBytes: Int64, maxRequestPixels: Int, bands: Int) -> Int {
        let largestImage = Int64(maxRequestPixels).multipliedReportingOverflow(by: Int64(max(1, bands)) * 8)
        let image = min(maxInputBytes, largestImage.overflow ? Int64.max / 2 : largestImage.partialValue + (1 << 20))
        return Int(min(Int64(Int.max / 2), image / 3 * 4 + 4 + (64 << 10)))
    }
}
