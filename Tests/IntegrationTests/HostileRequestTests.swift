import Foundation
import Geo
import Support
import TestSupport
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `serve` against clients that misbehave, over real loopback HTTP: requests too big for the
/// memory budget, more requests than may run, a client that hangs up, two requests with one id,
/// FIFOs and devices as inputs, half-sent headers, trickled bodies, a crowd of idle connections,
/// an output that cannot be moved into place. Every case asserts the status and vLLM's error JSON,
/// that the server stays healthy and answers a normal request, and that nothing is left behind.
/// (Driver allow-lists, redirects and private addresses: ServeTests and ServeURLTests.)
@Suite(.serialized) struct HostileRequestTests {
    static let budget: Int64 = 96 << 20

    final class Fixture: @unchecked Sendable {
        let dir = TemporaryDirectory("hostile")
        var server: ChildProcess!
        var port = 0
        var startRSS: Int64 = 0
        var media: String { dir.file("media") }
        var outputs: String { dir.file("outputs") }
        var url: String { "http://127.0.0.1:\(port)" }
        var model: String { ServeTests.fixture.model }

        init() {
            do {
                for path in [media, outputs] { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
                for (name, width, height) in [("small.tif", 300, 260), ("slow.tif", 2600, 2600)] {
                    var scene = SceneFactory.Spec()
                    scene.width = width; scene.height = height
                    try SceneFactory.create(scene, at: media + "/" + name)
                }
                // 30000×300: 13 B × 30000 × 224 of blending rows alone, more than the budget; sparse, so 30 kB on disk.
                let wide = try RasterDataset.create(media + "/wide.tif", width: 30000, height: 300, bands: 6, type: .int16,
                                                    options: ["SPARSE_OK=TRUE", "TILED=YES"])
                try wide.close()
                (server, port) = try ServeTests.startServer(model: model, arguments: [
                    "--allowed-local-media-path", media, "--max-memory", "\(HostileRequestTests.budget)",
                    "--max-concurrent-requests", "1", "--max-queued-requests", "0", "--max-connections", "16",
                    "--idle-timeout", "2", "--body-timeout", "4", "--threads", "1",
                ], outputs: outputs)
                startRSS = processMemory(server.pid)?.current ?? 0
            } catch {
                fatalError("hostile fixture: \(error)")
            }
        }
    }
    static let fixture = Fixture()

    /// A session of the suite's own: URLSession.shared queues requests per host behind the
    /// other suites' (their servers are on 127.0.0.1 too), which blurs what each test sees.
    static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = 200
        configuration.timeoutIntervalForRequest = 300
        return URLSession(configuration: configuration)
    }()

    /// GET on the suite's session.
    static func get(_ url: String) async throws -> (Int, Data) {
        let (data, response) = try await session.data(from: URL(string: url)!)
        return ((response as! HTTPURLResponse).statusCode, data)
    }

    static func body(_ path: String) -> [String: Any] {
        ["model": fixture.model, "data": ["data": path, "data_format": "path", "out_data_format": "path"]]
    }

    /// POSTs /pooling; the status, the error object (if any) and the headers.
    static func pool(_ path: String, id: String? = nil) async throws -> (Int, [String: Any], [AnyHashable: Any]) {
        var request = URLRequest(url: URL(string: fixture.url + "/pooling")!)
        request.httpMethod = "POST"
        request.timeoutInterval = 300
        request.httpBody = try JSONSerialization.data(withJSONObject: body(path))
        if let id { request.setValue(id, forHTTPHeaderField: "X-Request-Id") }
        let (data, response) = try await session.data(for: request)
        let http = response as! HTTPURLResponse
        return (http.statusCode, (ServeTests.object(data)["error"] as? [String: Any]) ?? [:], http.allHeaderFields)
    }

    static func expectError(_ error: [String: Any], _ status: Int, _ type: String, _ fragment: String,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(error["code"] as? Int == status && error["type"] as? String == type && error["param"] is NSNull,
                "\(error)", sourceLocation: sourceLocation)
        #expect((error["message"] as? String ?? "").contains(fragment), "\(error)", sourceLocation: sourceLocation)
    }

    /// The server is healthy and answers a small request in normal time.
    static func expectHealthy(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let (health, _) = try await get(fixture.url + "/health")
        #expect(health == 200, sourceLocation: sourceLocation)
        let start = Date()
        let (status, error, _) = try await pool(fixture.media + "/small.tif")
        #expect(status == 200, "\(error)", sourceLocation: sourceLocation)
        #expect(Date().timeIntervalSince(start) < 20, "a small request took \(Date().timeIntervalSince(start)) s", sourceLocation: sourceLocation)
    }

