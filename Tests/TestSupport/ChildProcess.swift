import Foundation

/// A child process whose combined stdout/stderr is collected while it runs.
public final class ChildProcess: @unchecked Sendable {
    private let process = Process()
    private let lock = NSLock()
    private var collected = Data()
    public let commandLine: String

    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], directory: String? = nil) throws {
        commandLine = ([executable] + arguments).joined(separator: " ")
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let chunk = handle.availableData
            guard let self, !chunk.isEmpty else { return }
            self.lock.withLock { self.collected.append(chunk) }
        }
        try process.run()
    }

    public var output: String { lock.withLock { String(decoding: collected, as: UTF8.self) } }

    /// Kills the process (and, for mpirun, its job) when the test process exits, for servers that
    /// outlive the test that started them.
    public func killAtExit() { ChildRegistry.shared.add(process.processIdentifier) }

    public func terminate() {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
    }
    public var isRunning: Bool { process.isRunning }
    public var pid: Int32 { process.processIdentifier }

    /// Waits up to `timeout` seconds for `predicate(output)`; true when it held.
    public func waitForOutput(timeout: Double, _ predicate: (String) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if predicate(output) { return true }
            if !process.isRunning { return predicate(output) }
            usleep(20_000)
        }
        return false
    }

    /// Waits for exit; on timeout kills the process group and returns nil.
    public func wait(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        process.waitUntilExit()
        usleep(50_000)  // let the readability handler drain the pipe
        return process.terminationStatus
    }
}

/// Runs a command to completion (killed after `timeout`) and returns its status and output.
public func runCommand(_ executable: String, _ arguments: [String], timeout: Double = 300,
                       environment: [String: String] = [:], directory: String? = nil) throws -> (status: Int32, output: String) {
    let child = try ChildProcess(executable, arguments, environment: environment, directory: directory)
    let status = child.wait(timeout: timeout)
    return (status ?? -9, child.output + (status == nil ? "\n[killed after \(timeout) s]" : ""))
}

/// Where SwiftPM put this build's executables: beside the test bundle.
public let productsDirectory: String = {
    var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    while url.pathExtension != "xctest", url.path != "/" { url.deleteLastPathComponent() }
    if url.path == "/" { url = URL(fileURLWithPath: CommandLine.arguments[0]) }
    return url.deletingLastPathComponent().path
}()

public func product(_ name: String) -> String { productsDirectory + "/" + name }

/// The repository root (for fixtures), from this file's location.
public let repositoryRoot: String = {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
}()

/// `mpirun` on PATH or at Debian's location.
public let mpirunPath: String = {
    for candidate in ["/usr/bin/mpirun", "/usr/local/bin/mpirun"] where FileManager.default.isExecutableFile(atPath: candidate) {
        return candidate
    }
    return "/usr/bin/mpirun"
}()

/// Pids to kill when the test process exits.
final class ChildRegistry: @unchecked Sendable {
    static let shared = ChildRegistry()
    private let lock = NSLock()
    private var pids: [Int32] = []
    private init() {
        atexit {
            for pid in ChildRegistry.shared.lock.withLock({ ChildRegistry.shared.pids }) {
                kill(pid, SIGTERM)
            }
            usleep(200_000)
            for pid in ChildRegistry.shared.lock.withLock({ ChildRegistry.shared.pids }) { kill(pid, SIGKILL) }
        }
    }
    func add(_ pid: Int32) { lock.withLock { pids.append(pid) } }
}

/// A python3 that has `requests` (the seed document's client), if any.
public let pythonWithRequests: String? = {
    for candidate in ["/usr/bin/python3", "/usr/local/bin/python3"] + (ProcessInfo.processInfo.environment["PATH"] ?? "")
        .split(separator: ":").map { $0 + "/python3" } where FileManager.default.isExecutableFile(atPath: candidate) {
        if let result = try? runCommand(candidate, ["-c", "import requests"], timeout: 30), result.status == 0 { return candidate }
    }
    return nil
}()

/// A test set-up step that failed, with what it saw.
public struct SetupFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
