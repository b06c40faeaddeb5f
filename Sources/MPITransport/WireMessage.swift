import Foundation
import Geo
import Pipeline

/// Version of the coordinator⇄worker protocol; a worker from another build is refused at hello.
public let wireProtocolVersion: UInt32 = 4

/// First message of every worker: who and where it is, and what it can do.
public struct WorkerHello: Equatable, Sendable {
    public var protocolVersion: UInt32 = wireProtocolVersion
    public var rank: Int32
    public var host: String
    public var pid: Int32
    public var threads: Int32
    public init(rank: Int32, host: String, pid: Int32, threads: Int32) {
        self.rank = rank; self.host = host; self.pid = pid; self.threads = threads
    }
}

/// Coordinator → worker: load this model (the worker maps the weights itself).
public struct WorkerSetup: Equatable, Sendable {
    public var modelDirectory: String
    /// BLAS threads for this worker; 0 keeps the worker's own default.
    public var blasThreads: Int32
    public init(modelDirectory: String, blasThreads: Int32) {
        self.modelDirectory = modelDirectory; self.blasThreads = blasThreads
    }
}

/// Worker → coordinator after setup: the model is loaded, or why it is not.
public struct WorkerReady: Equatable, Sendable {
    public var error: String?
    public var loadSeconds: Double
    public var summary: String
    /// BLAS threads the worker computes with.
    public var threads: Int32
    public init(error: String?, loadSeconds: Double, summary: String, threads: Int32) {
        self.error = error; self.loadSeconds = loadSeconds; self.summary = summary; self.threads = threads
    }
}

/// Everything that travels between coordinator and workers. The MPI tag is the case.
public enum WireMessage: Equatable, Sendable {
    case hello(WorkerHello)
    case setup(WorkerSetup)
    case ready(WorkerReady)
    /// Tiles computed in one forward pass, exactly as grouped: a batch's GEMMs round differently
    /// from single tiles', so the coordinator fixes the grouping and results stay reproducible.
    case tiles([TileRequest])
    case result(TileResult)
    case failure(TileFailure)
    case shutdown(reason: String)
    /// Echo request for measuring the fabric (`coordinator world --ping-seconds`); the worker answers `.pong`.
    case ping(sequence: UInt64, payload: [UInt8])
    case pong(sequence: UInt64, payload: [UInt8])
    case openScene(SceneOpening)
    /// Worker → coordinator: the scene is open (nil), or why the worker cannot read it.
    case sceneOpened(job: UInt64, error: String?)
    case closeScene(job: UInt64)

    public var tag: Int32 {
        switch self {
        case .hello: return 1
        case .setup: return 2
        case .ready: return 3
        case .tiles: return 4
        case .result: return 5
        case .failure: return 6
        case .shutdown: return 7
        case .ping: return 8
        case .pong: return 9
        case .openScene: return 10
        case .sceneOpened: return 11
        case .closeScene: return 12
        }
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        switch self {
        case .hello(let m):
            w.write(m.protocolVersion); w.write(m.rank); w.write(m.host); w.write(m.pid); w.write(m.threads)
        case .setup(let m):
            w.write(m.modelDirectory); w.write(m.blasThreads)
        case .ready(let m):
            w.write(m.error != nil); w.write(m.error ?? ""); w.write(m.loadSeconds); w.write(m.summary); w.write(m.threads)
        case .tiles(let batch):
            w = ByteWriter(capacity: 16 + batch.reduce(0) { $0 + 64 + $1.pixels.count * 4 })
            w.write(UInt32(batch.count))
            for m in batch {
                w.write(m.job); w.write(m.tile); w.write(m.channels); w.write(m.height); w.write(m.width)
                w.write(m.source); w.write(m.window)
                w.write(floats: m.location); w.write(floats: m.temporal); w.write(floats: m.pixels)
                w.write(m.answer.rawValue)
            }
        case .result(let m):
            w = ByteWriter(capacity: 64 + m.logits.count * 4 + m.valid.count)
            w.write(m.job); w.write(m.tile); w.write(m.classes); w.write(m.height); w.write(m.width)
            w.write(m.computeSeconds); w.write(m.skipped); w.write(floats: m.logits)
            w.write(UInt64(m.valid.count)); w.append(m.valid)
        case .failure(let m):
            w.write(m.job); w.write(m.tile); w.write(m.message)
        case .shutdown(let reason):
            w.write(reason)
        case .ping(let sequence, let payload), .pong(let sequence, let payload):
            w = ByteWriter(capacity: 16 + payload.count)
            w.write(sequence); w.write(UInt64(payload.count)); w.append(payload)
        case .openScene(let m):
            w.write(m.job); w.write(m.path)
            w.write(m.fingerprint.size); w.write(m.fingerprint.modified); w.write(m.fingerprint.digest)
            w.write(m.recipe)
            w.write(UInt32(m.drivers.count))
            for driver in m.drivers { w.write(driver) }
        case .sceneOpened(let job, let error):
            w.write(job); w.write(error != nil); w.write(error ?? "")
        case .closeScene(let job):
            w.write(job)
        }
        return w.bytes
    }

