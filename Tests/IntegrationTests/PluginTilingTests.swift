import Foundation
import Geo
import Pipeline
import TestSupport
import Testing

/// `--tiling vllm` against the vLLM terratorch_segmentation plugin's own steps, run with TerraTorch
/// (scripts/fixtures/make_plugin_fixtures.py → Tests/Fixtures/plugin), and per-request selection.
@Suite(.serialized) struct PluginTilingTests {
    static let model = repositoryRoot + "/Tests/Fixtures/parity/tiny_tl"
    static let expectedMask = repositoryRoot + "/Tests/Fixtures/plugin/tiny_tl-vllm-mask.tif"

    final class Setup: @unchecked Sendable {
        let dir = TemporaryDirectory("plugin")
        var scene: String { dir.file("scene.tif") }
        init() {
            // What the fixture script made with `coordinator create-scene --width 1100 --height 700`.
            var spec = SceneFactory.Spec()
            spec.width = 1100; spec.height = 700
            try! SceneFactory.create(spec, at: dir.file("scene.tif"))
        }
    }
    static let setup = Setup()

    static func agreement(_ a: [Float], _ b: [Float]) -> Double {
        Double(zip(a, b).filter { $0 == $1 }.count) / Double(max(a.count, 1))
    }

    @Test func aVLLMRunTakesTheOutputsLockAndLeavesNoLockFile() throws {
        let out = Self.setup.dir.file("vllm-locked.tif")
        let held = try SegmentJournal.Lock(output: out)  // as another run writing OUT holds it
        let (refused, message) = try SegmentCommandTests.segment([Self.model, Self.setup.scene, out, "--tiling", "vllm", "--threads", "1"])
        #expect(refused == 73 && message.contains("is locked: another segment run"), "\(message)")
        #expect(!FileManager.default.fileExists(atPath: out))
        held.release()
        let (status, output) = try SegmentCommandTests.segment([Self.model, Self.setup.scene, out, "--tiling", "vllm", "--threads", "1"])
        #expect(status == 0, "\(output)")
        #expect(!FileManager.default.fileExists(atPath: SegmentJournal.paths(for: out).journal), "the lock file was left behind")
    }

    @Test func segmentMatchesThePluginInProcessAndUnderMPI() throws {
        let expected = try SegmentCommandTests.pixels(Self.expectedMask)
        #expect(Set(expected).count == 2, "the fixture must have both classes")
        let inProcess = Self.setup.dir.file("vllm-inprocess.tif")
        let (status, output) = try SegmentCommandTests.segment([Self.model, Self.setup.scene, inProcess, "--tiling", "vllm", "--threads", "1"])
        #expect(status == 0, "\(output)")
        let ours = try SegmentCommandTests.pixels(inProcess)
        #expect(ours.count == expected.count)
        let agreement = Self.agreement(ours, expected)
        #expect(agreement >= 0.9999, "only \(agreement) of pixels equal the plugin's mask")
        let mask = try RasterDataset.open(inProcess), input = try RasterDataset.open(Self.setup.scene)
        #expect(mask.geoTransform == input.geoTransform && mask.projectionWKT == input.projectionWKT)
        #expect(try mask.noDataValue(band: 0) == 0)

        let distributed = Self.setup.dir.file("vllm-mpi.tif")
        let (mpiStatus, mpiOutput) = try SegmentCommandTests.segment([Self.model, Self.setup.scene, distributed, "--tiling", "vllm"], workers: 2)
        #expect(mpiStatus == 0, "\(mpiOutput)")
        #expect(try SegmentCommandTests.pixels(distributed) == ours)
    }

    @Test func badCombinationsAreRefused() throws {
        let out = Self.setup.dir.file("refused.tif")
        for arguments in [["--tiling", "tiles"], ["--tiling", "vllm", "--output", "logits"], ["--tiling", "vllm", "--resume"]] {
            let (status, output) = try SegmentCommandTests.segment([Self.model, Self.setup.scene, out] + arguments)
            #expect(status == 64, "\(arguments): \(output)")
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func aRequestChoosesItsTiling() async throws {
        let dir = TemporaryDirectory("plugin-serve")
        let outputs = dir.file("out")
        try FileManager.default.createDirectory(atPath: outputs, withIntermediateDirectories: true)
        let (server, port) = try ServeTests.startServer(model: Self.model, arguments: ["--allowed-local-media-path", Self.setup.dir.path],
                                                        outputs: outputs)
        defer { server.terminate() }
        let url = "http://127.0.0.1:\(port)/pooling"
        func pool(_ tiling: String?) async throws -> [Float] {
            var data: [String: Any] = ["data": Self.setup.scene, "data_format": "path", "out_data_format": "path"]
            if let tiling { data["tiling"] = tiling }
            let (status, body) = try await ServeTests.request("POST", url, json: ["model": Self.model, "data": data])
            let object = ServeTests.object(body)
            #expect(status == 200, "\(object)")
            let path = try #require((object["data"] as? [String: Any])?["data"] as? String)
            return try SegmentCommandTests.pixels(path)
        }
        let plugin = try await pool("vllm")
        #expect(Self.agreement(plugin, try SegmentCommandTests.pixels(Self.expectedMask)) >= 0.9999)
        let overlap = try await pool(nil)
        #expect(overlap != plugin, "the default must stay the blended overlap tiling")
        let (status, body) = try await ServeTests.request("POST", url, json: ["model": Self.model, "data": [
            "data": Self.setup.scene, "data_format": "path", "out_data_format": "path", "tiling": "seamless"]])
        #expect(status == 400 && String(decoding: body, as: UTF8.self).contains("data.tiling"))
    }
}
