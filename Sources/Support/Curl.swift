import CCurl
import Foundation

/// A download that failed: bad URL, refused connection, HTTP error status, too large, too slow.
public struct DownloadError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable { case badURL, network, httpStatus(Int), tooLarge, timeout, domainNotAllowed, io, tooManyRedirects, addressNotAllowed }
    public let kind: Kind
    public let description: String
    /// The answer came from a loopback or private address (a server must not tell its clients
    /// what hosts on its own network answer).
    public var fromPrivateAddress = false
    public init(_ kind: Kind, _ description: String) { self.kind = kind; self.description = description }
}

/// Limits applied to every download.
public struct DownloadLimits: Sendable {
    public var maxBytes: Int64
    public var timeoutSeconds: Int
    public var connectTimeoutSeconds: Int
    public var maxRedirects: Int
    public init(maxBytes: Int64 = 2 << 30, timeoutSeconds: Int = 300, connectTimeoutSeconds: Int = 15, maxRedirects: Int = 5) {
        self.maxBytes = maxBytes; self.timeoutSeconds = timeoutSeconds
        self.connectTimeoutSeconds = connectTimeoutSeconds; self.maxRedirects = maxRedirects
    }
}

private let curlGlobal: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

/// Receives the body of one transfer into a file, enforcing the size cap as bytes arrive.
private final class DownloadSink {
    let file: FileHandle
    let maxBytes: Int64
    let handle: OpaquePointer
    var written: Int64 = 0
    /// Bytes already in the file before this transfer (the Range start).
    var base: Int64 = 0
    var resumed: Bool
    var overLimit = false
    var writeError: String?
    var progress: ((Int64, Int64?) -> Void)?
    var lastProgress = 0.0
    var expected: Int64?
    /// The first address refused under `denyPrivateAddresses`.
    var refusedAddress: String?
    init(file: FileHandle, maxBytes: Int64, handle: OpaquePointer, resumed: Bool) {
        self.file = file; self.maxBytes = maxBytes; self.handle = handle; self.resumed = resumed
    }

    /// Back to the state before the first body byte (the body of a redirect is dropped).
    func restart(at offset: Int64) throws {
        try file.truncate(atOffset: UInt64(offset))
        written = offset
        base = offset
        resumed = offset > 0
    }

    /// On the first body bytes: a server that ignored the Range request sends the whole file
    /// (200, not 206), so the partial file starts over.
    func checkResume() {
        guard resumed else { return }
        resumed = false
        var status = 0
        _ = shim_curl_getinfo_long(UnsafeMutableRawPointer(handle), CURLINFO_RESPONSE_CODE, &status)
        if status == 200 {
            try? file.truncate(atOffset: 0)
            written = 0
            base = 0
        }
    }
}

