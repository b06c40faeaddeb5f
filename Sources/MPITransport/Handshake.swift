import Foundation
import Support

/// A tile worker as the coordinator knows it after the handshake.
public struct WorkerInfo: Equatable, Sendable {
    public var rank: Int
    public var host: String
    public var pid: Int
    public var threads: Int
    public init(rank: Int, host: String, pid: Int, threads: Int) { self.rank = rank; self.host = host; self.pid = pid; self.threads = threads }
}

/// Coordinator side of the start-up handshake: every rank but 0 is a tile worker and says hello first.
public enum Handshake {
    /// Waits for a hello from each of ranks 1..<size. Fails naming the ranks that stayed silent.
    public static func gatherWorkers(world: MPIWorld, timeout: Double = 120) throws -> [WorkerInfo] {
        var workers: [Int: WorkerInfo] = [:]
        let deadline = monotonicSeconds() + timeout
        while workers.count < world.size - 1 {
            let left = deadline - monotonicSeconds()
            guard left > 0, let (source, message) = try world.receiveMessage(timeout: left) else {
                let missing = (1..<world.size).filter { workers[$0] == nil }
                throw MPIError("no hello from rank(s) \(missing.map(String.init).joined(separator: ", ")) within \(Int(timeout)) s; were they started as `tileworker`?")
            }
            guard case .hello(let hello) = message else {
                throw MPIError("rank \(source) sent \(message.tag) before saying hello; is it a tileworker of this build?")
            }
            guard Int(hello.rank) == source else {
                throw MPIError("rank \(source) claims to be rank \(hello.rank)")
            }
            workers[source] = WorkerInfo(rank: source, host: hello.host, pid: Int(hello.pid), threads: Int(hello.threads))
        }
        return workers.values.sorted { $0.rank < $1.rank }
    }

    /// Tells every worker to exit and waits for each to acknowledge, receiving and dropping
    /// whatever results are still on their way (a worker blocked sending one would otherwise never
    /// read its shutdown, and MPI_Finalize would wait for it forever). Bounded in time; false when
    /// some worker did not answer (then the job must end with `abort`, not `finalize`).
    @discardableResult
    public static func releaseWorkers(world: MPIWorld, reason: String, timeout: Double = 15) -> Bool {
        guard world.size > 1 else { return true }
        var requests = (1..<world.size).compactMap { try? world.startSend(.shutdown(reason: reason), to: $0) }
        var pending = Set(1..<world.size)
        var backoff = Backoff.busy
        let deadline = monotonicSeconds() + timeout
        // Also until our own shutdown sends have completed locally, so none is cancelled in flight.
        while !pending.isEmpty || !requests.isEmpty, monotonicSeconds() < deadline {
            requests = requests.filter { !((try? $0.test()) ?? true) }
            if pending.isEmpty { backoff.wait(); continue }
            if let (source, message) = try? world.receiveMessageIfAvailable() {
                if case .shutdown = message { pending.remove(source) }
                backoff.reset()
                continue
            }
            backoff.wait()
        }
        return pending.isEmpty
    }
}
