import Foundation
import Tensor

#if canImport(Glibc)
import Glibc
#endif

/// The checkpoint's Linear weights packed for the GEMM (`PackedMatrix`), kept in a file so that
/// a node packs them once and every worker on it maps the same pages: no private 1.2 GB copy per
/// worker, and no packing after the first load.
///
/// Where: `.<checkpoint>.packed` beside the checkpoint when its directory is writable, else
/// `$XDG_CACHE_HOME/prithvi-mpi` (or `~/.cache/prithvi-mpi`); `PRITHVI_WEIGHT_CACHE` names
/// another directory, or `off`. A file is used only when it was made from this very checkpoint
/// (path, size, mtime and a fingerprint of its content) with this layout; otherwise it is rebuilt.
///
/// Building runs under `flock` on the cache's directory (the other workers of the node wait, then
/// map what the first one wrote), into a temporary file renamed once complete and fsynced. Each
/// matrix is written as soon as it is packed and mapped back from the file, so even the builder
/// holds no second copy. Without a usable place (read-only, full disk) the matrices are packed
/// into this process's memory and `report` says why.
final class PackedWeightCache {
    /// Layout of the file (bump when `ck_gemm_pack_b`'s panels change).
    static let format = 1
    static let magic: [UInt8] = Array("PRPACK01".utf8)
    /// Entries start on multiples of this (4 KiB, or the system's page if larger: each matrix is
    /// mapped back from the file on its own while the file is built).
    static let pageSize = max(4096, Int(sysconf(Int32(_SC_PAGESIZE))))
    /// Largest dimension an entry may claim (a damaged index must not overflow a size).
    static let largestDimension = 1 << 20

    struct Source: Codable, Equatable {
        var path: String
        var size: Int
        var mtimeNanoseconds: Int
        var fingerprint: UInt64
    }

    struct Entry: Codable {
        var name: String
        var n: Int
        var k: Int
        var offset: Int
    }

    struct Footer: Codable {
        var format: Int
        var panel: Int
        var source: Source
        var entries: [Entry]
    }

    private enum State {
        case off
        case mapped(MappedFile, [String: Entry])
        case building(Builder)
    }

    /// A cache file being written.
    private final class Builder {
        let path: String, temporary: String
        let descriptor: Int32, directoryLock: Int32
        var end = PackedWeightCache.pageSize
        var entries: [Entry] = []
        var failure: String?
        var staging: FloatBuffer?
        let started = Date()

        init(path: String, temporary: String, descriptor: Int32, directoryLock: Int32) {
            self.path = path; self.temporary = temporary; self.descriptor = descriptor; self.directoryLock = directoryLock
        }
    }

    private var state: State
    private var misses: [String] = []
    private(set) var report: String

