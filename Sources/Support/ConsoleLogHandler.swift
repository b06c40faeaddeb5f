import Foundation
import Logging

/// A swift-log handler that writes vLLM-style lines to stderr:
/// `INFO 11-29 14:13:09 [coordinator] message key=value`.
/// MPI ranks share one terminal under mpirun, so every line carries the process label.
public struct ConsoleLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let suffix = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let line = "\(Self.levelName(event.level)) \(Self.timestamp()) [\(label)] \(event.message)\(suffix)\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func levelName(_ level: Logger.Level) -> String {
        switch level {
        case .trace: return "TRACE"
        case .debug: return "DEBUG"
        case .info: return "INFO"
        case .notice: return "NOTICE"
        case .warning: return "WARNING"
        case .error: return "ERROR"
        case .critical: return "CRITICAL"
        }
    }

    static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        return String(format: "%02d-%02d %02d:%02d:%02d", parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec)
    }

    /// Installs this handler process-wide once. `PRITHVI_LOG_LEVEL` (trace…critical) overrides `level`.
    public static func bootstrap(label: String, level: Logger.Level = .info) {
        let chosen = ProcessInfo.processInfo.environment["PRITHVI_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? level
        LoggingSystem.bootstrap { _ in ConsoleLogHandler(label: label, level: chosen) }
    }
}
