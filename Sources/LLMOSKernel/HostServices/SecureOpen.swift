import CLLMOSSystem
import Foundation

/// Opens a canonical path so that what is opened is exactly what was checked.
///
/// A canonical path (see `PathCanonicalizer`) contains no symlink, so its open is made
/// with symlinks forbidden on every component: `openat2(…, RESOLVE_NO_SYMLINKS |
/// RESOLVE_NO_MAGICLINKS)` plus `O_NOFOLLOW`. Any symlink met at open time — one swapped
/// in for a directory or for the file after the check — makes the open fail (`ELOOP`)
/// instead of following it out of the checked tree: `.symlink` is returned and the file
/// services report that the path changed between the check and the open.
///
/// Where `openat2` is missing (`ENOSYS`: Linux before 5.6; also `EPERM`/`EINVAL`/`E2BIG`,
/// which seccomp filters of some container runtimes and older kernels give), the same
/// rule is kept by walking the path one component at a time from `/` (or from the
/// directory descriptor), each intermediate directory opened with `O_PATH | O_DIRECTORY |
/// O_NOFOLLOW` relative to the previous one and the last component with `O_NOFOLLOW`.
/// Magic links are symlinks to `lstat`, so the walk refuses them as well.
///
/// After every successful open the descriptor is `fstat`ed: an `O_PATH | O_NOFOLLOW` open
/// of a symlink succeeds (it returns the link itself), so a symlink found there is
/// refused the same way.
struct SecureOpen: Sendable {
    /// Skip `openat2` and walk components (what runs on kernels without it; for tests).
    var forceComponentWalk = false

    enum Failure: Error, Sendable, Equatable {
        /// A symlink was found where the canonical path had none.
        case symlink
        /// Any other failure, with its errno.
        case system(Int32)
    }

    static let resolveFlags: UInt64 = LLMOS_RESOLVE_NO_SYMLINKS | LLMOS_RESOLVE_NO_MAGICLINKS
    static let oPath: Int32 = llmos_o_path()

    /// Opens `path`: absolute when `directory` is `AT_FDCWD`, else relative to that
    /// descriptor (and then also kept beneath it). `O_NOFOLLOW | O_CLOEXEC` are always added.
    func open(_ path: String, at directory: Int32 = AT_FDCWD, flags: Int32, mode: mode_t = 0) -> Result<Int32, Failure> {
        let flags = flags | O_NOFOLLOW | O_CLOEXEC
        if !forceComponentWalk {
            var resolve = Self.resolveFlags
            if directory != AT_FDCWD { resolve |= LLMOS_RESOLVE_BENEATH }
            let fd = llmos_openat2(directory, path, UInt64(UInt32(bitPattern: flags)), UInt64(mode), resolve)
            if fd >= 0 { return Self.refuseSymlink(fd) }
            let error = errno
            switch error {
            case ENOSYS, EPERM, EINVAL, E2BIG:
                break  // no usable openat2 here: walk (an EPERM/EINVAL of its own recurs there)
            case ELOOP:
                return .failure(.symlink)
            case EEXIST, ENOTDIR:
                // O_EXCL, or O_DIRECTORY with O_NOFOLLOW, on a symlink at the end of the path.
                return .failure(Self.isSymlink(directory, path) ? .symlink : .system(error))
            default:
                return .failure(.system(error))
            }
        }
        return walk(path, at: directory, flags: flags, mode: mode)
    }

