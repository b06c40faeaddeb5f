import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory (`mmap`, `MAP_PRIVATE`), unmapped on deinit.
///
/// Checkpoint readers hand out pointers into this mapping, so it must outlive every
/// `CheckpointTensor` taken from it (the readers keep it alive for their own lifetime).
/// Pages are loaded lazily by the kernel: mapping a 1.3 GB file costs nothing until it is read.
/// If another process truncates the file while it is mapped, touching the lost pages raises SIGBUS;
/// that cannot be turned into a Swift error.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    /// Size of the file (and of the mapping) in bytes; always > 0.
    public let count: Int
    /// Start of the mapping.
    public let baseAddress: UnsafeRawPointer

    /// The whole file as bytes.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: baseAddress, count: count) }

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            switch code {
            case ENOENT: throw CheckpointError(file: path, "no such file")
            case EACCES: throw CheckpointError(file: path, "permission denied")
            default: throw CheckpointError(file: path, "cannot open: \(String(cString: strerror(code)))")
            }
        }
        defer { close(fd) }  // the mapping stays valid after the descriptor is closed
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw CheckpointError(file: path, "cannot stat: \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw CheckpointError(file: path, (info.st_mode & S_IFMT) == S_IFDIR ? "is a directory, not a file" : "is not a regular file")
        }
        guard info.st_size > 0 else { throw CheckpointError(file: path, "file is empty") }
        guard let size = Int(exactly: info.st_size) else { throw CheckpointError(file: path, "file too large to map") }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let address, address != MAP_FAILED else {
            throw CheckpointError(file: path, "mmap failed: \(String(cString: strerror(errno)))")
        }
        count = size
        baseAddress = UnsafeRawPointer(address)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: baseAddress), count) }

    /// Gives the pages read so far back to the kernel (they stay in the page cache): the mapping is
    /// read-only, so nothing is lost — a later read faults the page in again. Called once the
    /// Linear weights are packed, so that the originals no longer count in the process's RSS.
    public func dropResidentPages() {
        _ = madvise(UnsafeMutableRawPointer(mutating: baseAddress), count, MADV_DONTNEED)
    }

    /// Whether `pointer` lies inside the mapping (used to check zero-copy tensors).
    public func contains(_ pointer: UnsafeRawPointer) -> Bool {
        pointer >= baseAddress && pointer < baseAddress + count
    }

    /// The bytes `offset ..< offset + length`, or nil if that range is not inside the file.
    /// Overflow-safe for any `offset`/`length` (both typically come from the file itself).
    public func slice(offset: Int, length: Int) -> UnsafeRawBufferPointer? {
        guard offset >= 0, length >= 0, offset <= count, length <= count - offset else { return nil }
        return UnsafeRawBufferPointer(start: baseAddress + offset, count: length)
    }
}
