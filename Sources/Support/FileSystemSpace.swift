import Foundation

/// Whether the file system holding `path` (or its directory) has less than `margin` bytes left —
/// asked right after a write failed, since neither GDAL nor a short write reports ENOSPC itself.
public func fileSystemIsFull(at path: String, margin: Int64 = 1 << 20) -> Bool {
    var info = statvfs()
    let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
    guard statvfs(directory, &info) == 0 else { return false }
    return Int64(info.f_bavail) * Int64(info.f_frsize) < margin
}
