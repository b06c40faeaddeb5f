import Foundation
import Geo
import Model
import Pipeline
import TestSupport
import Testing

/// Failures lose nothing: a worker killed mid-job stops the job quickly with the rank named,
/// no file appears at the output path, and `--resume` finishes with the uninterrupted mask.
@Suite(.serialized) struct ResumeTests {
    final class Setup: @unchecked Sendable {
        let dir = TemporaryDirectory("resume")
        var model: String { dir.file("model") }
        var scene: String { dir.file("scene.tif") }
        init() {
            try! ModelFactory.create(.small, in: dir.file("model"))
            var scene = SceneFactory.Spec()
            scene.width = 1500; scene.height = 1300
            try! SceneFactory.create(scene, at: dir.file("scene.tif"))
        }
    }
    static let setup = Setup()

    static func journalRecords(_ output: String) -> Int {
        let path = SegmentJournal.paths(for: output).journal
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return 0 }
        return max(0, text.split(separator: "\n").count - 1)
    }

    @Test func aKilledWorkerStopsTheJobAndResumeFinishesIdentically() throws {
        let s = Self.setup
        // The uninterrupted run: same launch (2 workers, 1 BLAS thread each; results depend on the
        // thread count in the last bits).
        let reference = s.dir.file("reference.tif")
        let (status, output) = try runCommand(repositoryRoot + "/cluster/run-local.sh", ["2", "segment", s.model, s.scene, reference, "--quiet"],
                                              timeout: 600, environment: ["PRITHVI_BIN": productsDirectory, "CORES": "2"])
        #expect(status == 0, "\(output)")

        let out = s.dir.file("interrupted.tif")
        let job = try ChildProcess(repositoryRoot + "/cluster/run-local.sh", ["2", "segment", s.model, s.scene, out, "--quiet"],
                                   environment: ["PRITHVI_BIN": productsDirectory, "CORES": "2"])
        job.killAtExit()
        // Wait until two strips are journaled, then kill worker rank 2.
        #expect(job.waitForOutput(timeout: 120) { _ in Self.journalRecords(out) >= 2 }, "no progress: \(job.output)")
        let line = try #require(job.output.components(separatedBy: "\n").first { $0.contains("rank 2 on") && $0.contains("pid ") })
        let pid = try #require(Int32(line.components(separatedBy: "pid ")[1].prefix { $0.isNumber }))
        let killedAt = Date()
        kill(pid, SIGKILL)
        let exit = job.wait(timeout: 60)
        let seconds = Date().timeIntervalSince(killedAt)
        #expect(exit != nil && exit != 0, "the job must fail: \(job.output)")
        #expect(seconds < 10, "stopped after \(seconds) s")
        // run-local.sh names the worker that died first (hydra names the first in rank order).
        #expect(job.output.range(of: #"tile worker rank 2 on \S+ \(pid \#(pid)\) died"#, options: .regularExpression) != nil,
                "the dead rank and host are named: \(job.output)")
        #expect(!FileManager.default.fileExists(atPath: out), "no file at the output path until complete")
        let saved = Self.journalRecords(out)
        #expect(saved >= 2)

        let (resumed, resumeOutput) = try runCommand(mpirunPath, ["-np", "1", product("coordinator"), "segment", s.model, s.scene, out,
                                                                  "--resume", "--quiet", "--threads", "1", ":", "-np", "2", product("tileworker")],
                                                     timeout: 600)
        #expect(resumed == 0, "\(resumeOutput)")
        #expect(resumeOutput.contains("resuming: "), "\(resumeOutput)")
        #expect(try SegmentCommandTests.pixels(out) == (try SegmentCommandTests.pixels(reference)), "resumed mask differs")
        let paths = SegmentJournal.paths(for: out)
        #expect(!FileManager.default.fileExists(atPath: paths.journal) && !FileManager.default.fileExists(atPath: paths.partial))
    }

    @Test func resumeRefusesAnotherRunsJournalAndNeedsOne() throws {
        let s = Self.setup
        let dir = TemporaryDirectory("resume-bad")
        let out = dir.file("mask.tif")
        let (nothing, message) = try runCommand(product("coordinator"), ["segment", s.model, s.scene, out, "--resume", "--quiet"])
        #expect(nothing == 66 && message.contains("nothing to resume"), "\(message)")
        // A journal of a different run (other stride) is refused, and kept.
        let paths = SegmentJournal.paths(for: out)
        let header = SegmentJournal.Header(input: s.scene, inputBytes: 1, inputModified: 0, model: s.model, weightsBytes: 1, bands: [0, 1, 2, 3, 4, 5],
                                           tileSize: 224, stride: 100, scale: 1, output: "mask", batch: 1, width: 1500, height: 1300)
        _ = try SegmentJournal(creating: paths.journal, header: header)
        let (other, otherMessage) = try runCommand(product("coordinator"), ["segment", s.model, s.scene, out, "--resume", "--quiet"])
        #expect(other == 65 && otherMessage.contains("records a different run"), "a journal of another run is bad input: \(otherMessage)")
        #expect(FileManager.default.fileExists(atPath: paths.journal))
        // Without --resume the stale journal is replaced (with a warning) and the run completes.
        let (fresh, freshMessage) = try runCommand(product("coordinator"), ["segment", s.model, s.scene, out, "--quiet", "--stride", "224"])
        #expect(fresh == 0 && freshMessage.contains("starting over"), "\(freshMessage)")
        #expect(!FileManager.default.fileExists(atPath: paths.journal))
    }

    @Test func aJournalIsLockedWhileARunUsesIt() throws {
        let dir = TemporaryDirectory("lock")
        let header = SegmentJournal.Header(input: "/x", inputBytes: 1, inputModified: 0, model: "/m", weightsBytes: 1, bands: [0],
                                           tileSize: 224, stride: 192, scale: 1, output: "mask", batch: 1, width: 1, height: 1)
        let first = try SegmentJournal(creating: dir.file(".m.tif.journal"), header: header)
        try first.record(gridRow: 0, rows: 10)
        let error = #expect(throws: OutputError.self) { try SegmentJournal(resuming: dir.file(".m.tif.journal"), expected: header) }
        #expect(error?.description.contains("locked") == true)
        withExtendedLifetime(first) {}
    }

    @Test func aJournalOfAnotherBuildIsRefusedWithItsVersion() throws {
        let dir = TemporaryDirectory("version")
        let header = SegmentJournal.Header(input: "/x", inputBytes: 1, inputModified: 0, model: "/m", weightsBytes: 1, bands: [0],
                                           tileSize: 224, stride: 192, scale: 1, output: "mask", batch: 1, width: 1, height: 1)
        var older = header
        older.version -= 1
        _ = try SegmentJournal(creating: dir.file(".m.tif.journal"), header: older)
        let error = #expect(throws: SegmentationFailure.self) { try SegmentJournal(resuming: dir.file(".m.tif.journal"), expected: header) }
        #expect(error?.description.contains("journal version \(older.version), this build writes \(header.version)") == true, "\(String(describing: error))")
    }
}
