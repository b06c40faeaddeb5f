import ArgumentParser
import Foundation
import Logging
import Support
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

struct LoadTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Send /pooling requests to a server and report throughput, latency and HTTP overhead.",
        discussion: """
        Sends --requests requests, --concurrency at a time, of one input, and prints throughput,
        latency p50/p99, and two overheads from the server's Server-Timing header: latency minus
        the tiles' compute time (all I/O, transfer and stitching around the model), and latency
        minus the engine's job time (the HTTP layer alone: parsing, checks, answering).

          coordinator loadtest http://127.0.0.1:8000 --model MODEL --input /data/tile.tif --requests 50 --concurrency 4
        """
    )

    @Argument(help: "Server base URL.")
    var url: String

    @Option(help: "The served model name.")
    var model: String

    @Option(help: "Input: a path on the server (data_format path) or a URL (data_format url).")
    var input: String

    @Option(help: "Requests to send.")
    var requests: Int = 50

    @Option(help: "Requests in flight at once.")
    var concurrency: Int = 1

    @Option(help: "Output format: path or b64_json.")
    var outDataFormat: String = "path"

    func validate() throws {
        guard requests >= 1, concurrency >= 1 else { throw ValidationError("--requests and --concurrency must be at least 1") }
        guard ["path", "b64_json"].contains(outDataFormat) else { throw ValidationError("--out-data-format must be path or b64_json") }
    }

    struct Sample: Sendable { var status: Int; var seconds: Double; var tilesSeconds: Double; var jobSeconds: Double }

    func run() async throws {
        let format = input.hasPrefix("http://") || input.hasPrefix("https://") ? "url" : "path"
        let body = try JSONSerialization.data(withJSONObject: [
            "model": model, "softmax": false,
            "data": ["data": input, "data_format": format, "out_data_format": outDataFormat],
        ] as [String: Any])
        guard let endpoint = URL(string: url.hasSuffix("/") ? url + "pooling" : url + "/pooling") else {
            throw ValidationError("\(url) is not a URL")
        }
        let configuration = URLSessionConfiguration.default
        configuration.timeoutIntervalForRequest = 3600
        configuration.httpMaximumConnectionsPerHost = concurrency
        let session = URLSession(configuration: configuration)
        @Sendable func send() async throws -> Sample {
            var request = URLRequest(url: endpoint)
            request.httpMethod = "POST"
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            let start = monotonicSeconds()
            let (_, response) = try await session.data(for: request)
            let seconds = monotonicSeconds() - start
            let http = response as! HTTPURLResponse
            let timing = Self.serverTiming(http.value(forHTTPHeaderField: "Server-Timing") ?? "")
            return Sample(status: http.statusCode, seconds: seconds, tilesSeconds: (timing["tiles"] ?? 0) / 1e3, jobSeconds: (timing["job"] ?? 0) / 1e3)
        }
        _ = try await send()  // warm-up
        let start = monotonicSeconds()
        var samples: [Sample] = []
        try await withThrowingTaskGroup(of: Sample.self) { group in
            var sent = 0
            while sent < min(concurrency, requests) { group.addTask { try await send() }; sent += 1 }
            for try await sample in group {
                samples.append(sample)
                if sent < requests { group.addTask { try await send() }; sent += 1 }
            }
        }
        let wall = monotonicSeconds() - start
        let failed = samples.filter { $0.status != 200 }.count
        func percentile(_ values: [Double], _ p: Double) -> Double {
            let sorted = values.sorted()
            return sorted[min(sorted.count - 1, Int((p * Double(sorted.count - 1)).rounded()))]
        }
        let latencies = samples.map(\.seconds), overheads = samples.map { $0.seconds - $0.tilesSeconds }
        print(String(format: "requests: %d (%d failed), concurrency %d, %.1f s", samples.count, failed, concurrency, wall))
        print(String(format: "throughput: %.2f requests/s", Double(samples.count) / wall))
        print(String(format: "latency: p50 %.1f ms, p99 %.1f ms", percentile(latencies, 0.5) * 1e3, percentile(latencies, 0.99) * 1e3))
        print(String(format: "tile compute per request: p50 %.1f ms", percentile(samples.map(\.tilesSeconds), 0.5) * 1e3))
        print(String(format: "overhead (latency - tile compute): p50 %.1f ms, p99 %.1f ms", percentile(overheads, 0.5) * 1e3,
                     percentile(overheads, 0.99) * 1e3))
        let http = samples.map { $0.seconds - $0.jobSeconds }
        print(String(format: "HTTP overhead (latency - engine job: open, tiles, stitch, write): p50 %.1f ms, p99 %.1f ms",
                     percentile(http, 0.5) * 1e3, percentile(http, 0.99) * 1e3))
        if failed > 0 { throw ExitCode(1) }
    }

    /// `total;dur=12.3, tiles;dur=4.5` → ["total": 12.3, "tiles": 4.5] (milliseconds).
    static func serverTiming(_ header: String) -> [String: Double] {
        var result: [String: Double] = [:]
        for metric in header.split(separator: ",") {
            let parts = metric.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let name = parts.first, let duration = parts.dropFirst().first(where: { $0.hasPrefix("dur=") }) else { continue }
            result[name] = Double(duration.dropFirst(4))
        }
        return result
    }
}
