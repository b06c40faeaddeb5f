import Foundation
import Logging
import Support

/// Downloads models from a Hugging Face hub (`$HF_ENDPOINT`, default https://huggingface.co)
/// into the Hugging Face cache layout (`models--ORG--NAME/snapshots/COMMIT/FILE`,
/// `refs/REVISION`), so huggingface_hub and this project find the same files. Only the config and
/// the one weights file are fetched; a partial download resumes where it stopped.
public struct HubClient {
    public var endpoint: String
    public var token: String?
    public var cache: String
    public var limits: DownloadLimits
    public var logger: Logger?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger? = nil) {
        var endpoint = environment["HF_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://huggingface.co"
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        self.endpoint = endpoint
        token = environment["HF_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        cache = ModelLocator.hubCache(environment)
        limits = DownloadLimits(maxBytes: 64 << 30, timeoutSeconds: 6 * 3600, connectTimeoutSeconds: 30, maxRedirects: 10)
        self.logger = logger
    }

    var headers: [String] { token.map { ["Authorization: Bearer \($0)"] } ?? [] }

    /// Fetches `repo` at `revision` and returns the snapshot directory.
    public func download(repo: String, revision: String = "main") throws -> String {
        let parts = repo.split(separator: "/")
        guard parts.count == 2 else { throw ModelConfigError("\(repo) is not a Hugging Face id (org/name)") }
        let repository = cache + "/models--\(parts[0])--\(parts[1])"
        let scratch = repository + "/.download"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)

        // The file list and the commit the revision points to.
        let listing = scratch + "/listing.json"
        do {
            try curlDownload("\(endpoint)/api/models/\(repo)/revision/\(revision)", to: listing,
                             limits: DownloadLimits(maxBytes: 16 << 20, timeoutSeconds: 60), headers: headers)
        } catch let error as DownloadError {
            if case .httpStatus(let status) = error.kind, status == 401 || status == 403 || status == 404 {
                throw ModelConfigError("\(repo): not found on \(endpoint) (HTTP \(status)\(token == nil ? "; set HF_TOKEN for gated or private models" : ""))")
            }
            throw ModelConfigError("\(repo): cannot reach \(endpoint): \(error)")
        }
        guard let info = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: listing)))) as? [String: Any],
              let commit = info["sha"] as? String, !commit.isEmpty, !commit.contains("/"),
              let siblings = info["siblings"] as? [[String: Any]] else {
            throw ModelConfigError("\(repo): \(endpoint) answered the model listing with something unexpected")
        }
        let names = siblings.compactMap { $0["rfilename"] as? String }
        let files = try Self.neededFiles(names, repo: repo)
        let snapshot = repository + "/snapshots/" + commit
        try FileManager.default.createDirectory(atPath: snapshot, withIntermediateDirectories: true)
        for file in files {
            let target = snapshot + "/" + file
            if FileManager.default.fileExists(atPath: target) { continue }
            let partial = scratch + "/" + file.replacingOccurrences(of: "/", with: "_") + ".incomplete"
            let already = ((try? FileManager.default.attributesOfItem(atPath: partial))?[.size] as? NSNumber)?.int64Value ?? 0
            if already > 0 { logger?.info("resuming \(repo)/\(file) at \(already) bytes") }
            let logger = self.logger
            let bytes = try curlDownload("\(endpoint)/\(repo)/resolve/\(commit)/\(file)", to: partial, limits: limits,
                                         headers: headers, resumeFrom: already, progress: { done, total in
                if let total, total > 0 {
                    logger?.info("downloading \(repo)/\(file): \(done >> 20)/\(total >> 20) MiB (\(100 * done / total) %)")
                }
            })
            guard rename(partial, target) == 0 else { throw ModelConfigError("\(target): cannot move the download into place") }
            logger?.info("downloaded \(repo)/\(file) (\(bytes) bytes)")
        }
        try FileManager.default.createDirectory(atPath: repository + "/refs", withIntermediateDirectories: true)
        try commit.write(toFile: repository + "/refs/" + revision, atomically: true, encoding: .utf8)
        try? FileManager.default.removeItem(atPath: listing)
        return snapshot
    }

    /// The config (config.json, else config.yaml) and the one weights file a model needs.
    static func neededFiles(_ names: [String], repo: String) throws -> [String] {
        let top = names.filter { !$0.contains("/") }
        guard let config = ["config.json", "config.yaml", "config.yml"].first(where: top.contains) else {
            throw ModelConfigError("\(repo): has no config.json or config.yaml")
        }
        let safetensors = top.filter { $0.hasSuffix(".safetensors") }
        let torch = top.filter { ModelDirectory.torchExtensions.contains(URL(fileURLWithPath: $0).pathExtension) }
        let weights: String
        if top.contains("model.safetensors") {
            weights = "model.safetensors"
        } else if safetensors.count == 1 {
            weights = safetensors[0]
        } else if safetensors.isEmpty, torch.count == 1 {
            weights = torch[0]
        } else {
            throw ModelConfigError("\(repo): cannot tell which weights file to use among \((safetensors + torch).joined(separator: ", "))")
        }
        return [config, weights]
    }
}