    /// The fallback: one component at a time, never following a symlink.
    func walk(_ path: String, at directory: Int32, flags: Int32, mode: mode_t) -> Result<Int32, Failure> {
        // Split on the byte "/" (see PathCanonicalizer.components), never on Characters.
        let parts = PathCanonicalizer.components(path).filter { !PathCanonicalizer.isDot($0) }
        if parts.contains(where: PathCanonicalizer.isDotDot) { return .failure(.system(EINVAL)) }  // canonical paths have none
        if directory == AT_FDCWD && path.utf8.first != PathCanonicalizer.slash { return .failure(.system(EINVAL)) }
        let absolute = directory == AT_FDCWD
        guard let leaf = parts.last else {
            // "/" itself, or the directory descriptor itself.
            let fd = absolute ? openat(AT_FDCWD, "/", flags, mode) : openat(directory, ".", flags, mode)
            return fd >= 0 ? Self.refuseSymlink(fd) : .failure(.system(errno))
        }
        var current = absolute ? openat(AT_FDCWD, "/", Self.oPath | O_DIRECTORY | O_CLOEXEC) : openat(directory, ".", Self.oPath | O_DIRECTORY | O_CLOEXEC)
        if current < 0 { return .failure(.system(errno)) }
        for part in parts.dropLast() {
            let next = openat(current, part, Self.oPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0 {
                let error = errno
                let swapped = (error == ELOOP || error == ENOTDIR) && Self.isSymlink(current, part)
                close(current)
                return .failure(swapped ? .symlink : .system(error))
            }
            close(current)
            current = next
        }
        let fd = openat(current, leaf, flags, mode)
        if fd < 0 {
            let error = errno
            let swapped = (error == ELOOP || error == EEXIST || error == ENOTDIR) && Self.isSymlink(current, leaf)
            close(current)
            return .failure(swapped ? .symlink : .system(error))
        }
        close(current)
        return Self.refuseSymlink(fd)
    }

    /// Whether this kernel answers `openat2` (the walk is used where it does not).
    static var openat2Works: Bool {
        let fd = llmos_openat2(AT_FDCWD, "/", UInt64(UInt32(bitPattern: oPath | O_DIRECTORY | O_CLOEXEC)), 0, resolveFlags)
        if fd >= 0 { close(fd) }
        return fd >= 0
    }

    static func refuseSymlink(_ fd: Int32) -> Result<Int32, Failure> {
        var info = stat()
        if fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK {
            close(fd)
            return .failure(.symlink)
        }
        return .success(fd)
    }

    static func isSymlink(_ directory: Int32, _ path: String) -> Bool {
        var info = stat()
        return fstatat(directory, path, &info, AT_SYMLINK_NOFOLLOW) == 0 && (info.st_mode & S_IFMT) == S_IFLNK
    }
}

/// The system calls the file services make, outside `FileService` so that its methods
/// named `read`, `write` and `stat` do not hide the C functions.
enum FileSyscalls {
    /// A failed system call's errno.
    struct Errno: Error, Sendable {
        var code: Int32
        init(_ code: Int32) { self.code = code }
    }

    static func status(_ fd: Int32) -> stat? {
        var info = stat()
        return fstat(fd, &info) == 0 ? info : nil
    }

    static func status(at directory: Int32, _ name: String) -> stat? {
        var info = stat()
        return fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 ? info : nil
    }

    /// Back to blocking mode (the open used O_NONBLOCK so that a FIFO cannot hang it).
    static func clearNonBlocking(_ fd: Int32) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        return flags >= 0 && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == 0
    }

    /// Reads from `offset` until `limit` bytes or the end of the file.
    static func read(_ fd: Int32, offset: Int64, limit: Int, expected: Int) -> Result<[UInt8], Errno> {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(max(0, min(limit, expected)))
        let chunk = 1 << 16
        var position = offset
        var buffer = [UInt8](repeating: 0, count: chunk)
        while bytes.count < limit {
            let want = min(chunk, limit - bytes.count)
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(position)) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(Errno(errno))
            }
            if count == 0 { break }
            bytes.append(contentsOf: buffer[..<count])
            position += Int64(count)
        }
        return .success(bytes)
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Result<Int, Errno> {
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(Errno(errno))
            }
            written += count
        }
        return .success(written)
    }

    static func truncate(_ fd: Int32) -> Bool { ftruncate(fd, 0) == 0 }

    static func makeDirectory(at directory: Int32, _ name: String) -> Int32? {
        mkdirat(directory, name, 0o755) == 0 || errno == EEXIST ? nil : errno
    }

    /// The entries of an open directory (the descriptor is consumed), without `.` and `..`,
    /// each `lstat`ed relative to the directory; at most `limit`, and whether more remained.
    static func entries(_ fd: Int32, limit: Int) -> Result<(entries: [(name: String, info: stat?)], truncated: Bool), Errno> {
        guard let dir = fdopendir(fd) else {
            let error = errno
            close(fd)
            return .failure(Errno(error))
        }
        defer { closedir(dir) }
        let dfd = dirfd(dir)
        var result: [(name: String, info: stat?)] = []
        var truncated = false
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { return .failure(Errno(errno)) }
                break
            }
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: entry.pointee.d_name)) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            if result.count >= limit {
                truncated = true
                break
            }
            result.append((name, status(at: dfd, name)))
        }
        return .success((result, truncated))
    }

    static func isoDate(seconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))Z"
    }
}
