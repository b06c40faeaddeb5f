import Foundation
import Shared
import Testing
import TestSupport

@Suite struct CurlTests {
    @Test func downloadsAFileURL() throws {
        let dir = TemporaryDirectory()
        let source = dir.file("source.bin")
        let payload = Data((0..<10_000).map { UInt8($0 % 251) })
        try payload.write(to: URL(fileURLWithPath: source))
        let bytes = try curlDownload("file://" + source, to: dir.file("copy.bin"))
        #expect(bytes == 10_000)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file("copy.bin"))) == payload)
    }

    @Test func sizeCapStopsTheTransfer() throws {
        let dir = TemporaryDirectory()
        let source = dir.file("big.bin")
        try Data(count: 100_000).write(to: URL(fileURLWithPath: source))
        let error = #expect(throws: DownloadError.self) {
            try curlDownload("file://" + source, to: dir.file("copy.bin"), limits: DownloadLimits(maxBytes: 1000))
        }
        #expect(error?.kind == .tooLarge)
    }

    @Test func badURLsAreReported() {
        let dir = TemporaryDirectory()
        let error = #expect(throws: DownloadError.self) { try curlDownload("gopherx://what", to: dir.file("x")) }
        #expect(error?.kind == .badURL)
        let missing = #expect(throws: DownloadError.self) { try curlDownload("file:///no/such/file", to: dir.file("y")) }
        #expect(missing?.kind == .network)
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
