import Foundation

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

    /// Tells every worker to exit. Bounded in time so that a dead worker cannot hang the coordinator.
    public static func releaseWorkers(world: MPIWorld, reason: String, timeout: Double = 10) {
        let requests = (1..<max(world.size, 1)).compactMap { try? world.startSend(.shutdown(reason: reason), to: $0) }
        var backoff = Backoff()
        let deadline = monotonicSeconds() + timeout
        while requests.contains(where: { !((try? $0.test()) ?? true) }), monotonicSeconds() < deadline { backoff.wait() }
    }
}