    public static func decode(tag: Int32, bytes: [UInt8]) throws -> WireMessage {
        var r = ByteReader(bytes)
        let message: WireMessage
        switch tag {
        case 1:
            let version = try r.read(UInt32.self)
            guard version == wireProtocolVersion else {
                throw WireError("worker speaks wire protocol \(version), this coordinator \(wireProtocolVersion): coordinator and tileworker come from different builds")
            }
            var hello = WorkerHello(rank: try r.read(), host: try r.read(), pid: try r.read(), threads: try r.read())
            hello.protocolVersion = version
            message = .hello(hello)
        case 2:
            message = .setup(WorkerSetup(modelDirectory: try r.read(), blasThreads: try r.read()))
        case 3:
            let failed = try r.read(Bool.self)
            let error = try r.read(String.self)
            message = .ready(WorkerReady(error: failed ? error : nil, loadSeconds: try r.read(), summary: try r.read(), threads: try r.read()))
        case 4:
            let count = try r.read(UInt32.self)
            guard count >= 1, count <= 64 else { throw WireError("a batch of \(count) tiles") }
            var batch: [TileRequest] = []
            for _ in 0..<count {
                let job: UInt64 = try r.read(), tile: UInt64 = try r.read()
                let channels: Int32 = try r.read(), height: Int32 = try r.read(), width: Int32 = try r.read()
                let source = try r.readWindow(), window: Int32 = try r.read()
                let location = try r.readFloats(), temporal = try r.readFloats(), pixels = try r.readFloats()
                let answerCode: UInt8 = try r.read()
                guard let answer = TileAnswer(rawValue: answerCode) else { throw WireError("tile \(tile): answer \(answerCode)") }
                guard channels > 0, height > 0, width > 0, window > 0,
                      pixels.isEmpty || pixels.count == Int(channels) * Int(height) * Int(width) else {
                    throw WireError("tile \(tile): \(pixels.count) pixels do not fill \(channels)×\(height)×\(width)")
                }
                guard location.count == 0 || location.count == 2, temporal.count == 0 || temporal.count == 2 else {
                    throw WireError("tile \(tile): location and temporal coordinates take 0 or 2 values")
                }
                batch.append(TileRequest(job: job, tile: tile, channels: channels, height: height, width: width,
                                         source: source, window: window, location: location, temporal: temporal, pixels: pixels,
                                         answer: answer))
            }
            message = .tiles(batch)
        case 5:
            let job: UInt64 = try r.read(), tile: UInt64 = try r.read()
            let classes: Int32 = try r.read(), height: Int32 = try r.read(), width: Int32 = try r.read()
            let seconds: Double = try r.read()
            let skipped: Bool = try r.read()
            let logits = try r.readFloats()
            let valid = try r.readBytes()
            guard classes > 0, height > 0, width > 0, skipped ? logits.isEmpty : logits.count == Int(classes) * Int(height) * Int(width) else {
                throw WireError("result of tile \(tile): \(logits.count) logits do not fill \(classes)×\(height)×\(width)")
            }
            message = .result(TileResult(job: job, tile: tile, classes: classes, height: height, width: width, computeSeconds: seconds,
                                         logits: logits, valid: valid, skipped: skipped))
        case 6:
            message = .failure(TileFailure(job: try r.read(), tile: try r.read(), message: try r.read()))
        case 7:
            message = .shutdown(reason: try r.read())
        case 8, 9:
            let sequence: UInt64 = try r.read()
            let payload = try r.readBytes()
            message = tag == 8 ? .ping(sequence: sequence, payload: payload) : .pong(sequence: sequence, payload: payload)
        case 10:
            let job: UInt64 = try r.read(), path: String = try r.read()
            let fingerprint = FileFingerprint(size: try r.read(), modified: try r.read(), digest: try r.read())
            let recipe = try r.readRecipe()
            let count = try r.read(UInt32.self)
            guard count <= 64 else { throw WireError("a scene with \(count) drivers") }
            var drivers: [String] = []
            for _ in 0..<count { drivers.append(try r.read(String.self)) }
            message = .openScene(SceneOpening(job: job, path: path, fingerprint: fingerprint, recipe: recipe, drivers: drivers))
        case 11:
            let job: UInt64 = try r.read()
            let failed: Bool = try r.read()
            let error: String = try r.read()
            message = .sceneOpened(job: job, error: failed ? error : nil)
        case 12:
            message = .closeScene(job: try r.read())
        default:
            throw WireError("unknown message tag \(tag)")
        }
        try r.expectEnd("message with tag \(tag)")
        return message
    }
}

