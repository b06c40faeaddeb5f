import CMPICH
import Foundation
import Support

/// An MPI call that did not return MPI_SUCCESS, or a world that does not fit our needs.
public struct MPIError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }

    static func check(_ code: Int32, _ call: String) throws {
        guard code != MPI_SUCCESS else { return }
        var buffer = [CChar](repeating: 0, count: Int(shim_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &buffer, &length)
        let text = String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw MPIError("\(call) failed (code \(code)): \(text)")
    }
}

public enum MPIThreadLevel: Int32, Comparable, CustomStringConvertible, Sendable {
    case single = 0, funneled = 1, serialized = 2, multiple = 3

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String {
        switch self {
        case .single: return "MPI_THREAD_SINGLE"
        case .funneled: return "MPI_THREAD_FUNNELED"
        case .serialized: return "MPI_THREAD_SERIALIZED"
        case .multiple: return "MPI_THREAD_MULTIPLE"
        }
    }
}

/// Who sent a message that is waiting to be received, with what tag and how many bytes.
public struct MPIEnvelope: Sendable, Equatable {
    public let source: Int
    public let tag: Int32
    public let byteCount: Int
}

/// The MPI world of this process (MPI_COMM_WORLD), with byte-buffer messaging only.
///
/// Waiting never blocks inside MPI: MPICH's blocking calls busy-poll a whole core, which on a small
/// machine steals the workers' compute. Every wait here is `MPI_Improbe`/`MPI_Test` plus short sleeps
/// (`Backoff`). All calls must come from one thread at a time (MPI_THREAD_SERIALIZED).
public final class MPIWorld: @unchecked Sendable {
    public let rank: Int
    public let size: Int
    public let processorName: String
    public let threadLevel: MPIThreadLevel
    private var finalized = false

    /// Initialises MPI (once per process) and checks the provided thread level.
    public init(required: MPIThreadLevel = .serialized) throws {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        guard initialized == 0 else { throw MPIError("MPI is already initialised in this process") }
        var provided: Int32 = 0
        try MPIError.check(MPI_Init_thread(nil, nil, required.rawValue, &provided), "MPI_Init_thread")
        let level = MPIThreadLevel(rawValue: provided) ?? .single
        guard level >= required else {
            MPI_Finalize()
            throw MPIError("MPI provides \(level) but \(required) is required")
        }
        threadLevel = level
        // Errors come back as codes (turned into Swift errors) instead of aborting the job.
        MPI_Comm_set_errhandler(shim_comm_world(), shim_errors_return())
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(shim_comm_world(), &r)
        MPI_Comm_size(shim_comm_world(), &s)
        rank = Int(r)
        size = Int(s)
        var name = [CChar](repeating: 0, count: Int(shim_max_processor_name()) + 1)
        var length: Int32 = 0
        MPI_Get_processor_name(&name, &length)
        processorName = String(decoding: name.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Starts sending `bytes` to `destination`; the returned request owns a copy of the bytes until done.
    public func startSend(_ bytes: [UInt8], to destination: Int, tag: Int32) throws -> MPISendRequest {
        try MPISendRequest(bytes: bytes, destination: destination, tag: tag)
    }

    /// Sends and waits (politely) until the buffer has left this process.
    public func send(_ bytes: [UInt8], to destination: Int, tag: Int32, timeout: Double? = nil) throws {
        let request = try startSend(bytes, to: destination, tag: tag)
        var backoff = Backoff.busy
        let deadline = timeout.map { monotonicSeconds() + $0 }
        while try !request.test() {
            if let deadline, monotonicSeconds() > deadline {
                throw MPIError("sending \(bytes.count) bytes to rank \(destination) did not complete within \(timeout!) s")
            }
            backoff.wait()
        }
    }

    /// A matched probe: takes the next waiting message off the queue (nil when none), and receives it.
    public func receiveIfAvailable(from source: Int? = nil, tag: Int32? = nil) throws -> (MPIEnvelope, [UInt8])? {
        var flag: Int32 = 0
        var message = MPI_Message(0)
        var status = MPI_Status()
        try MPIError.check(
            MPI_Improbe(Int32(source ?? Int(shim_any_source())), tag ?? shim_any_tag(), shim_comm_world(), &flag, &message, &status),
            "MPI_Improbe")
        guard flag != 0 else { return nil }
        var count: Int32 = 0
        try MPIError.check(MPI_Get_count(&status, shim_byte(), &count), "MPI_Get_count")
        // Received straight into uninitialised memory (no zeroing of half-megabyte results).
        let bytes = try [UInt8](unsafeUninitializedCapacity: Int(count)) { buffer, initialized in
            try MPIError.check(MPI_Mrecv(buffer.baseAddress, count, shim_byte(), &message, shim_status_ignore()), "MPI_Mrecv")
            initialized = Int(count)
        }
        return (MPIEnvelope(source: Int(status.MPI_SOURCE), tag: status.MPI_TAG, byteCount: Int(count)), bytes)
    }

    /// Waits for the next message matching `source`/`tag`, sleeping between probes; nil on timeout.
    public func receive(from source: Int? = nil, tag: Int32? = nil, timeout: Double? = nil) throws -> (MPIEnvelope, [UInt8])? {
        var backoff = Backoff()
        let deadline = timeout.map { monotonicSeconds() + $0 }
        while true {
            if let message = try receiveIfAvailable(from: source, tag: tag) { return message }
            if let deadline, monotonicSeconds() > deadline { return nil }
            backoff.wait()
        }
    }

    /// Ends the whole job (every rank) with `code`. Use only when the job cannot continue consistently.
    public func abort(code: Int32) -> Never {
        MPI_Abort(shim_comm_world(), code)
        exit(code)
    }

    /// Finalises MPI; bounded by `FinalizeWatchdog` (after `timeout` seconds the process ends with
    /// `status`, telling the process manager it finished) since MPI_Finalize can hang over TCP.
    public func finalize(status: Int32 = 0, timeout: Double = FinalizeWatchdog.timeout(fallback: 10),
                         log: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data(("WARNING " + $0 + "\n").utf8)) }) {
        guard !finalized else { return }
        finalized = true
        guard size > 1 else { MPI_Finalize(); return }
        FinalizeWatchdog.run(timeout: timeout, status: status, log: log) { _ = MPI_Finalize() }
    }
}

