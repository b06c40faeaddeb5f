import Foundation
import Logging

/// Turns the MODEL argument into a local directory: a directory as given, or a Hugging Face id
/// (`org/name`) found in the Hugging Face cache (`$HF_HOME/hub`, default ~/.cache/huggingface/hub)
/// or, unless `HF_HUB_OFFLINE=1`, downloaded into it from `$HF_ENDPOINT`.
public enum ModelLocator {
    public static func resolve(_ model: String, environment: [String: String] = ProcessInfo.processInfo.environment,
                               logger: Logger? = nil) throws -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: model, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ModelConfigError("\(model): is a file; MODEL must be a model directory or a Hugging Face id") }
            return URL(fileURLWithPath: model).standardizedFileURL.path
        }
        let parts = model.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, !model.hasPrefix("."), !model.hasPrefix("/") else {
            throw ModelConfigError("\(model): no such model directory (and not a Hugging Face id of the form org/name)")
        }
        if let snapshot = cachedSnapshot(org: String(parts[0]), name: String(parts[1]), environment: environment) {
            return snapshot
        }
        if ["1", "true", "yes", "on"].contains(environment["HF_HUB_OFFLINE"]?.lowercased() ?? "") {
            throw ModelConfigError("\(model): not a local directory and not in the Hugging Face cache (\(hubCache(environment))); HF_HUB_OFFLINE is set")
        }
        logger?.info("\(model) is not in the Hugging Face cache; downloading it")
        return try HubClient(environment: environment, logger: logger).download(repo: model)
    }

    /// `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
    public static func hubCache(_ environment: [String: String]) -> String {
        if let cache = environment["HF_HUB_CACHE"], !cache.isEmpty { return cache }
        if let home = environment["HF_HOME"], !home.isEmpty { return home + "/hub" }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.cache/huggingface/hub"
    }

    /// The snapshot `refs/main` points to, else the only (or newest) snapshot with a config.
    static func cachedSnapshot(org: String, name: String, environment: [String: String]) -> String? {
        let repository = hubCache(environment) + "/models--\(org)--\(name)"
        let snapshots = repository + "/snapshots"
        if let revision = try? String(contentsOfFile: repository + "/refs/main", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines), !revision.isEmpty,
           hasConfig(snapshots + "/" + revision) {
            return snapshots + "/" + revision
        }
        let candidates = ((try? FileManager.default.contentsOfDirectory(atPath: snapshots)) ?? [])
            .map { snapshots + "/" + $0 }.filter(hasConfig)
        return candidates.max { modified($0) < modified($1) }
    }

    static func hasConfig(_ directory: String) -> Bool {
        ["config.json", "config.yaml"].contains { FileManager.default.fileExists(atPath: directory + "/" + $0) }
    }

    static func modified(_ path: String) -> Date {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date) ?? .distantPast
    }
}
