import Foundation
import Geo
import Model
import TestSupport
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// MODEL as a Hugging Face id: found in the HF cache, or downloaded from a hub (here a local mimic
/// of its api/models and resolve/REV/FILE URLs) into the cache layout.
@Suite(.serialized) struct ModelResolutionTests {
    static let published = "ibm-nasa-geospatial/Prithvi-EO-2.0-300M-TL-Sen1Floods11"
    static let fixture = repositoryRoot + "/Tests/Fixtures/parity/small_plain"

    /// A model directory shaped like the published repository: config.yaml + a Lightning .pt.
    static func publishedLikeModel(in dir: TemporaryDirectory) throws -> String {
        let model = dir.file("published")
        try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: fixture + "/config.yaml", toPath: model + "/config.yaml")
        try FileManager.default.copyItem(atPath: fixture + "/small_plain_epoch3.ckpt", toPath: model + "/Prithvi-EO-V2-300M-TL-Sen1Floods11.pt")
        return model
    }

    @Test func anIdInTheCacheResolvesToItsSnapshot() throws {
        let dir = TemporaryDirectory("hfcache")
        let repository = dir.file("hub/models--ibm-nasa-geospatial--Prithvi-EO-2.0-300M-TL-Sen1Floods11")
        let snapshot = repository + "/snapshots/0123abcd"
        try FileManager.default.createDirectory(atPath: repository + "/refs", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: snapshot, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.fixture + "/config.yaml", toPath: snapshot + "/config.yaml")
        try "0123abcd".write(toFile: repository + "/refs/main", atomically: true, encoding: .utf8)
        let resolved = try ModelLocator.resolve(Self.published, environment: ["HF_HOME": dir.path, "HF_HUB_OFFLINE": "1"])
        #expect(resolved == snapshot)
        // HF_HUB_CACHE wins over HF_HOME.
        #expect(try ModelLocator.resolve(Self.published, environment: ["HF_HUB_CACHE": dir.file("hub"), "HF_HOME": "/nowhere", "HF_HUB_OFFLINE": "1"]) == snapshot)
        let offline = #expect(throws: ModelConfigError.self) {
            try ModelLocator.resolve("someone/absent", environment: ["HF_HOME": dir.path, "HF_HUB_OFFLINE": "1"])
        }
        #expect(offline?.description.contains("HF_HUB_OFFLINE") == true)
    }

    @Test func aMissingIdIsDownloadedFromTheHubIntoTheCacheLayout() throws {
        let dir = TemporaryDirectory("hub")
        let hub = LoopbackHTTPServer()
        try hub.start()
        defer { hub.stop() }
        let commit = "9f1c2e3d4b5a69788796a5b4c3d2e1f009182736"
        try hub.publishModel(Self.published, directory: try Self.publishedLikeModel(in: dir), commit: commit)
        let environment = ["HF_HOME": dir.file("hf"), "HF_ENDPOINT": hub.baseURL, "HF_TOKEN": "hf_test"]

        // A partial download from an earlier attempt is resumed, not restarted.
        let repository = dir.file("hf/hub/models--ibm-nasa-geospatial--Prithvi-EO-2.0-300M-TL-Sen1Floods11")
        let weights = try Data(contentsOf: URL(fileURLWithPath: dir.file("published/Prithvi-EO-V2-300M-TL-Sen1Floods11.pt")))
        try FileManager.default.createDirectory(atPath: repository + "/.download", withIntermediateDirectories: true)
        try weights.prefix(100_000).write(to: URL(fileURLWithPath: repository + "/.download/Prithvi-EO-V2-300M-TL-Sen1Floods11.pt.incomplete"))

        let snapshot = try ModelLocator.resolve(Self.published, environment: environment)
        #expect(snapshot == repository + "/snapshots/" + commit)
        #expect(try String(contentsOfFile: repository + "/refs/main", encoding: .utf8) == commit)
        #expect(try Data(contentsOf: URL(fileURLWithPath: snapshot + "/Prithvi-EO-V2-300M-TL-Sen1Floods11.pt")) == weights)
        #expect(!FileManager.default.fileExists(atPath: snapshot + "/README.md"), "only the config and the weights are fetched")
        let ranges = hub.requests.filter { $0.path.hasSuffix(".pt") }.map(\.range)
        #expect(ranges == ["bytes=100000-"], "the weights download resumed at the partial file's end: \(ranges)")
        // The downloaded model loads, and a second resolution uses the cache without the network.
        let model = try PrithviSegmentationModel(directory: snapshot)
        #expect(model.config.encoder.inChannels == 4)
        #expect(try ModelLocator.resolve(Self.published, environment: environment.merging(["HF_ENDPOINT": "http://127.0.0.1:1"]) { $1 }) == snapshot)
        // Unknown repositories are a clear error.
        let missing = #expect(throws: ModelConfigError.self) { try ModelLocator.resolve("nobody/nothing", environment: environment) }
        #expect(missing?.description.contains("not found on") == true)
    }

    @Test func servingThePublishedIdFromTheCache() async throws {
        let dir = TemporaryDirectory("servecache")
        let model = try Self.publishedLikeModel(in: dir)
        let snapshot = dir.file("hf/hub/models--ibm-nasa-geospatial--Prithvi-EO-2.0-300M-TL-Sen1Floods11/snapshots/abc123")
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: snapshot).deletingLastPathComponent().path, withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: model, toPath: snapshot)
        var scene = SceneFactory.Spec()
        scene.width = 240; scene.height = 230
        try FileManager.default.createDirectory(atPath: dir.file("media"), withIntermediateDirectories: true)
        try SceneFactory.create(scene, at: dir.file("media/scene.tif"))
        let (server, port) = try ServeTests.startServer(
            model: Self.published,
            arguments: ["--io-processor-plugin", "terratorch_segmentation", "--model-impl", "terratorch", "--skip-tokenizer-init",
                        "--enforce-eager", "--allowed-local-media-path", dir.file("media")],
            outputs: dir.path, environment: ["HF_HOME": dir.file("hf"), "HF_HUB_OFFLINE": "1"])
        defer { server.terminate() }
        let (status, list) = try await ServeTests.request("GET", "http://127.0.0.1:\(port)/v1/models")
        #expect(status == 200)
        #expect((ServeTests.object(list)["data"] as? [[String: Any]])?.first?["id"] as? String == Self.published)
        let body: [String: Any] = ["model": Self.published, "softmax": false,
                                   "data": ["data": dir.file("media/scene.tif"), "data_format": "path", "out_data_format": "path", "indices": [0, 1, 2, 3]]]
        let (code, reply) = try await ServeTests.request("POST", "http://127.0.0.1:\(port)/pooling", json: body)
        #expect(code == 200, "\(String(decoding: reply, as: UTF8.self))")
    }
}
