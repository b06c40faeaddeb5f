import Foundation

/// A TCP connection to a loopback port driven byte by byte: for clients that misbehave (send half
/// a header, trickle a body, hang up mid-request), which URLSession cannot be made to do.
public final class RawConnection: @unchecked Sendable {  // one test thread uses a connection
    public let descriptor: Int32

    public init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw SetupFailure("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw SetupFailure("connect to \(port): \(reason)")
        }
    }

    deinit { close(descriptor) }

    public func send(_ text: String) { send(Data(text.utf8)) }
    public func send(_ data: Data) {
        _ = data.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Everything the server sends until it closes the connection or `timeout` passes; `closed`
    /// tells which.
    public func receive(timeout: Double) -> (text: String, closed: Bool) {
        var collected = Data()
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000)))
            if ready <= 0 { continue }
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count <= 0 { return (String(decoding: collected, as: UTF8.self), true) }
            collected.append(contentsOf: buffer[0..<count])
        }
        return (String(decoding: collected, as: UTF8.self), false)
    }

    /// The status code of the first response in `text`.
    public static func status(_ text: String) -> Int? {
        guard text.hasPrefix("HTTP/1.1 ") else { return nil }
        return Int(text.dropFirst(9).prefix(3))
    }

    /// Hangs up without waiting (RST is not needed: a FIN is what a client that gives up sends).
    public func hangUp() { shutdown(descriptor, Int32(SHUT_RDWR)) }
}

/// The peak resident memory (VmHWM) and current (VmRSS) of a process, in bytes.
public func processMemory(_ pid: Int32) -> (peak: Int64, current: Int64)? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    func field(_ name: String) -> Int64? {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return nil }
        return Int64(line.split(separator: " ").dropFirst().first ?? "").map { $0 * 1024 }
    }
    guard let peak = field("VmHWM"), let current = field("VmRSS") else { return nil }
    return (peak, current)
}

/// Every process below `pid` (children, their children, …), from /proc.
public func descendants(of pid: Int32) -> [(pid: Int32, command: String)] {
    var parents: [Int32: Int32] = [:], commands: [Int32: String] = [:]
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let child = Int32(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { continue }
        // "pid (comm) state ppid …": the command may hold spaces, so fields count from the last ')'.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 2, let parent = Int32(fields[1]) else { continue }
        parents[child] = parent
        let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(name)/cmdline"))) ?? Data()
        commands[child] = String(decoding: cmdline.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
    }
    var found: [(Int32, String)] = [], frontier = [pid]
    while let next = frontier.popLast() {
        for (child, parent) in parents where parent == next {
            found.append((child, commands[child] ?? ""))
            frontier.append(child)
        }
    }
    return found
}