/// Downloads `url` into `destination` with libcurl over HTTP(S) only (the request and every
/// redirect), following at most `limits.maxRedirects` redirects, failing on HTTP status ≥ 400 and
/// on bodies over `limits.maxBytes`.
/// `checkRedirect`, when given, sees each redirect's absolute URL before it is followed and throws
/// to refuse it; redirects are then followed here, not by libcurl, and `headers` go to `url` only.
/// `denyPrivateAddresses` refuses to connect to a `PrivateAddress` (checked on each address libcurl
/// is about to connect to, after DNS, for every hop).
/// `resumeFrom` > 0 appends to an existing partial file with a Range request (starting over if the
/// server answers with the whole file). `progress(bytes, total)` is called at most twice a second.
/// Returns the number of bytes in the file.
@discardableResult
public func curlDownload(
    _ url: String, to destination: String, limits: DownloadLimits = DownloadLimits(),
    headers: [String] = [], resumeFrom: Int64 = 0, denyPrivateAddresses: Bool = false,
    checkRedirect: ((String) throws -> Void)? = nil, progress: ((Int64, Int64?) -> Void)? = nil
) throws -> Int64 {
    _ = curlGlobal
    guard let handle = curl_easy_init() else { throw DownloadError(.network, "libcurl could not start a transfer") }
    defer { curl_easy_cleanup(handle) }
    if resumeFrom == 0, !FileManager.default.createFile(atPath: destination, contents: nil) {
        throw DownloadError(.io, "\(destination): cannot create")
    }
    guard let file = FileHandle(forWritingAtPath: destination) else {
        throw DownloadError(.io, "\(destination): cannot open for writing")
    }
    defer { try? file.close() }
    if resumeFrom > 0 { _ = try? file.seekToEnd() }
    let sink = DownloadSink(file: file, maxBytes: limits.maxBytes, handle: OpaquePointer(handle), resumed: resumeFrom > 0)
    sink.written = resumeFrom
    sink.base = resumeFrom
    sink.progress = progress

    var headerList: UnsafeMutablePointer<curl_slist>? = nil
    for header in headers { headerList = curl_slist_append(headerList, header) }
    defer { curl_slist_free_all(headerList) }

    // No file://, ftp://, gopher://… for the URL or any redirect (libcurl ≥ 7.85; refuse if unknown).
    guard shim_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK,
          shim_curl_setopt_string(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK else {
        throw DownloadError(.network, "this libcurl cannot be limited to http and https (7.85 or later is needed)")
    }
    _ = shim_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, checkRedirect == nil ? 1 : 0)
    _ = shim_curl_setopt_long(handle, CURLOPT_MAXREDIRS, limits.maxRedirects)
    _ = shim_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT, limits.connectTimeoutSeconds)
    _ = shim_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
    _ = shim_curl_setopt_long(handle, CURLOPT_FAILONERROR, 0)
    _ = shim_curl_setopt_offset(handle, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(limits.maxBytes))
    _ = shim_curl_setopt_string(handle, CURLOPT_USERAGENT, "prithvi-mpi/1")
    if let headerList { _ = shim_curl_setopt_pointer(handle, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headerList)) }
    if resumeFrom > 0 { _ = shim_curl_setopt_offset(handle, CURLOPT_RESUME_FROM_LARGE, curl_off_t(resumeFrom)) }
    let context = Unmanaged.passRetained(sink)
    defer { context.release() }
    _ = shim_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, context.toOpaque())
    if denyPrivateAddresses {
        _ = shim_curl_setopt_pointer(handle, CURLOPT_OPENSOCKETDATA, context.toOpaque())
        // Every connection attempt (each resolved address, each hop) comes through here first.
        _ = shim_curl_setopt_opensocket_function(handle) { user, _, address in
            // `user` is the retained sink (OPENSOCKETDATA), alive until curl_easy_perform returns.
            let sink = Unmanaged<DownloadSink>.fromOpaque(user!).takeUnretainedValue()
            guard let address else { return CURL_SOCKET_BAD }
            var bytes = [UInt8](repeating: 0, count: 16)
            let count = Int(shim_curl_sockaddr_ip(address, &bytes))
            let ip = Array(bytes.prefix(count))
            if PrivateAddress.contains(ip) {
                if sink.refusedAddress == nil { sink.refusedAddress = count > 0 ? PrivateAddress.describe(ip) : "a non-IP address" }
                return CURL_SOCKET_BAD
            }
            return socket(address.pointee.family, address.pointee.socktype, address.pointee.protocol)
        }
    }
    _ = shim_curl_setopt_write_function(handle) { data, size, count, user in
        let sink = Unmanaged<DownloadSink>.fromOpaque(user!).takeUnretainedValue()
        sink.checkResume()
        let length = size * count
        guard sink.written + Int64(length) <= sink.maxBytes else { sink.overLimit = true; return 0 }
        do {
            try sink.file.write(contentsOf: Data(bytesNoCopy: data!, count: length, deallocator: .none))
        } catch {
            sink.writeError = "\(error)"
            return 0
        }
        sink.written += Int64(length)
        if let progress = sink.progress {
            let now = monotonicSeconds()
            if now - sink.lastProgress >= 0.5 {
                sink.lastProgress = now
                var total: curl_off_t = -1
                _ = shim_curl_getinfo_offset(UnsafeMutableRawPointer(sink.handle), CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &total)
                progress(sink.written, total >= 0 ? sink.base + Int64(total) : nil)
            }
        }
        return length
    }

    var current = url
    var redirects = 0
    let deadline = monotonicSeconds() + Double(limits.timeoutSeconds)
    while true {
        _ = shim_curl_setopt_string(handle, CURLOPT_URL, current)
        // One time limit for the whole chain of redirects.
        _ = shim_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, max(1, Int((deadline - monotonicSeconds()) * 1000)))
        let code = curl_easy_perform(handle)
        var status = 0
        _ = shim_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        if sink.overLimit || code == CURLE_FILESIZE_EXCEEDED {
            throw DownloadError(.tooLarge, "\(current): larger than the limit of \(limits.maxBytes) bytes")
        }
        if let writeError = sink.writeError { throw DownloadError(.io, "\(destination): \(writeError)") }
        if code != CURLE_OK, let refused = sink.refusedAddress {
            throw DownloadError(.addressNotAllowed, "\(current): refused to connect to \(refused), a private or loopback address")
        }
        guard code == CURLE_OK else {
            let message = String(cString: curl_easy_strerror(code))
            switch code {
            case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL: throw DownloadError(.badURL, "\(current): \(message)")
            case CURLE_OPERATION_TIMEDOUT: throw DownloadError(.timeout, "\(current): \(message) after \(limits.timeoutSeconds) s")
            case CURLE_TOO_MANY_REDIRECTS: throw DownloadError(.tooManyRedirects, "\(url): more than \(limits.maxRedirects) redirects")
            default: throw DownloadError(.network, "\(current): \(message)")
            }
        }
        if status >= 400 {
            var error = DownloadError(.httpStatus(status), "\(current): HTTP status \(status)")
            var ip: UnsafeMutablePointer<CChar>? = nil
            if shim_curl_getinfo_string(handle, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK, let ip {
                error.fromPrivateAddress = PrivateAddress.contains(String(cString: ip)) ?? false
            }
            throw error
        }
        var location: UnsafeMutablePointer<CChar>? = nil
        guard let checkRedirect, (300..<400).contains(status),
              shim_curl_getinfo_string(handle, CURLINFO_REDIRECT_URL, &location) == CURLE_OK, let location else {
            return sink.written
        }
        let next = String(cString: location)
        redirects += 1
        guard redirects <= limits.maxRedirects else {
            throw DownloadError(.tooManyRedirects, "\(url): more than \(limits.maxRedirects) redirects")
        }
        try checkRedirect(next)
        do { try sink.restart(at: resumeFrom) } catch { throw DownloadError(.io, "\(destination): \(error)") }
        // Credentials stay with the URL they were given for.
        if headerList != nil { _ = shim_curl_setopt_pointer(handle, CURLOPT_HTTPHEADER, nil) }
        current = next
    }
}
