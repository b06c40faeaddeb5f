import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small HTTP/1.1 server on 127.0.0.1 for tests, on plain sockets and threads of its own (so it
/// answers even when every Swift-concurrency thread is busy running other tests): static files
/// with Range support (as CDNs and the Hugging Face hub serve them), a mimic of the hub's
/// `api/models/ORG/NAME/revision/REV` and `ORG/NAME/resolve/REV/FILE` URLs, and `/big`, which
/// announces 64 MiB, plus redirects (`redirect(_:to:)`). One request per connection.
public final class LoopbackHTTPServer: @unchecked Sendable {
    private let lock = NSLock()
    private var files: [String: Data] = [:]
    private var redirects: [String: String] = [:]
    private var log: [(path: String, range: String?)] = []
    private var listener: Int32 = -1
    public private(set) var port = 0

    public init() {}

    public var baseURL: String { "http://127.0.0.1:\(port)" }
    public var requests: [(path: String, range: String?)] { lock.withLock { log } }
    public func put(_ path: String, _ data: Data) { lock.withLock { files[path] = data } }
    /// Answers `path` with a 302 to `location` (any URL, any scheme).
    public func redirect(_ path: String, to location: String) { lock.withLock { redirects[path] = location } }

    /// Publishes a model directory as hub repository `org/name` at `commit`.
    public func publishModel(_ repo: String, directory: String, commit: String) throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        for name in names {
            put("/\(repo)/resolve/\(commit)/\(name)", try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name)))
        }
        let listing: [String: Any] = ["id": repo, "sha": commit, "siblings": (names + ["README.md"]).map { ["rfilename": $0] }]
        put("/api/models/\(repo)/revision/main", try JSONSerialization.data(withJSONObject: listing))
        put("/\(repo)/resolve/\(commit)/README.md", Data("# test model".utf8))
    }

    public func start() throws {
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw SetupFailure("socket() failed") }
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 64) == 0 else { throw SetupFailure("cannot listen on 127.0.0.1") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    public func stop() {
        if listener >= 0 { shutdown(listener, Int32(SHUT_RDWR)); close(listener); listener = -1 }
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            let thread = Thread { [self] in serve(client) }
            thread.start()
        }
    }

    private func serve(_ client: Int32) {
        defer { close(client) }
        var request = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !request.contains("\r\n\r\n".data(using: .utf8)!) {
            let count = read(client, &buffer, buffer.count)
            guard count > 0 else { return }
            request.append(contentsOf: buffer[0..<count])
            if request.count > 65536 { return }
        }
        let head = String(decoding: request, as: UTF8.self).components(separatedBy: "\r\n")
        let parts = head.first?.split(separator: " ") ?? []
        guard parts.count >= 2 else { return }
        let method = String(parts[0]), path = String(parts[1]).components(separatedBy: "?")[0]
        let range = head.first { $0.lowercased().hasPrefix("range:") }.map { String($0.dropFirst(6)).trimmingCharacters(in: .whitespaces) }
        lock.withLock { log.append((path, range)) }

        if path == "/big" {
            respond(client, status: "200 OK", headers: ["Content-Length: \(64 << 20)"], body: nil)
            let chunk = [UInt8](repeating: 0, count: 1 << 20)
            for _ in 0..<64 where send(client, chunk, chunk.count, Int32(MSG_NOSIGNAL)) > 0 {}
            return
        }
        if let location = lock.withLock({ redirects[path] }) {
            respond(client, status: "302 Found", headers: ["Location: \(location)", "Content-Length: 0"], body: nil)
            return
        }
        guard let data = lock.withLock({ files[path] }) else {
            respond(client, status: "404 Not Found", headers: ["Content-Length: 9"], body: Data("not found".utf8))
            return
        }
        var body = data
        var status = "200 OK"
        var headers = ["Content-Type: application/octet-stream"]
        if let range, range.hasPrefix("bytes="), let start = Int(range.dropFirst(6).split(separator: "-").first ?? ""), start < data.count {
            body = data.subdata(in: start..<data.count)
            status = "206 Partial Content"
            headers.append("Content-Range: bytes \(start)-\(data.count - 1)/\(data.count)")
        }
        headers.append("Content-Length: \(body.count)")
        respond(client, status: status, headers: headers, body: method == "HEAD" ? nil : body)
    }

    private func respond(_ client: Int32, status: String, headers: [String], body: Data?) {
        let head = (["HTTP/1.1 \(status)", "Connection: close"] + headers).joined(separator: "\r\n") + "\r\n\r\n"
        var bytes = Data(head.utf8)
        if let body { bytes.append(body) }
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let sent = send(client, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if sent <= 0 { return }
                offset += sent
            }
        }
    }
}

/// A TCP listener on 127.0.0.1 that only counts the connections it accepts (and closes them):
/// shows whether a client ever tried to reach it.
public final class LoopbackConnectionCounter: @unchecked Sendable {  // `accepted` is guarded by `lock`; the rest is set once
    private let lock = NSLock()
    private var accepted = 0
    private var listener: Int32 = -1
    public private(set) var port = 0

    public init() throws {
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw SetupFailure("socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        // A sockaddr_in is passed as the sockaddr of its size that bind/getsockname take.
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 16) == 0 else { throw SetupFailure("cannot listen on 127.0.0.1") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        let fd = listener
        Thread { [self] in
            while true {
                let client = accept(fd, nil, nil)
                guard client >= 0 else { return }
                lock.withLock { accepted += 1 }
                close(client)
            }
        }.start()
    }

    public var connections: Int { lock.withLock { accepted } }

    public func stop() {
        if listener >= 0 { shutdown(listener, Int32(SHUT_RDWR)); close(listener); listener = -1 }
    }
}