    /// Requests admitted now (they hold room under the budget until they answer).
    static func jobsRunning(port: Int? = nil) async throws -> Int {
        let (_, text) = try await get("http://127.0.0.1:\(port ?? fixture.port)/metrics")
        let line = String(decoding: text, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("prithvi_requests_admitted ") }
        return line.flatMap { Double($0.split(separator: " ").last ?? "") }.map { Int($0) } ?? 0
    }

    /// Waits until `predicate(jobs running)` holds (or 60 s pass).
    static func waitForJobs(port: Int? = nil, _ predicate: (Int) -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if predicate(try await jobsRunning(port: port)) { return true }
            try await Task.sleep(nanoseconds: 5_000_000)
        }
        return false
    }

    static func leftovers() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: fixture.outputs).filter { $0.contains("partial") || $0.hasPrefix(".") }
    }

    @Test func aRequestLargerThanTheWholeBudgetIs413BeforeAnyWork() async throws {
        let f = Self.fixture
        let (status, error, _) = try await Self.pool(f.media + "/wide.tif", id: "wide")
        #expect(status == 413)
        Self.expectError(error, 413, "RequestTooLargeError", "--max-memory")
        #expect(!FileManager.default.fileExists(atPath: f.outputs + "/pool-wide.tiff"))
        try await Self.expectHealthy()
    }

    @Test func overTheLimitsA503WithRetryAfterAndASecondUseOfARunningIdIs409() async throws {
        let f = Self.fixture
        // While a slow request holds the one slot. On a loaded machine the slow one may be done
        // before the others are answered; such an attempt tells nothing and is made again.
        for attempt in 1...5 {
            let first = "first-\(attempt)", second = "second-\(attempt)"
            let slow = Task { () -> (Int, String) in
                let (status, error, _) = try await Self.pool(f.media + "/slow.tif", id: first)
                return (status, "\(error)")
            }
            guard try await Self.waitForJobs({ $0 == 1 }) else {
                // Seen under a loaded full run: /metrics never showed it admitted. Nothing to judge.
                let (status, error) = try await slow.value
                print("attempt \(attempt): the slow request was never seen running (it answered \(status) \(error)); again")
                continue
            }
            async let duplicateAnswer = Self.pool(f.media + "/small.tif", id: first)
            async let busyAnswer = Self.pool(f.media + "/small.tif", id: second)
            let (duplicate, duplicateError, _) = try await duplicateAnswer
            let (busy, busyError, headers) = try await busyAnswer
            // Still admitted after both answers: it held the slot the whole time they were handled.
            let slowStillRunning = try await Self.jobsRunning() == 1
            let (status, error) = try await slow.value
            #expect(status == 200, "\(error)")
            #expect(FileManager.default.fileExists(atPath: f.outputs + "/pool-\(first).tiff"), "the first request's output was replaced or lost")
            guard slowStillRunning else {
                print("attempt \(attempt): the slow request finished before the others were answered; again")
                continue
            }
            #expect(duplicate == 409)
            Self.expectError(duplicateError, 409, "ConflictError", "already running")
            #expect(busy == 503)
            Self.expectError(busyError, 503, "ServiceUnavailableError", "busy")
            #expect(Int(headers["Retry-After"] as? String ?? "") ?? 0 >= 1, "\(headers)")
            #expect(!FileManager.default.fileExists(atPath: f.outputs + "/pool-\(second).tiff"))
            try await Self.expectHealthy()
            return
        }
        Issue.record("no attempt saw the slow request still running when the others were answered")
    }

    @Test func aClientThatHangsUpCancelsItsJobAndLeavesNothing() async throws {
        let f = Self.fixture
        let connection = try RawConnection(port: f.port)
        let json = try JSONSerialization.data(withJSONObject: Self.body(f.media + "/slow.tif"))
        connection.send("POST /pooling HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Request-Id: gone\r\nContent-Length: \(json.count)\r\n\r\n")
        connection.send(json)
        #expect(try await Self.waitForJobs { $0 == 1 }, "the request never started")
        let hungUp = Date()
        connection.hangUp()
        #expect(try await Self.waitForJobs { $0 == 0 })
        let stopped = Date().timeIntervalSince(hungUp)
        #expect(f.server.waitForOutput(timeout: 10) { $0.contains("pool-gone: 499") }, "the job was not cancelled")
        #expect(!FileManager.default.fileExists(atPath: f.outputs + "/pool-gone.tiff"), "the cancelled job wrote its output")
        let left = try Self.leftovers()
        #expect(left.isEmpty, "\(left)")
        print("hang-up to job stopped: \(String(format: "%.2f", stopped)) s")
        try await Self.expectHealthy()
    }

    @Test func fifosDevicesAndDirectoriesAreRefusedByTypeAndCannotStarveThePool() async throws {
        let f = Self.fixture
        let fifo = f.media + "/pipe.tif"
        #expect(mkfifo(fifo, 0o644) == 0)
        try? FileManager.default.createSymbolicLink(atPath: f.media + "/zero.tif", withDestinationPath: "/dev/zero")
        try? FileManager.default.createDirectory(atPath: f.media + "/folder.tif", withIntermediateDirectories: true)
        // More at once than the file lane has threads: each is refused before anything opens it.
        let start = Date()
        // (12 clients at once, under --max-connections 16, 5 requests each.)
        let answers = try await withThrowingTaskGroup(of: [(Int, String)].self) { group in
            for _ in 0..<12 {
                group.addTask {
                    var mine: [(Int, String)] = []
                    for _ in 0..<5 { let (s, e, _) = try await Self.pool(fifo); mine.append((s, e["message"] as? String ?? "")) }
                    return mine
                }
            }
            var all: [(Int, String)] = []
            for try await answer in group { all += answer }
            return all
        }
        #expect(answers.count == 60)
        #expect(Date().timeIntervalSince(start) < 30)
        for (status, message) in answers {
            #expect(status == 400 && message.contains("not a regular file"), "\(status) \(message)")
        }
        let (zero, zeroError, _) = try await Self.pool(f.media + "/zero.tif")
        #expect(zero == 400)
        Self.expectError(zeroError, 400, "BadRequestError", "must be a subpath")
        let (folder, folderError, _) = try await Self.pool(f.media + "/folder.tif")
        #expect(folder == 400)
        Self.expectError(folderError, 400, "BadRequestError", "is a directory")
        // Outside the allowed directory, a missing file and an existing one get the same answer.
        let (_, missing, _) = try await Self.pool("/nonexistent-\(getpid())/x.tif")
        let (_, existing, _) = try await Self.pool("/etc/hostname")
        #expect((missing["message"] as? String)?.contains("must be a subpath") == true && (existing["message"] as? String)?.contains("must be a subpath") == true,
                "\(missing) \(existing)")
        try await Self.expectHealthy()
    }

    @Test func slowAndIdleConnectionsAreClosedAndTheConnectionLimitHolds() async throws {
        let f = Self.fixture
        // Sixteen clients that send half a header and stop: the limit is reached.
        let idle = try (0..<16).map { _ in try RawConnection(port: f.port) }
        for connection in idle { connection.send("POST /pooling HTTP/1.1\r\nHost: 127.0.0.1\r\n") }
        // Connections are set up on two event loops, so the limit is reached a moment later.
        var refused = (text: "", closed: false)
        let deadline = Date().addingTimeInterval(1.5)
        repeat {
            let extra = try RawConnection(port: f.port)
            extra.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            refused = extra.receive(timeout: 5)
        } while RawConnection.status(refused.text) == 200 && Date() < deadline
        #expect(RawConnection.status(refused.text) == 503 && refused.text.contains("--max-connections"), "\(refused.text)")
        #expect(refused.text.lowercased().contains("retry-after: 1"))
        // The idle timeout (2 s) closes every one of them, headers unfinished.
        for connection in idle {
            let (_, closed) = connection.receive(timeout: 10)
            #expect(closed, "a half-sent header kept its connection open")
        }
        // A body trickled a byte a second outlives the idle timeout but not the body timeout (4 s).
        let trickle = try RawConnection(port: f.port)
        trickle.send("POST /pooling HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
        let started = Date()
        var answer = ""
        while Date().timeIntervalSince(started) < 15 {
            trickle.send(" ")
            let (text, closed) = trickle.receive(timeout: 1)
            answer += text
            if closed || !answer.isEmpty { break }
        }
        #expect(RawConnection.status(answer) == 408 && answer.contains("RequestTimeoutError"), "\(answer)")
        #expect(Date().timeIntervalSince(started) < 10)
        try await Self.expectHealthy()
    }

    @Test func anOutputThatCannotBeMovedIntoPlaceIsTheServersFault() async throws {
        let f = Self.fixture
        try FileManager.default.createDirectory(atPath: f.outputs + "/pool-collide.tiff/inside", withIntermediateDirectories: true)
        let (status, error, _) = try await Self.pool(f.media + "/small.tif", id: "collide")
        #expect(status == 500)
        Self.expectError(error, 500, "InternalServerError", "cannot move the finished output into place")
        let left = try Self.leftovers()
        #expect(left.isEmpty, "\(left)")
        try await Self.expectHealthy()
    }

    @Test func memoryStaysUnderTheBudgetAndScratchGoesWithTheServer() async throws {
        let f = Self.fixture
        try await Self.expectHealthy()
        let memory = try #require(processMemory(f.server.pid))
        // Beyond what it held at start-up (model, GDAL, threads): the jobs' budget, GDAL's 64 MB
        // block cache and 32 MB of what no budget governs (connection buffers, thread stacks,
        // allocator arenas). Alone the server grows ≈ 105 MB; under the whole suite's load it has
        // peaked at 166–170 MB, 6–10 MB past budget + cache, with one request at a time.
        let grown = memory.peak - f.startRSS
        print("server peak \(ByteCount.describe(memory.peak)), start \(ByteCount.describe(f.startRSS)), grown \(ByteCount.describe(grown))")
        #expect(grown < Self.budget + (64 << 20) + (32 << 20), "the server grew by \(ByteCount.describe(grown)) over a budget of \(ByteCount.describe(Self.budget))")

        // A server of its own, stopped cleanly after a base64 request: its scratch root is gone.
        let (server, port) = try ServeTests.startServer(model: f.model, arguments: ["--allowed-local-media-path", f.media], outputs: f.outputs)
        let image = try Data(contentsOf: URL(fileURLWithPath: f.media + "/small.tif")).base64EncodedString()
        let (status, _) = try await ServeTests.request("POST", "http://127.0.0.1:\(port)/pooling", json: [
            "model": f.model, "data": ["data": image, "data_format": "b64_json", "out_data_format": "b64_json"]])
        #expect(status == 200)
        let scratch = NSTemporaryDirectory() + "prithvi-serve-\(server.pid)"
        #expect(FileManager.default.fileExists(atPath: scratch))
        server.terminate()
        #expect(server.wait(timeout: 60) != nil)
        #expect(!FileManager.default.fileExists(atPath: scratch), "\(scratch) was left behind")
    }

    /// As `scancel` (or a node's shutdown) does it: SIGTERM to every rank at once, mid-request.
    @Test func sigtermToEveryRankStopsTheJobsAndLeavesNoPartialOutput() async throws {
        let f = Self.fixture
        let outputs = f.dir.file("sigterm-outputs")
        try FileManager.default.createDirectory(atPath: outputs, withIntermediateDirectories: true)
        let (server, port) = try ServeTests.startServer(model: f.model, arguments: ["--allowed-local-media-path", f.media], outputs: outputs,
                                                        workers: 1)
        let answer = Task { () -> (Int, String) in
            let (status, body) = try await ServeTests.request("POST", "http://127.0.0.1:\(port)/pooling", json: Self.body(f.media + "/slow.tif"),
                                                              headers: ["X-Request-Id": "term"])
            return (status, String(decoding: body, as: UTF8.self))
        }
        // Once the job runs (admitted, a worker computing), every rank is signalled.
        #expect(try await Self.waitForJobs(port: port) { $0 == 1 }, "the request never started")
        try await Task.sleep(nanoseconds: 300_000_000)
        let ranks = descendants(of: server.pid).filter { $0.command.contains("coordinator serve") || $0.command.contains("tileworker") }
        #expect(ranks.count == 2, "\(descendants(of: server.pid))")
        for rank in ranks { kill(rank.pid, SIGTERM) }
        let status = server.wait(timeout: 60)
        let (code, body) = try await answer.value
        #expect(status == 0, "\(server.output)")
        #expect(code == 503 && body.contains("shutting down"), "\(code) \(body)")
        let left = try FileManager.default.contentsOfDirectory(atPath: outputs)
        #expect(left.isEmpty, "left behind: \(left)")
    }
}
