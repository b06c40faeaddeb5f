import Foundation
import TestSupport
import Testing

/// Real mpirun, real processes: one coordinator and two tile workers.
@Suite(.serialized) struct MPIHandshakeTests {
    @Test func coordinatorHelpDocumentsTheSubcommands() throws {
        let (status, output) = try runCommand(product("coordinator"), ["--help"], timeout: 30)
        #expect(status == 0)
        for subcommand in ["segment", "serve", "bench", "world"] {
            #expect(output.contains(subcommand), "help lacks \(subcommand)")
        }
    }

    @Test func oneCoordinatorAndTwoWorkersShakeHands() throws {
        let (status, output) = try runCommand(
            mpirunPath, ["-np", "1", product("coordinator"), "world", ":", "-np", "2", product("tileworker")], timeout: 120)
        #expect(status == 0, "\(output)")
        #expect(output.contains("MPI world: 3 ranks"))
        #expect(output.range(of: #"rank 1  host \S+  pid \d+  threads \d+"#, options: .regularExpression) != nil, "\(output)")
        #expect(output.range(of: #"rank 2  host \S+  pid \d+  threads \d+"#, options: .regularExpression) != nil, "\(output)")
    }

    @Test func pingPongMeasuresEveryWorker() throws {
        let (status, output) = try runCommand(
            mpirunPath, ["-np", "1", product("coordinator"), "world", "--ping-seconds", "0.5", "--ping-bytes", "100000",
                         ":", "-np", "2", product("tileworker")], timeout: 120)
        #expect(status == 0, "\(output)")
        #expect(output.contains("rank 1  round trips"))
        #expect(output.contains("rank 2  round trips"))
    }

    @Test func worldSizeOneHasNoWorkers() throws {
        let (status, output) = try runCommand(product("coordinator"), ["world"], timeout: 60)
        #expect(status == 0, "\(output)")
        #expect(output.contains("no tile workers"))
    }

    @Test func tileworkerRefusesToBeRankZero() throws {
        let (status, output) = try runCommand(mpirunPath, ["-np", "1", product("tileworker")], timeout: 60)
        #expect(status != 0)
        #expect(output.contains("rank 0 must be the coordinator"), "\(output)")
    }

    @Test func killingAWorkerEndsTheJobWithAnError() throws {
        let job = try ChildProcess(
            mpirunPath, ["-np", "1", product("coordinator"), "world", "--ping-seconds", "60", ":", "-np", "2", product("tileworker")])
        let pattern = #"rank 2  host \S+  pid (\d+)"#
        #expect(job.waitForOutput(timeout: 60) { $0.range(of: pattern, options: .regularExpression) != nil }, "\(job.output)")
        let line = try #require(job.output.components(separatedBy: "\n").first { $0.hasPrefix("rank 2  host") })
        let pid = try #require(Int32(line.components(separatedBy: "pid ")[1].components(separatedBy: " ")[0]))
        let killedAt = Date()
        kill(pid, SIGKILL)
        let status = job.wait(timeout: 30)
        let seconds = Date().timeIntervalSince(killedAt)
        #expect(status != nil && status != 0, "job did not end: \(job.output)")
        #expect(seconds < 10, "took \(seconds) s")
        #expect(job.output.contains("BAD TERMINATION") || job.output.contains("rank 2"), "\(job.output)")
    }
}

@Suite struct LaunchCheckIntegrationTests {
    /// srun without PMI starts N singletons: each must stop, not run its own copy of the job.
    @Test func singletonsStartedByAMultiTaskLauncherStop() throws {
        for (variable, value) in [("SLURM_STEP_NUM_TASKS", "3"), ("OMPI_COMM_WORLD_SIZE", "2")] {
            var environment = [variable: value]
            if variable.hasPrefix("SLURM") { environment["SLURM_PROCID"] = "1" }
            let (status, output) = try runCommand(product("coordinator"), ["world"], timeout: 60, environment: environment)
            #expect(status == 64, "\(output)")
            #expect(output.contains("MPI sees a world of 1"), "\(output)")
            let (workerStatus, workerOutput) = try runCommand(product("tileworker"), [], timeout: 60, environment: environment)
            #expect(workerStatus != 0 && workerOutput.contains("MPI sees a world of 1"), "\(workerOutput)")
        }
    }
}
