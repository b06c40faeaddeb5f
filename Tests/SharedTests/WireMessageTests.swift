import Shared
import Testing

@Suite struct WireMessageTests {
    static let samples: [WireMessage] = [
        .hello(WorkerHello(rank: 3, host: "node-7", pid: 4242, threads: 2)),
        .setup(WorkerSetup(modelDirectory: "/models/prithvi", blasThreads: 1)),
        .ready(WorkerReady(error: nil, loadSeconds: 1.5, summary: "300M", threads: 2)),
        .ready(WorkerReady(error: "no config.json", loadSeconds: 0.1, summary: "", threads: 1)),
        .tiles([TileRequest(job: 9, tile: 17, channels: 2, height: 2, width: 3, location: [12.5, 41.9], temporal: [],
                            pixels: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, -12.25]),
                TileRequest(job: 9, tile: 18, channels: 1, height: 1, width: 1, location: [], temporal: [2024, 300], pixels: [3])]),
        .result(TileResult(job: 9, tile: 17, classes: 1, height: 1, width: 2, computeSeconds: 0.25, logits: [0.5, -0.5])),
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
        #expect(Set(tags).count == 9)
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
        let tile = TileRequest(job: 1, tile: 1, channels: 1, height: 2, width: 2, location: [], temporal: [], pixels: [1, 2, 3, 4])
        var bytes = WireMessage.tiles([tile]).encoded()
        bytes[20] = 3  // channels: 1 → 3 (after the count, job and tile)
        #expect(throws: WireError.self) { try WireMessage.decode(tag: 4, bytes: bytes) }
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