    /// Opens the cache of `checkpoint`, building it when none is valid.
    init(checkpoint: String, environment: [String: String] = ProcessInfo.processInfo.environment) {
        let setting = environment["PRITHVI_WEIGHT_CACHE"]
        guard setting?.lowercased() != "off" else {
            state = .off
            report = "packed weights: in this process's memory (PRITHVI_WEIGHT_CACHE=off)"
            return
        }
        guard let source = Self.source(of: checkpoint) else {
            state = .off
            report = "packed weights: in this process's memory (cannot read \(checkpoint) to key a cache)"
            return
        }
        let candidates = Self.locations(checkpoint: source.path, setting: setting, environment: environment)
        for path in candidates {
            if let (file, entries) = Self.open(path, source: source) {
                state = .mapped(file, entries)
                report = "packed weights: mapped \(path)"
                return
            }
        }
        var reasons: [String] = []
        for path in candidates {
            let directory = (path as NSString).deletingLastPathComponent
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let lock = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard lock >= 0 else { reasons.append("\(directory): \(String(cString: strerror(errno)))"); continue }
            // Another worker of this node may be building it: wait for it, then use its file.
            var locked = flock(lock, LOCK_EX) == 0
            while !locked && errno == EINTR { locked = flock(lock, LOCK_EX) == 0 }
            let lockProblem = locked ? nil : String(cString: strerror(errno))
            if let (file, entries) = Self.open(path, source: source) {
                flock(lock, LOCK_UN); close(lock)
                state = .mapped(file, entries)
                report = "packed weights: mapped \(path) (built by another process)"
                return
            }
            // Holding the lock, any temporary of this cache is a killed builder's: remove it.
            if locked { Self.removeTemporaries(of: path) }
            // Host and pid: on a shared file system without flock two nodes may build at once; both
            // files are complete and identical, and the first to publish wins (`publish`).
            let temporary = path + ".tmp-\(ProcessInfo.processInfo.hostName)-\(getpid())"
            let descriptor = Glibc.open(temporary, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
            guard descriptor >= 0 else {
                reasons.append("\(directory): \(String(cString: strerror(errno)))")
                flock(lock, LOCK_UN); close(lock)
                continue
            }
            state = .building(Builder(path: path, temporary: temporary, descriptor: descriptor, directoryLock: lock))
            self.source = source
            report = ""
            lockNote = lockProblem.map { " (without a lock: flock on \(directory) failed: \($0))" } ?? ""
            return
        }
        state = .off
        report = "packed weights: in this process's memory (no writable cache directory: \(reasons.joined(separator: "; ")))"
    }

    private var source: Source?
    private var lockNote = ""

    /// A binder dropped before `finish` (its load failed) leaves no temporary and no lock behind.
    deinit { abandon() }

    /// Gives up a build: the temporary is removed, the lock released (the load failed: a cache
    /// missing the matrices after the failure must not be published).
    func abandon() {
        guard case .building(let builder) = state else { return }
        close(builder.descriptor)
        unlink(builder.temporary)
        flock(builder.directoryLock, LOCK_UN); close(builder.directoryLock)
        state = .off
    }

    static func removeTemporaries(of path: String) {
        let directory = (path as NSString).deletingLastPathComponent, prefix = (path as NSString).lastPathComponent + ".tmp-"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix(prefix) {
            unlink(directory + "/" + name)
        }
    }

    /// The matrix `name` from a mapped cache, without touching the checkpoint (whose tensor may
    /// need a float32 conversion), or nil.
    func cached(_ name: String, n: Int, k: Int) -> PackedMatrix? {
        guard case .mapped(let file, let entries) = state, let entry = entries[name], entry.n == n, entry.k == k else { return nil }
        return PackedMatrix(packed: (file.baseAddress + entry.offset).assumingMemoryBound(to: Float.self), n: n, k: k, owner: file)
    }

    /// The Linear weight `w` ([n × k], PyTorch's layout) named `name`, packed.
    func matrix(_ name: String, weight w: UnsafePointer<Float>, n: Int, k: Int) -> PackedMatrix {
        switch state {
        case .off:
            return PackedMatrix(packing: w, n: n, k: k, transposed: true)
        case .mapped:
            if let matrix = cached(name, n: n, k: k) { return matrix }
            misses.append(name)
            return PackedMatrix(packing: w, n: n, k: k, transposed: true)
        case .building(let builder):
            return add(name, weight: w, n: n, k: k, to: builder)
        }
    }

    private func add(_ name: String, weight w: UnsafePointer<Float>, n: Int, k: Int, to builder: Builder) -> PackedMatrix {
        guard builder.failure == nil else { return PackedMatrix(packing: w, n: n, k: k, transposed: true) }
        let floats = PackedMatrix.floats(n: n, k: k)
        if (builder.staging?.count ?? 0) < floats { builder.staging = FloatBuffer(count: floats, zeroed: false) }
        let staging = builder.staging!
        PackedMatrix.pack(w, n: n, k: k, transposed: true, into: staging.pointer)
        let offset = builder.end, bytes = floats * MemoryLayout<Float>.stride
        if let problem = Self.write(builder.descriptor, UnsafeRawPointer(staging.pointer), count: bytes, at: offset) {
            builder.failure = "cannot write \(builder.temporary): \(problem)"
            return PackedMatrix(packing: w, n: n, k: k, transposed: true)
        }
        // Mapped back from the file: the same pages as every other worker's once renamed.
        guard let region = MappedRegion(descriptor: builder.descriptor, offset: offset, count: bytes) else {
            builder.failure = "cannot map \(builder.temporary): \(String(cString: strerror(errno)))"
            return PackedMatrix(packing: w, n: n, k: k, transposed: true)
        }
        builder.entries.append(Entry(name: name, n: n, k: k, offset: offset))
        builder.end = Self.aligned(offset + bytes)
        return PackedMatrix(packed: region.pointer, n: n, k: k, owner: region)
    }

    /// Completes the file (footer, fsync, rename) and releases the lock; updates `report`.
    func finish() {
        if !misses.isEmpty {
            report += "; \(misses.count) matrices missing from it were packed in memory (\(misses.prefix(3).joined(separator: ", ")))"
        }
        guard case .building(let builder) = state, let source else { return }
        defer {
            close(builder.descriptor)
            flock(builder.directoryLock, LOCK_UN); close(builder.directoryLock)
            state = .off
        }
        let megabytes = Double(builder.end) / 1_048_576
        var failure = builder.failure
        if failure == nil {
            do {
                let footer = try JSONEncoder().encode(Footer(format: Self.format, panel: PackedMatrix.panelWidth, source: source, entries: builder.entries))
                var preamble = Self.magic
                withUnsafeBytes(of: UInt64(builder.end).littleEndian) { preamble += $0 }
                withUnsafeBytes(of: UInt64(footer.count).littleEndian) { preamble += $0 }
                failure = footer.withUnsafeBytes { Self.write(builder.descriptor, $0.baseAddress!, count: footer.count, at: builder.end) }
                    ?? preamble.withUnsafeBytes { Self.write(builder.descriptor, $0.baseAddress!, count: preamble.count, at: 0) }
            } catch {
                failure = "cannot encode the index: \(error)"
            }
        }
        if failure == nil, fsync(builder.descriptor) != 0 { failure = "fsync: \(String(cString: strerror(errno)))" }
        if failure == nil { failure = publish(builder.temporary, as: builder.path, source: source) }
        if let failure {
            unlink(builder.temporary)  // matrices already mapped from it stay valid while mapped
            report = "packed weights: in this process's memory (\(failure))"
            return
        }
        fsync(builder.directoryLock)
        report = "packed weights: built \(builder.path) (\(String(format: "%.0f", megabytes)) MB in \(String(format: "%.1f", Date().timeIntervalSince(builder.started))) s, once per checkpoint and node)\(lockNote)"
    }

    // MARK: - Files

    /// Puts the complete temporary at `path`. A link never replaces a file: a valid cache another
    /// builder published meanwhile (no lock on some shared file systems) stays, and may be mapped
    /// by other nodes, where replacing it would leave their mappings stale. Only a file that is not
    /// a valid cache for `source` is replaced.
    private func publish(_ temporary: String, as path: String, source: Source) -> String? {
        if link(temporary, path) == 0 { unlink(temporary); return nil }
        guard errno == EEXIST else { return "link: \(String(cString: strerror(errno)))" }
        if Self.open(path, source: source) != nil { unlink(temporary); return nil }  // ours is identical
        return rename(temporary, path) == 0 ? nil : "rename: \(String(cString: strerror(errno)))"
    }

    static func aligned(_ offset: Int) -> Int { (offset + pageSize - 1) / pageSize * pageSize }

    /// pwrite in full; an error's description, or nil.
    static func write(_ descriptor: Int32, _ bytes: UnsafeRawPointer, count: Int, at offset: Int) -> String? {
        var done = 0
        while done < count {
            let wrote = pwrite(descriptor, bytes + done, count - done, off_t(offset + done))
            if wrote < 0 {
                if errno == EINTR { continue }
                return String(cString: strerror(errno))
            }
            done += wrote
        }
        return nil
    }

    static func locations(checkpoint: String, setting: String?, environment: [String: String]) -> [String] {
        let name = (checkpoint as NSString).lastPathComponent
        if let setting, !setting.isEmpty { return [setting + "/" + Self.cacheName(for: checkpoint)] }
        var candidates = [(checkpoint as NSString).deletingLastPathComponent + "/.\(name).packed"]
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            candidates.append(xdg + "/prithvi-mpi/" + Self.cacheName(for: checkpoint))
        } else if let home = environment["HOME"], !home.isEmpty {
            candidates.append(home + "/.cache/prithvi-mpi/" + Self.cacheName(for: checkpoint))
        }
        return candidates
    }

