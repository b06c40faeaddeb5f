import CMPICH
import Foundation
import Support
#if canImport(Glibc)
import Glibc
#endif

/// Bounds `MPI_Finalize`, which can hang after all the work is done.
///
/// MPICH 4.0 (the Debian/Ubuntu package) with UCX over TCP closes its endpoints in `MPI_Finalize`
/// *before* the PMI barrier: a rank whose close handshake needs a peer that has already closed its
/// own endpoints and sits in the PMI barrier waits forever (MPICH 4.1 moved the barrier first).
/// Shared memory never shows it; TCP between hosts does, most of the time, on this combination.
///
/// When `MPI_Finalize` has not returned after `timeout` seconds and its thread is spinning in UCX
/// (not waiting in the PMI barrier), a watchdog thread does what the stuck call would have done
/// next on the process manager's side — PMI-1 `barrier_in` (releasing the peers waiting there) and
/// `finalize` over `PMI_FD` — and exits with the intended status, so the launcher sees a clean end
/// instead of a hang or a "bad termination".
public enum FinalizeWatchdog {
    /// Seconds `MPI_Finalize` may take: `PRITHVI_FINALIZE_TIMEOUT`, else `fallback`.
    public static func timeout(fallback: Double) -> Double {
        ProcessInfo.processInfo.environment["PRITHVI_FINALIZE_TIMEOUT"].flatMap(Double.init).map { max(0.1, $0) } ?? fallback
    }

    /// Runs `finalize`; if it has not returned within `timeout` seconds, finishes the PMI exchange
    /// and `_exit`s with `status` from another thread.
    public static func run(timeout: Double, status: Int32, log: @escaping @Sendable (String) -> Void, _ finalize: () -> Void) {
        let done = DispatchSemaphore(value: 0)
        let finalizingThread = currentThreadID()
        let pmiSocket = ProcessInfo.processInfo.environment["PMI_FD"].flatMap(Int32.init)
        Thread.detachNewThread {
            guard done.wait(timeout: .now() + timeout) == .timedOut else { return }
            // A rank already in the PMI barrier is waiting for a stuck peer, not stuck itself; its
            // own thread owns the socket then. Wait for the peer's watchdog to release it.
            // A rank released from the barrier meanwhile finishes on its own; hence the grace.
            var waited = 0.0
            while let pmiSocket, waited < 3 * timeout, isReading(thread: finalizingThread, socket: pmiSocket) || waited == 0 {
                if done.wait(timeout: .now() + 0.5) == .success { return }
                waited += 0.5
            }
            // Peers leave while the stuck thread still writes to their sockets.
            signal(SIGPIPE, SIG_IGN)
            log("MPI_Finalize has not returned after \(timeout + waited) s (the MPICH 4.0/UCX TCP shutdown hang; the results are complete); ending this rank through the process manager")
            if let pmiSocket, !isReading(thread: finalizingThread, socket: pmiSocket) {
                let client = PMIWire(fd: pmiSocket)
                if !client.command("cmd=barrier_in\n", awaiting: "barrier_out", timeout: 30) {
                    log("the PMI barrier did not complete (the process manager hung up, or 30 s passed); exiting anyway")
                }
                _ = client.command("cmd=finalize\n", awaiting: "finalize_ack", timeout: 5)
            }
            _exit(status)
        }
        finalize()
        done.signal()
    }

    /// The calling thread's kernel id.
    public static func currentThreadID() -> Int32 { shim_thread_id() }

    /// Whether `thread` of this process is blocked reading `socket`, from `/proc/self/task/T/syscall`
    /// ("0 0x6 …": syscall read on fd 6). Sampled a few times: a spinning thread passes through
    /// other calls, a waiting one stays put.
    public static func isReading(thread: Int32, socket: Int32) -> Bool {
        for _ in 0..<3 {
            // procfs reports size 0, so read it with a plain read(2) rather than Foundation.
            let file = open("/proc/self/task/\(thread)/syscall", O_RDONLY)
            guard file >= 0 else { return false }
            var buffer = [UInt8](repeating: 0, count: 256)
            let count = read(file, &buffer, buffer.count)
            close(file)
            guard count > 0 else { return false }
            let fields = String(decoding: buffer.prefix(count), as: UTF8.self).split(separator: " ")
            guard fields.count > 1, fields[0] == "0", Int32(fields[1].dropFirst(2), radix: 16) == socket else { return false }
            usleep(10_000)
        }
        return true
    }
}

/// The PMI-1 wire protocol (newline-terminated `key=value` commands) on an inherited socket.
public struct PMIWire: Sendable {
    public let fd: Int32
    public init(fd: Int32) { self.fd = fd }

    /// Writes `command` and reads lines until one contains `awaiting`; false on error or timeout.
    public func command(_ command: String, awaiting: String, timeout: Double) -> Bool {
        let bytes = Array(command.utf8)
        // MSG_NOSIGNAL: a process manager that already hung up must not kill us with SIGPIPE.
        guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else { return false }
        let deadline = monotonicSeconds() + timeout
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let left = deadline - monotonicSeconds()
            guard left > 0 else { return false }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(min(left, 1) * 1000)) >= 0 else { return false }
            guard poller.revents != 0 else { continue }
            guard read(fd, &byte, 1) == 1 else { return false }
            if byte == UInt8(ascii: "\n") {
                if String(decoding: line, as: UTF8.self).contains(awaiting) { return true }
                line.removeAll(keepingCapacity: true)
            } else {
                line.append(byte)
            }
        }
    }
}
