import Foundation
import Geo
import MPITransport
import Pipeline
import Testing

@Suite struct WireMessageTests {
    static let samples: [WireMessage] = [
        .hello(WorkerHello(rank: 3, host: "node-7", pid: 4242, threads: 2)),
        .setup(WorkerSetup(modelDirectory: "/models/prithvi", blasThreads: 1)),
        .ready(WorkerReady(error: nil, loadSeconds: 1.5, summary: "300M", threads: 2)),
        .ready(WorkerReady(error: "no config.json", loadSeconds: 0.1, summary: "", threads: 1)),
        .tiles([TileRequest(job: 9, tile: 17, channels: 2, height: 2, width: 3, source: PixelWindow(x: 4, y: 5, width: 3, height: 2),
                            window: 2, location: [12.5, 41.9], temporal: [], pixels: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, -12.25]),
                TileRequest(job: 9, tile: 18, channels: 1, height: 1, width: 1, source: PixelWindow(x: 0, y: 0, width: 1, height: 1),
                            window: 1, location: [], temporal: [2024, 300], pixels: [3]),
                TileRequest(job: 9, tile: 19, channels: 6, height: 224, width: 224, source: PixelWindow(x: 512, y: 0, width: 256, height: 256),
                            window: 256, location: [], temporal: [], pixels: [], answer: .classMargin)]),
        .result(TileResult(job: 9, tile: 17, classes: 1, height: 1, width: 2, computeSeconds: 0.25, logits: [0.5, -0.5])),
        .result(TileResult(job: 9, tile: 17, classes: 1, height: 1, width: 2, computeSeconds: 0.25, logits: [0.5, -0.5], valid: [1, 0])),
        .result(TileResult(job: 9, tile: 19, classes: 1, height: 256, width: 256, computeSeconds: 0, logits: [], skipped: true)),
        .openScene(SceneOpening(job: 9, path: "/data/scene.tif", fingerprint: FileFingerprint(size: 123, modified: 1.7e9, digest: 0xfeed),
                                recipe: TileRecipe(bands: [0, 2], means: [0.1, 0.2], stds: [0.3, 0.4], nodata: [0, nil], reflectanceDivisor: 10000,
                                                   location: [12.5, 41.9], temporal: [], tileSize: 224, window: 256),
                                drivers: ["GTiff"])),
        .sceneOpened(job: 9, error: nil),
        .sceneOpened(job: 9, error: "another file"),
        .closeScene(job: 9),
        .failure(TileFailure(job: 9, tile: 18, message: "shape")),
        .shutdown(reason: "done"),
        .ping(sequence: 5, payload: [1, 2, 3]),
        .pong(sequence: 5, payload: []),
    ]

    @Test(arguments: samples)
    func roundTrip(_ message: WireMessage) throws {
        let decoded = try WireMessage.decode(tag: message.tag, bytes: message.encoded())
        #expect(decoded == message)
    }

    @Test func tagsAreDistinct() {
        let tags = Self.samples.map(\.tag)
        #expect(Set(tags).count == 12)
    }

    @Test(arguments: samples)
    func truncatedMessagesAreRejected(_ message: WireMessage) {
        let bytes = message.encoded()
        guard !bytes.isEmpty else { return }
        #expect(throws: WireError.self) { try WireMessage.decode(tag: message.tag, bytes: Array(bytes.dropLast())) }
    }

    @Test func trailingBytesAreRejected() {
        let message = WireMessage.shutdown(reason: "x")
        #expect(throws: WireError.self) { try WireMessage.decode(tag: message.tag, bytes: message.encoded() + [0]) }
    }

    @Test func unknownTagIsRejected() {
        #expect(throws: WireError("unknown message tag 99")) { try WireMessage.decode(tag: 99, bytes: []) }
    }

    @Test func helloFromAnotherBuildIsRefused() throws {
        var bytes = WireMessage.hello(WorkerHello(rank: 1, host: "h", pid: 1, threads: 1)).encoded()
        bytes[0] &+= 1
        let error = #expect(throws: WireError.self) { try WireMessage.decode(tag: 1, bytes: bytes) }
        #expect(error?.description.contains("different builds") == true)
    }

    @Test func tileWhosePixelsDoNotFillItsShapeIsRejected() {
        let tile = TileRequest(job: 1, tile: 1, channels: 1, height: 2, width: 2, source: PixelWindow(x: 0, y: 0, width: 2, height: 2),
                               window: 2, location: [], temporal: [], pixels: [1, 2, 3, 4])
        var bytes = WireMessage.tiles([tile]).encoded()
        bytes[20] = 3  // channels: 1 → 3 (after the count, job and tile)
        #expect(throws: WireError.self) { try WireMessage.decode(tag: 4, bytes: bytes) }
    }

    @Test func tileAskingForAnUnknownAnswerIsRejected() {
        let tile = TileRequest(job: 1, tile: 1, channels: 1, height: 1, width: 1, source: PixelWindow(x: 0, y: 0, width: 1, height: 1),
                               window: 1, location: [], temporal: [], pixels: [1])
        var bytes = WireMessage.tiles([tile]).encoded()
        bytes[bytes.count - 1] = 7  // the answer is the tile's last byte
        let error = #expect(throws: WireError.self) { try WireMessage.decode(tag: 4, bytes: bytes) }
        #expect(error?.description.contains("answer 7") == true)
    }
}