/// An `MPI_Isend` in progress. Owns its buffer, which must outlive the request.
public final class MPISendRequest: @unchecked Sendable {
    private let buffer: UnsafeMutableRawBufferPointer
    private var request: MPI_Request
    public let destination: Int
    public private(set) var isComplete = false

    init(bytes: [UInt8], destination: Int, tag: Int32) throws {
        AbandonedSends.reap()
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        bytes.withUnsafeBytes { storage.copyMemory(from: $0) }
        var pending = shim_request_null()
        do {
            try MPIError.check(
                MPI_Isend(storage.baseAddress, Int32(bytes.count), shim_byte(), Int32(destination), tag, shim_comm_world(), &pending),
                "MPI_Isend to rank \(destination)")
        } catch {
            storage.deallocate()
            throw error
        }
        buffer = storage
        request = pending
        self.destination = destination
    }

    /// Progresses MPI and reports whether the send has completed.
    public func test() throws -> Bool {
        guard !isComplete else { return true }
        var flag: Int32 = 0
        try MPIError.check(MPI_Test(&request, &flag, shim_status_ignore()), "MPI_Test (send to rank \(destination))")
        isComplete = flag != 0
        return isComplete
    }

    deinit {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        // After MPI_Finalize nothing reads the buffer any more (and no MPI call is allowed).
        guard !isComplete, finalized == 0 else { buffer.deallocate(); return }
        // MPI may still be reading the buffer (a cancel need not succeed, and a freed request goes
        // on in the background): it is kept until a later MPI_Test says the send is over.
        MPI_Cancel(&request)
        AbandonedSends.keep(request, buffer)
    }
}

/// Sends dropped before they completed, with their buffers, freed once MPI is done with them.
/// Touched only from the thread that makes the MPI calls (the engine's or the worker's loop).
enum AbandonedSends {
    nonisolated(unsafe) private static var pending: [(MPI_Request, UnsafeMutableRawBufferPointer)] = []

    static func keep(_ request: MPI_Request, _ buffer: UnsafeMutableRawBufferPointer) { pending.append((request, buffer)) }

    /// Frees the buffers of abandoned sends that have completed (or were cancelled).
    static func reap() {
        guard !pending.isEmpty else { return }
        pending.removeAll { entry in
            var request = entry.0
            var flag: Int32 = 0
            guard MPI_Test(&request, &flag, shim_status_ignore()) == MPI_SUCCESS, flag != 0 else { return false }
            entry.1.deallocate()
            return true
        }
    }

    static var count: Int { pending.count }
}
