import CCurl
import Foundation

/// A download that failed: bad URL, refused connection, HTTP error status, too large, too slow.
public struct DownloadError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable { case badURL, network, httpStatus(Int), tooLarge, timeout, domainNotAllowed, io }
    public let kind: Kind
    public let description: String
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
    init(file: FileHandle, maxBytes: Int64, handle: OpaquePointer, resumed: Bool) {
        self.file = file; self.maxBytes = maxBytes; self.handle = handle; self.resumed = resumed
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

/// Downloads `url` into `destination` with libcurl (HTTP(S) and file://), following at most
/// `limits.maxRedirects` redirects, failing on HTTP status ≥ 400 and on bodies over `limits.maxBytes`.
/// `resumeFrom` > 0 appends to an existing partial file with a Range request (starting over if the
/// server answers with the whole file). `progress(bytes, total)` is called at most twice a second.
/// Returns the number of bytes in the file.
@discardableResult
public func curlDownload(
    _ url: String, to destination: String, limits: DownloadLimits = DownloadLimits(),
    headers: [String] = [], resumeFrom: Int64 = 0, progress: ((Int64, Int64?) -> Void)? = nil
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

    _ = shim_curl_setopt_string(handle, CURLOPT_URL, url)
    _ = shim_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 1)
    _ = shim_curl_setopt_long(handle, CURLOPT_MAXREDIRS, limits.maxRedirects)
    _ = shim_curl_setopt_long(handle, CURLOPT_TIMEOUT, limits.timeoutSeconds)
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

    let code = curl_easy_perform(handle)
    var status = 0
    _ = shim_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
    if sink.overLimit || code == CURLE_FILESIZE_EXCEEDED {
        throw DownloadError(.tooLarge, "\(url): larger than the limit of \(limits.maxBytes) bytes")
    }
    if let writeError = sink.writeError { throw DownloadError(.io, "\(destination): \(writeError)") }
    guard code == CURLE_OK else {
        let message = String(cString: curl_easy_strerror(code))
        switch code {
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL: throw DownloadError(.badURL, "\(url): \(message)")
        case CURLE_OPERATION_TIMEDOUT: throw DownloadError(.timeout, "\(url): \(message) after \(limits.timeoutSeconds) s")
        default: throw DownloadError(.network, "\(url): \(message)")
        }
    }
    if status >= 400 { throw DownloadError(.httpStatus(status), "\(url): HTTP status \(status)") }
    return sink.written
}