@Suite struct ByteCodecTests {
    @Test func integersAreLittleEndian() throws {
        var writer = ByteWriter()
        writer.write(UInt32(0x0102_0304))
        writer.write(Int16(-2))
        #expect(writer.bytes == [4, 3, 2, 1, 0xFE, 0xFF])
        var reader = ByteReader(writer.bytes)
        #expect(try reader.read(UInt32.self) == 0x0102_0304)
        #expect(try reader.read(Int16.self) == -2)
        try reader.expectEnd("test")
    }

    @Test func stringsAndFloatsRoundTrip() throws {
        var writer = ByteWriter()
        writer.write("Sen1Floods11 — ü")
        writer.write(floats: [Float.pi, -0.0, .infinity])
        writer.write(2.5 as Double)
        var reader = ByteReader(writer.bytes)
        #expect(try reader.read(String.self) == "Sen1Floods11 — ü")
        let floats = try reader.readFloats()
        #expect(floats.count == 3 && floats[0] == .pi && floats[2] == .infinity)
        #expect(try reader.read(Double.self) == 2.5)
    }

    @Test func hugeAnnouncedLengthIsATruncationNotACrash() {
        var writer = ByteWriter()
        writer.write(UInt64.max)
        var reader = ByteReader(writer.bytes)
        #expect(throws: WireError.self) { _ = try reader.readFloats() }
    }
}

@Suite struct WorkerThreadTests {
    @Test func hostsCoresAreSharedAmongTheirWorkers() {
        let workers = [
            WorkerInfo(rank: 1, host: "a", pid: 1, threads: 32), WorkerInfo(rank: 2, host: "a", pid: 2, threads: 32),
            WorkerInfo(rank: 3, host: "a", pid: 3, threads: 32), WorkerInfo(rank: 4, host: "a", pid: 4, threads: 32),
            WorkerInfo(rank: 5, host: "b", pid: 5, threads: 2), WorkerInfo(rank: 6, host: "b", pid: 6, threads: 2),
            WorkerInfo(rank: 7, host: "b", pid: 7, threads: 2), WorkerInfo(rank: 8, host: "c", pid: 8, threads: 16),
        ]
        #expect(MPIExecutor.defaultThreads(for: workers) == [1: 8, 2: 8, 3: 8, 4: 8, 5: 1, 6: 1, 7: 1, 8: 16])
    }
}

@Suite struct LaunchCheckTests {
    @Test func singletonsUnderAMultiTaskLauncherAreCaught() {
        #expect(LaunchCheck.singletonProblem(worldSize: 1, environment: ["SLURM_STEP_NUM_TASKS": "4", "SLURM_PROCID": "2"])?.contains("srun started 4 tasks") == true)
        #expect(LaunchCheck.singletonProblem(worldSize: 1, environment: ["OMPI_COMM_WORLD_SIZE": "3"])?.contains("Open MPI") == true)
        #expect(LaunchCheck.singletonProblem(worldSize: 1, environment: ["PMI_SIZE": "2"]) != nil)
        // A batch script's own shell (SLURM_NTASKS without a task id), a real world, a single task: fine.
        #expect(LaunchCheck.singletonProblem(worldSize: 1, environment: ["SLURM_NTASKS": "8"]) == nil)
        #expect(LaunchCheck.singletonProblem(worldSize: 5, environment: ["SLURM_STEP_NUM_TASKS": "5", "SLURM_PROCID": "0"]) == nil)
        #expect(LaunchCheck.singletonProblem(worldSize: 1, environment: ["PMI_SIZE": "1"]) == nil)
    }
}

@Suite struct FinalizeWatchdogTests {
    private func socketPair() -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        return (fds[0], fds[1])
    }

    /// A rank waiting in the PMI barrier is blocked in read(PMI_FD); the watchdog must see that
    /// (and leave the socket to it), and must not mistake a busy thread for it.
    @Test func aThreadBlockedReadingTheSocketIsRecognised() throws {
        let (mine, theirs) = socketPair()
        defer { close(mine); close(theirs) }
        let started = DispatchSemaphore(value: 0)
        let tid = LockedBox<Int32>(0)
        Thread.detachNewThread {
            tid.value = FinalizeWatchdog.currentThreadID()
            started.signal()
            var byte: UInt8 = 0
            _ = read(mine, &byte, 1)
        }
        started.wait()
        usleep(100_000)
        #expect(FinalizeWatchdog.isReading(thread: tid.value, socket: mine))
        #expect(!FinalizeWatchdog.isReading(thread: tid.value, socket: theirs))
        #expect(!FinalizeWatchdog.isReading(thread: FinalizeWatchdog.currentThreadID(), socket: mine))
        var byte: UInt8 = 1
        _ = write(theirs, &byte, 1)
    }

    @Test func pmiCommandsWaitForTheirAnswer() throws {
        let (mine, theirs) = socketPair()
        defer { close(mine); close(theirs) }
        Thread.detachNewThread {
            var buffer = [UInt8](repeating: 0, count: 64)
            let count = read(theirs, &buffer, buffer.count)
            let request = String(decoding: buffer.prefix(max(count, 0)), as: UTF8.self)
            let answer = request == "cmd=barrier_in\n" ? "cmd=other\ncmd=barrier_out\n" : "cmd=wrong\n"
            _ = answer.utf8CString.withUnsafeBufferPointer { write(theirs, $0.baseAddress, $0.count - 1) }
        }
        #expect(PMIWire(fd: mine).command("cmd=barrier_in\n", awaiting: "barrier_out", timeout: 5))
        // Nobody answers: false after the timeout, not a hang.
        #expect(!PMIWire(fd: mine).command("cmd=finalize\n", awaiting: "finalize_ack", timeout: 0.2))
    }
}

/// A value shared with a helper thread in a test.
final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); defer { lock.unlock() }; stored = newValue }
    }
}