extension MPIWorld {
    /// Sends a wire message and waits until it has left (for control messages; tiles use `startSend`).
    public func send(_ message: WireMessage, to destination: Int, timeout: Double? = nil) throws {
        try send(message.encoded(), to: destination, tag: message.tag, timeout: timeout)
    }

    public func startSend(_ message: WireMessage, to destination: Int) throws -> MPISendRequest {
        try startSend(message.encoded(), to: destination, tag: message.tag)
    }

    /// Receives the next wire message, if any is waiting.
    public func receiveMessageIfAvailable(from source: Int? = nil) throws -> (source: Int, message: WireMessage)? {
        guard let (envelope, bytes) = try receiveIfAvailable(from: source) else { return nil }
        return (envelope.source, try WireMessage.decode(tag: envelope.tag, bytes: bytes))
    }

    /// Waits for the next wire message; nil on timeout.
    public func receiveMessage(from source: Int? = nil, timeout: Double? = nil) throws -> (source: Int, message: WireMessage)? {
        guard let (envelope, bytes) = try receive(from: source, timeout: timeout) else { return nil }
        return (envelope.source, try WireMessage.decode(tag: envelope.tag, bytes: bytes))
    }
}

extension ByteWriter {
    mutating func write(_ window: PixelWindow) {
        write(Int32(window.x)); write(Int32(window.y)); write(Int32(window.width)); write(Int32(window.height))
    }

    mutating func write(_ recipe: TileRecipe) {
        write(UInt32(recipe.bands.count))
        for band in recipe.bands { write(Int32(band)) }
        for value in recipe.nodata { write(value != nil); write(value ?? 0) }
        write(floats: recipe.means); write(floats: recipe.stds)
        write(recipe.reflectanceDivisor)
        write(floats: recipe.location); write(floats: recipe.temporal)
        write(Int32(recipe.tileSize)); write(Int32(recipe.window))
    }
}

extension ByteReader {
    mutating func readWindow() throws -> PixelWindow {
        let x = Int(try read(Int32.self)), y = Int(try read(Int32.self))
        let width = Int(try read(Int32.self)), height = Int(try read(Int32.self))
        guard x >= 0, y >= 0, width > 0, height > 0 else { throw WireError("window \(width)×\(height) at (\(x), \(y))") }
        return PixelWindow(x: x, y: y, width: width, height: height)
    }

    mutating func readRecipe() throws -> TileRecipe {
        let count = Int(try read(UInt32.self))
        guard count >= 1, count <= 256 else { throw WireError("a recipe of \(count) bands") }
        var bands: [Int] = []
        for _ in 0..<count { bands.append(Int(try read(Int32.self))) }
        var nodata: [Double?] = []
        for _ in 0..<count {
            let has: Bool = try read()
            let value: Double = try read()
            nodata.append(has ? value : nil)
        }
        let means = try readFloats(), stds = try readFloats()
        let divisor: Float = try read()
        let location = try readFloats(), temporal = try readFloats()
        let tileSize = Int(try read(Int32.self)), window = Int(try read(Int32.self))
        guard means.count == count, stds.count == count, tileSize > 0, window > 0,
              location.count == 0 || location.count == 2, temporal.count == 0 || temporal.count == 2 else {
            throw WireError("an inconsistent tile recipe (\(count) bands, \(means.count) means, \(stds.count) stds)")
        }
        return TileRecipe(bands: bands, means: means, stds: stds, nodata: nodata, reflectanceDivisor: divisor,
                          location: location, temporal: temporal, tileSize: tileSize, window: window)
    }
}