    /// A shared cache directory holds many checkpoints: the name carries a hash of the path.
    static func cacheName(for checkpoint: String) -> String {
        String(format: "%016llx-", fnv1a(Array(checkpoint.utf8))) + (checkpoint as NSString).lastPathComponent + ".packed"
    }

    static func fnv1a(_ bytes: [UInt8], _ start: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        var hash = start
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }

    /// Path, size, mtime and an FNV-1a of the first, middle and last 64 KiB of the checkpoint.
    static func source(of checkpoint: String) -> Source? {
        let path = URL(fileURLWithPath: checkpoint).standardizedFileURL.path
        var info = stat()
        guard stat(path, &info) == 0, let file = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? file.close() }
        let size = Int(info.st_size), block = 65_536
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for start in Set([0, max(0, size / 2 - block / 2), max(0, size - block)]).sorted() {
            guard (try? file.seek(toOffset: UInt64(start))) != nil, let data = try? file.read(upToCount: block) else { return nil }
            hash = fnv1a(Array(data), hash)
        }
        let mtime = Int(info.st_mtim.tv_sec) * 1_000_000_000 + Int(info.st_mtim.tv_nsec)
        return Source(path: path, size: size, mtimeNanoseconds: mtime, fingerprint: hash)
    }

    /// The cache at `path` if it is complete, made from `source` with this layout, and every entry
    /// lies inside it.
    static func open(_ path: String, source: Source) -> (MappedFile, [String: Entry])? {
        guard let file = try? MappedFile(path: path), file.count >= 4096 else { return nil }
        let bytes = file.bytes
        guard Array(bytes[0..<8]) == magic else { return nil }
        guard let footerOffset = Int(exactly: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian),
              let footerLength = Int(exactly: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self).littleEndian),
              footerOffset >= 4096, footerLength > 0, footerLength <= file.count,
              let region = file.slice(offset: footerOffset, length: footerLength),
              let footer = try? JSONDecoder().decode(Footer.self, from: Data(region)),
              footer.format == format, footer.panel == PackedMatrix.panelWidth, footer.source == source else { return nil }
        var entries: [String: Entry] = [:]
        for entry in footer.entries {
            guard (1...largestDimension).contains(entry.n), (1...largestDimension).contains(entry.k),
                  entry.offset >= 4096, entry.offset % 4096 == 0,
                  file.slice(offset: entry.offset, length: PackedMatrix.floats(n: entry.n, k: entry.k) * 4) != nil else { return nil }
            entries[entry.name] = entry
        }
        return (file, entries)
    }
}

/// Part of a file mapped read-only (page-aligned offset), unmapped on deinit.
final class MappedRegion: @unchecked Sendable {
    // Sendable: read-only memory, never written after mapping; unmapped only when the last owner goes.
    let pointer: UnsafePointer<Float>
    private let base: UnsafeMutableRawPointer
    private let count: Int

    init?(descriptor: Int32, offset: Int, count: Int) {
        guard let address = mmap(nil, count, PROT_READ, MAP_SHARED, descriptor, off_t(offset)), address != MAP_FAILED else { return nil }
        base = address
        self.count = count
        pointer = UnsafePointer(address.assumingMemoryBound(to: Float.self))
    }

    deinit { munmap(base, count) }
}
