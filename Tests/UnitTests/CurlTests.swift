import Foundation
import Support
import TestSupport
import Testing

@Suite struct CurlTests {
    static let server: LoopbackHTTPServer = {
        let server = LoopbackHTTPServer()
        try! server.start()
        return server
    }()

    @Test func downloadsOverHTTP() throws {
        let dir = TemporaryDirectory()
        let payload = Data((0..<10_000).map { UInt8($0 % 251) })
        Self.server.put("/curl/source.bin", payload)
        let bytes = try curlDownload(Self.server.baseURL + "/curl/source.bin", to: dir.file("copy.bin"))
        #expect(bytes == 10_000)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file("copy.bin"))) == payload)
    }

    @Test func sizeCapStopsTheTransfer() throws {
        let dir = TemporaryDirectory()
        Self.server.put("/curl/big.bin", Data(count: 100_000))
        let error = #expect(throws: DownloadError.self) {
            try curlDownload(Self.server.baseURL + "/curl/big.bin", to: dir.file("copy.bin"), limits: DownloadLimits(maxBytes: 1000))
        }
        #expect(error?.kind == .tooLarge)
    }

    @Test func badURLsAreReported() {
        let dir = TemporaryDirectory()
        let error = #expect(throws: DownloadError.self) { try curlDownload("gopherx://what", to: dir.file("x")) }
        #expect(error?.kind == .badURL)
        let refused = #expect(throws: DownloadError.self) { try curlDownload("http://127.0.0.1:1/x", to: dir.file("y")) }
        #expect(refused?.kind == .network)
    }

    /// Only http and https, for the URL itself and for any redirect libcurl follows.
    @Test func otherSchemesAreRefusedEvenThroughARedirect() throws {
        let dir = TemporaryDirectory()
        let source = dir.file("local.bin")
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: source))
        for url in ["file://" + source, "ftp://127.0.0.1:1/x", "gopher://127.0.0.1:1/x"] {
            let error = #expect(throws: DownloadError.self) { try curlDownload(url, to: dir.file("copy")) }
            #expect(error?.kind == .badURL, "\(url)")
        }
        let ftp = try LoopbackConnectionCounter()
        defer { ftp.stop() }
        Self.server.redirect("/curl/to-ftp", to: "ftp://127.0.0.1:\(ftp.port)/x")
        Self.server.redirect("/curl/to-file", to: "file://" + source)
        for path in ["/curl/to-ftp", "/curl/to-file"] {
            let error = #expect(throws: DownloadError.self) { try curlDownload(Self.server.baseURL + path, to: dir.file("copy")) }
            #expect(error?.kind == .badURL, "\(path)")
        }
        #expect(ftp.connections == 0, "the ftp:// redirect was followed")
    }

    /// With `checkRedirect`, each hop is shown before it is followed, and refused when it throws.
    @Test func redirectsAreCheckedHopByHop() throws {
        let dir = TemporaryDirectory()
        Self.server.put("/curl/target.bin", Data([9, 8, 7]))
        Self.server.redirect("/curl/a", to: Self.server.baseURL + "/curl/b")
        Self.server.redirect("/curl/b", to: "/curl/target.bin")
        Self.server.redirect("/curl/loop", to: "/curl/loop")
        let seen = LockedList()
        let bytes = try curlDownload(Self.server.baseURL + "/curl/a", to: dir.file("a"), checkRedirect: { seen.append($0) })
        #expect(bytes == 3)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file("a"))) == Data([9, 8, 7]))
        #expect(seen.items == [Self.server.baseURL + "/curl/b", Self.server.baseURL + "/curl/target.bin"])
        struct Refused: Error {}
        #expect(throws: Refused.self) {
            try curlDownload(Self.server.baseURL + "/curl/a", to: dir.file("b"), checkRedirect: { if $0.hasSuffix("target.bin") { throw Refused() } })
        }
        let loop = #expect(throws: DownloadError.self) {
            try curlDownload(Self.server.baseURL + "/curl/loop", to: dir.file("c"), limits: DownloadLimits(maxRedirects: 3), checkRedirect: { _ in })
        }
        #expect(loop?.kind == .tooManyRedirects)
    }

    @Test func privateAddressesAreNeverContactedWhenDenied() throws {
        let dir = TemporaryDirectory()
        Self.server.put("/curl/private.bin", Data([1]))
        // Counted by path: the suite's other tests use the same server at the same time.
        func asked() -> Int { Self.server.requests.filter { $0.path == "/curl/private.bin" }.count }
        let before = asked()
        for host in ["127.0.0.1", "localhost", "[::1]"] {
            let url = "http://\(host):\(Self.server.port)/curl/private.bin"
            let error = #expect(throws: DownloadError.self) { try curlDownload(url, to: dir.file("x"), denyPrivateAddresses: true) }
            #expect(error?.kind == .addressNotAllowed, "\(host): \(error.map { "\($0)" } ?? "")")
            #expect(error?.description.contains("a private or loopback address") == true)
        }
        #expect(asked() == before)
        #expect(try curlDownload(Self.server.baseURL + "/curl/private.bin", to: dir.file("y")) == 1, "allowed without the flag")
    }
}

final class LockedList: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var list: [String] = []
    func append(_ item: String) { lock.withLock { list.append(item) } }
    var items: [String] { lock.withLock { list } }
}

@Suite struct PrivateAddressTests {
    @Test func loopbackPrivateAndLinkLocalAreRefused() {
        for address in ["127.0.0.1", "127.255.0.9", "0.0.0.0", "0.1.2.3", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                        "169.254.169.254", "100.64.0.1", "100.127.255.255", "192.0.0.8", "198.18.0.1", "224.0.0.1", "255.255.255.255",
                        "::1", "::", "fe80::1", "febf::1", "fec0::1", "fc00::1", "fd12:3456::1", "ff02::1",
                        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::127.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::1", "2002:c0a8:101::1"] {
            #expect(PrivateAddress.contains(address) == true, "\(address)")
        }
    }

    @Test func publicAddressesAreAllowed() {
        for address in ["8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.1", "172.15.255.255", "172.32.0.1", "192.169.0.1",
                        "169.253.0.1", "11.0.0.1", "198.20.0.1", "223.255.255.255",
                        "2606:4700::1111", "2a00:1450:4001::1", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "fe00::1"] {
            #expect(PrivateAddress.contains(address) == false, "\(address)")
        }
        #expect(PrivateAddress.contains("localhost") == nil)
        #expect(PrivateAddress.contains([1, 2, 3]) == true, "not an address")
        #expect(PrivateAddress.describe([127, 0, 0, 1]) == "127.0.0.1")
    }
}

@Suite struct BackoffTests {
    @Test func sleepsGrowToTheCap() {
        var backoff = Backoff(maxSleepMicroseconds: 500)
        var sleeps: [UInt32] = []
        for _ in 0..<40 { sleeps.append(backoff.nextSleepMicroseconds); backoff.wait() }
        #expect(sleeps.prefix(16).allSatisfy { $0 == 0 })
        #expect(sleeps[16] == 20)
        #expect(sleeps.last == 500)
        #expect(zip(sleeps, sleeps.dropFirst()).allSatisfy { $0 <= $1 })
        backoff.reset()
        #expect(backoff.nextSleepMicroseconds == 0)
    }
}
