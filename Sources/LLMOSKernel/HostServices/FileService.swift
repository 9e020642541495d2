import CLLMOSSystem
import Foundation
import LLMOSJSON

/// The host's file services behind the `fs.read`, `fs.write`, `fs.list` and `fs.stat`
/// system calls: every access is checked on the canonical path, and the open reaches
/// exactly that path or fails.
///
/// Each operation is two steps, with nothing the caller controls in between:
///
/// 1. **Check** (`check`): the raw path is made canonical (`PathCanonicalizer`: workspace,
///    `~`, `..`, every symlink and magic link resolved) and the authorizer decides on an
///    `AccessRequest` whose resource is that canonical path. Anything but `allow` is
///    refused with `.permissionDenied`, naming the canonical path and the rule that decided
///    (`fs.read of /etc/shadow denied by default: not granted`). The authorizer is where
///    `ask` is answered; a decision still `ask` when it gets here is a refusal.
/// 2. **Open** (`read(checked:…)`, …): the canonical path is opened with symlinks forbidden
///    on every component (`SecureOpen`: `openat2` with `RESOLVE_NO_SYMLINKS |
///    RESOLVE_NO_MAGICLINKS` and `O_NOFOLLOW`, or a component walk where `openat2` is
///    missing). The canonical path had no symlink, so one met now was swapped in after
///    the check, and the call fails: "…changed between the check and the open (a symlink
///    was swapped in)". Then the descriptor is `fstat`ed and only regular files are read
///    or written: opens use `O_NONBLOCK` (cleared afterwards) so a FIFO cannot hang one,
///    `fs.stat` opens with `O_PATH` (no open side effects at all), `fs.list` with
///    `O_DIRECTORY`; a device, FIFO or socket is refused before a byte is read, so
///    `/dev/zero` cannot fill memory and a FIFO cannot block.
///
/// **Hard links.** A hard link inside a granted directory to a file outside it is the same
/// inode under two names; by path it *is* inside the grant, and no path check can tell.
/// Only the link count shows it. So a regular file with `st_nlink > 1` is refused for
/// `fs.write` (overwrite and append: writing through it would change the outside file),
/// and — by default — for `fs.read` too: on this host the services run as whatever user
/// the kernel runs as (often root here, where `fs.protected_hardlinks` does not apply), and
/// anything with `exec` or a shell tool can `ln /etc/shadow granted/x`. Trees that use hard
/// links on purpose (pnpm stores, rsnapshot backups, `git clone --local`) can be read by
/// setting `allowHardLinkedReads`, a deliberate operator choice. `fs.stat` and `fs.list`
/// report metadata only and do not refuse hard-linked files. Directories always have
/// several links and are not concerned.
///
/// Other documented limits: a directory component renamed (not symlinked) into the
/// checked path after the check is followed — by path it is then inside the grant, like
/// any file moved there by whoever can write the granted tree. `make_parents` creates the
/// directories leading to the checked path (ancestors of a granted path), one at a time
/// with `mkdirat` relative to the directory opened before, never following a symlink.
/// Names listed that are not valid UTF-8 are shown with U+FFFD replacements.
///
/// ## System calls (JSON)
///
/// The kernel wires each with one line (see `fsRead`, `fsWrite`, `fsList`, `fsStat`).
/// Unknown request fields are refused (`invalid_argument`), so that a misspelt option is
/// never silently dropped.
///
/// - `fs.read {path, offset?, length?}` →
///   `{path, size, content, encoding: "utf-8"|"base64", truncated}`.
///   `path` is the canonical path; `size` the file's size in bytes; `content` the bytes
///   from `offset` (default 0), at most `length` (default: to the end), as text when they
///   are valid UTF-8, else base64; `truncated` is true when the file goes on past what was
///   returned. Without `length`, a file with more than `maxReadBytes` (16 MiB) from
///   `offset` is refused (`output_too_large`) rather than cut; `length` above the cap is
///   `invalid_argument`. A range may split a UTF-8 sequence; it then comes back as base64.
/// - `fs.write {path, content, encoding?: "utf-8"|"base64", mode: "create"|"overwrite"|"append",
///   make_parents?: bool}` → `{path, bytes_written}`.
///   `create` makes a new file (mode 0644 less the umask) and refuses one that exists;
///   `overwrite` replaces the contents of an existing file, `append` adds to it; both refuse
///   a missing file (use `create`). `make_parents` (default false) creates missing
///   directories above the file. At most `maxWriteBytes` (16 MiB) of content.
/// - `fs.list {path}` → `{path, entries: [{name, type: "file"|"directory"|"symlink"|"other",
///   size}], truncated}`: sorted by name, symlinks not followed, at most `maxListEntries`.
/// - `fs.stat {path}` → `{path, type, size, mode, modified}`: `mode` the permission bits as
///   an octal string (`"0644"`), `modified` the modification time in ISO 8601 UTC
///   (`"2025-01-31T12:00:00Z"`).
///
/// Errors: `.permissionDenied` (not granted; swapped symlink; hard link; the host's own
/// permissions), `.notFound`, `.invalidArgument` (bad path or request, not a regular file,
/// a file that exists for `create`), `.outputTooLarge` (over the read cap), `.io`.
public struct FileService: Sendable {
    /// The most bytes one fs.read returns (and reads); larger files need `offset`/`length`.
    public var maxReadBytes: Int
    /// The most bytes one fs.write writes.
    public var maxWriteBytes: Int
    /// The most entries one fs.list returns.
    public var maxListEntries: Int
    /// Read regular files that have more than one hard link (see the type's documentation).
    public var allowHardLinkedReads: Bool
    /// What `~` expands to (default `$HOME`).
    public var homeDirectory: String?

    /// Tests: skip openat2 and walk components, as on kernels without it.
    var forceComponentWalk = false
    /// Tests: runs after the check and before the open, with what was checked — where an
    /// attacker racing the service would act.
    var betweenCheckAndOpen: (@Sendable (CheckedPath) -> Void)?

    public static let defaultMaxReadBytes = 16 << 20

    public init(maxReadBytes: Int = FileService.defaultMaxReadBytes, maxWriteBytes: Int = 16 << 20,
                maxListEntries: Int = 10_000, allowHardLinkedReads: Bool = false, homeDirectory: String? = nil) {
        self.maxReadBytes = maxReadBytes
        self.maxWriteBytes = maxWriteBytes
        self.maxListEntries = maxListEntries
        self.allowHardLinkedReads = allowHardLinkedReads
        self.homeDirectory = homeDirectory
    }

    var opener: SecureOpen { SecureOpen(forceComponentWalk: forceComponentWalk) }

    // MARK: Results

    public enum ContentEncoding: String, Sendable, Hashable, CaseIterable {
        case utf8 = "utf-8"
        case base64
    }

    public enum WriteMode: String, Sendable, Hashable, CaseIterable {
        case create, overwrite, append
    }

    public enum EntryType: String, Sendable, Hashable {
        case file, directory, symlink, other

        init(mode: mode_t) {
            switch mode & S_IFMT {
            case S_IFREG: self = .file
            case S_IFDIR: self = .directory
            case S_IFLNK: self = .symlink
            default: self = .other
            }
        }
    }

    public struct ReadResult: Sendable, Hashable {
        public var path: String
        /// The file's size.
        public var size: Int64
        /// The bytes returned, as `encoding` says.
        public var content: String
        public var encoding: ContentEncoding
        /// The file goes on past what was returned.
        public var truncated: Bool
    }

    public struct WriteResult: Sendable, Hashable {
        public var path: String
        public var bytesWritten: Int
    }

    public struct Entry: Sendable, Hashable {
        public var name: String
        public var type: EntryType
        public var size: Int64
    }

    public struct ListResult: Sendable, Hashable {
        public var path: String
        public var entries: [Entry]
        public var truncated: Bool
    }

    public struct StatResult: Sendable, Hashable {
        public var path: String
        public var type: EntryType
        public var size: Int64
        /// Permission bits (with setuid, setgid, sticky).
        public var mode: UInt32
        /// Seconds since the epoch.
        public var modified: Int

        /// `"0644"`.
        public var modeString: String {
            let text = String(mode, radix: 8)
            return String(repeating: "0", count: max(0, 4 - text.count)) + text
        }

        public var modifiedISO8601: String { FileSyscalls.isoDate(seconds: modified) }
    }

    // MARK: Check

    /// What the check step decided on: the canonical path the open step must use.
    public struct CheckedPath: Sendable, Hashable {
        public var kind: CapabilityKind
        /// The path as given.
        public var raw: String
        public var canonical: PathCanonicalizer.Canonical
        public var decision: Decision
        public var path: String { canonical.path }
    }

    /// The request the authorizer decides on: the caller's driver and tool, this kind, and
    /// the canonical resource.
    public static func accessRequest(_ kind: CapabilityKind, canonical: String, driver: String, tool: String?) -> AccessRequest {
        AccessRequest(kind: kind, resource: canonical, driver: driver, tool: tool)
    }

    /// Step 1: canonical path, then the decision on it (refused unless `allow`).
    public func check(_ raw: String, workspace: String, kind: CapabilityKind,
                      authorize: (AccessRequest) -> Decision, driver: String, tool: String?) throws(LLMOSError) -> CheckedPath {
        guard kind == .fsRead || kind == .fsWrite else {
            throw LLMOSError(.invalidArgument, "file services check fs.read or fs.write, not \(kind.rawValue)")
        }
        let canonical = try PathCanonicalizer(workspace: workspace, homeDirectory: homeDirectory).canonicalize(raw)
        let decision = authorize(Self.accessRequest(kind, canonical: canonical.path, driver: driver, tool: tool))
        let via = raw == canonical.path ? "" : " (\"\(PathCanonicalizer.abbreviated(raw))\" resolves to it)"
        switch decision.verdict {
        case .allow:
            return CheckedPath(kind: kind, raw: raw, canonical: canonical, decision: decision)
        case .deny:
            throw LLMOSError(.permissionDenied, "\(kind.rawValue) of \(canonical.path) denied by \(decision.rule)\(via)")
        case .ask:
            throw LLMOSError(.permissionDenied, "\(kind.rawValue) of \(canonical.path) needs confirmation (\(decision.rule)) and none was given\(via)")
        }
    }

    // MARK: Operations

    /// fs.read: the bytes of a regular file, from `offset`, at most `length` (or all, up
    /// to `maxReadBytes`).
    public func read(_ path: String, workspace: String, offset: Int64 = 0, length: Int64? = nil,
                     authorize: (AccessRequest) -> Decision, driver: String, tool: String? = nil) throws(LLMOSError) -> ReadResult {
        let checked = try check(path, workspace: workspace, kind: .fsRead, authorize: authorize, driver: driver, tool: tool)
        betweenCheckAndOpen?(checked)
        return try read(checked: checked, offset: offset, length: length)
    }

    /// fs.write: `content` into a regular file, as `mode` says.
    public func write(_ path: String, workspace: String, content: [UInt8], mode: WriteMode, makeParents: Bool = false,
                      authorize: (AccessRequest) -> Decision, driver: String, tool: String? = nil) throws(LLMOSError) -> WriteResult {
        guard content.count <= maxWriteBytes else {
            throw LLMOSError(.invalidArgument, "fs.write: the content is \(content.count) bytes; the limit is \(maxWriteBytes)")
        }
        let checked = try check(path, workspace: workspace, kind: .fsWrite, authorize: authorize, driver: driver, tool: tool)
        betweenCheckAndOpen?(checked)
        return try write(checked: checked, content: content, mode: mode, makeParents: makeParents)
    }

    /// fs.list: the entries of a directory (checked as `access`: fs.read unless told).
    public func list(_ path: String, workspace: String, access: CapabilityKind = .fsRead,
                     authorize: (AccessRequest) -> Decision, driver: String, tool: String? = nil) throws(LLMOSError) -> ListResult {
        let checked = try check(path, workspace: workspace, kind: access, authorize: authorize, driver: driver, tool: tool)
        betweenCheckAndOpen?(checked)
        return try list(checked: checked)
    }

    /// fs.stat: type, size, mode and modification time (checked as `access`: fs.read unless told).
    public func stat(_ path: String, workspace: String, access: CapabilityKind = .fsRead,
                     authorize: (AccessRequest) -> Decision, driver: String, tool: String? = nil) throws(LLMOSError) -> StatResult {
        let checked = try check(path, workspace: workspace, kind: access, authorize: authorize, driver: driver, tool: tool)
        betweenCheckAndOpen?(checked)
        return try stat(checked: checked)
    }

    // MARK: Step 2: open what was checked

    func read(checked: CheckedPath, offset: Int64, length: Int64?) throws(LLMOSError) -> ReadResult {
        guard offset >= 0 else { throw LLMOSError(.invalidArgument, "fs.read: offset must be 0 or more, not \(offset)") }
        if let length {
            guard length >= 0 else { throw LLMOSError(.invalidArgument, "fs.read: length must be 0 or more, not \(length)") }
            guard length <= Int64(maxReadBytes) else {
                throw LLMOSError(.invalidArgument, "fs.read: length \(length) is over the limit of \(maxReadBytes) bytes per read")
            }
        }
        let fd = try open(checked, flags: O_RDONLY | O_NONBLOCK)
        defer { close(fd) }
        let info = try regularFile(fd, checked)
        if info.st_nlink > 1 && !allowHardLinkedReads {
            throw hardLinked(checked, info)
        }
        guard FileSyscalls.clearNonBlocking(fd) else { throw failure(errno, checked, "set up the read of") }
        let size = Int64(info.st_size)
        let remaining = max(0, size - offset)
        let limit: Int
        if let length {
            limit = Int(length)
        } else {
            guard remaining <= Int64(maxReadBytes) else { throw tooLarge(checked, size: size, offset: offset) }
            limit = maxReadBytes + 1  // one more: a file that grew (or a size-0 procfs file) is caught
        }
        let bytes: [UInt8]
        switch FileSyscalls.read(fd, offset: offset, limit: limit, expected: Int(min(remaining, Int64(limit)))) {
        case .success(let read): bytes = read
        case .failure(let error): throw failure(error.code, checked, "read")
        }
        if length == nil && bytes.count > maxReadBytes { throw tooLarge(checked, size: max(size, offset + Int64(bytes.count)), offset: offset) }
        let end = offset + Int64(bytes.count)
        let (content, encoding) = Self.encode(bytes)
        return ReadResult(path: checked.path, size: max(size, end), content: content, encoding: encoding, truncated: end < size)
    }

    func write(checked: CheckedPath, content: [UInt8], mode: WriteMode, makeParents: Bool) throws(LLMOSError) -> WriteResult {
        let canonical = checked.canonical
        guard !canonical.directoryExpected, let (parent, leaf) = canonical.parentAndName else {
            throw LLMOSError(.invalidArgument, "fs.write of \(canonical.path): the path names a directory; give a file name")
        }
        var directory: Int32
        if canonical.missing.count > 1 {
            // Directories are missing above the file.
            guard makeParents else {
                throw LLMOSError(.notFound, "fs.write of \(canonical.path): the directory \(canonical.existingAncestor == "/" ? "" : canonical.existingAncestor)/\(canonical.missing[0]) does not exist (pass make_parents: true to create it)")
            }
            directory = try open(checked, canonical.existingAncestor, flags: SecureOpen.oPath | O_DIRECTORY)
            for name in canonical.missing.dropLast() {
                if let error = FileSyscalls.makeDirectory(at: directory, name) {
                    close(directory)
                    throw failure(error, checked, "create the directory \(name) for")
                }
                let next: Int32
                do throws(LLMOSError) { next = try open(checked, name, at: directory, flags: SecureOpen.oPath | O_DIRECTORY) } catch {
                    close(directory)
                    throw error
                }
                close(directory)
                directory = next
            }
        } else {
            do throws(LLMOSError) { directory = try open(checked, parent, flags: SecureOpen.oPath | O_DIRECTORY) } catch {
                if error.code == .notFound {
                    throw LLMOSError(.notFound, "fs.write of \(canonical.path): the directory \(parent) does not exist (pass make_parents: true to create it)")
                }
                throw error
            }
        }
        defer { close(directory) }

        let flags: Int32
        switch mode {
        case .create: flags = O_WRONLY | O_CREAT | O_EXCL
        case .overwrite: flags = O_WRONLY | O_NONBLOCK  // truncated only once known to be a lone regular file
        case .append: flags = O_WRONLY | O_APPEND | O_NONBLOCK
        }
        let fd: Int32
        do throws(LLMOSError) { fd = try open(checked, leaf, at: directory, flags: flags, mode: 0o644) } catch {
            if error.code == .notFound && mode != .create {
                throw LLMOSError(.notFound, "fs.write of \(canonical.path): the file does not exist; mode \(mode.rawValue) changes an existing file (use mode create)")
            }
            throw error
        }
        defer { close(fd) }
        let info = try regularFile(fd, checked)
        if info.st_nlink > 1 { throw hardLinked(checked, info) }
        guard FileSyscalls.clearNonBlocking(fd) else { throw failure(errno, checked, "set up the write of") }
        if mode == .overwrite && !FileSyscalls.truncate(fd) { throw failure(errno, checked, "truncate") }
        switch FileSyscalls.writeAll(fd, content) {
        case .success(let count): return WriteResult(path: canonical.path, bytesWritten: count)
        case .failure(let error): throw failure(error.code, checked, "write")
        }
    }

    func list(checked: CheckedPath) throws(LLMOSError) -> ListResult {
        let fd = try open(checked, flags: O_RDONLY | O_DIRECTORY | O_NONBLOCK)
        switch FileSyscalls.entries(fd, limit: maxListEntries) {
        case .failure(let error):
            throw failure(error.code, checked, "list")
        case .success(let (found, truncated)):
            let entries = found.compactMap { name, info -> Entry? in
                guard let info else { return nil }  // removed while listing
                return Entry(name: name, type: EntryType(mode: info.st_mode), size: Int64(info.st_size))
            }.sorted { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
            return ListResult(path: checked.path, entries: entries, truncated: truncated)
        }
    }

    func stat(checked: CheckedPath) throws(LLMOSError) -> StatResult {
        // O_PATH: no open side effects, no blocking on a FIFO, no read permission needed.
        let fd = try open(checked, flags: SecureOpen.oPath)
        defer { close(fd) }
        guard let info = FileSyscalls.status(fd) else { throw failure(errno, checked, "examine") }
        return StatResult(path: checked.path, type: EntryType(mode: info.st_mode), size: Int64(info.st_size),
                          mode: UInt32(info.st_mode & 0o7777), modified: Int(info.st_mtim.tv_sec))
    }

    // MARK: Helpers

    /// Opens `path` (the checked path unless told) with `SecureOpen`, mapping failures.
    func open(_ checked: CheckedPath, _ path: String? = nil, at directory: Int32 = AT_FDCWD, flags: Int32, mode: mode_t = 0) throws(LLMOSError) -> Int32 {
        switch opener.open(path ?? checked.path, at: directory, flags: flags, mode: mode) {
        case .success(let fd): return fd
        case .failure(.symlink): throw swapped(checked)
        case .failure(.system(let error)): throw failure(error, checked, "open")
        }
    }

    func swapped(_ checked: CheckedPath) -> LLMOSError {
        LLMOSError(.permissionDenied, "\(checked.kind.rawValue) of \(checked.path) refused: the path changed between the check and the open (a symlink was swapped in)")
    }

    func hardLinked(_ checked: CheckedPath, _ info: stat) -> LLMOSError {
        let advice = checked.kind == .fsRead
            ? " (an operator who trusts hard links in this tree can allow such reads: allowHardLinkedReads)"
            : ""
        return LLMOSError(.permissionDenied, "\(checked.kind.rawValue) of \(checked.path) refused: the file has \(info.st_nlink) hard links, so the same file may be reachable by a path outside the grants\(advice)")
    }

    func tooLarge(_ checked: CheckedPath, size: Int64, offset: Int64) -> LLMOSError {
        let from = offset > 0 ? " from offset \(offset)" : ""
        return LLMOSError(.outputTooLarge, "fs.read of \(checked.path): the file is \(size) bytes\(from); one read returns at most \(maxReadBytes) (read a range with offset and length)")
    }

    /// The descriptor's status, refusing anything but a regular file.
    func regularFile(_ fd: Int32, _ checked: CheckedPath) throws(LLMOSError) -> stat {
        guard let info = FileSyscalls.status(fd) else { throw failure(errno, checked, "examine") }
        let type = info.st_mode & S_IFMT
        if type == S_IFREG { return info }
        if type == S_IFDIR {
            throw LLMOSError(.invalidArgument, "\(checked.kind.rawValue) of \(checked.path): it is a directory (use fs.list)")
        }
        throw LLMOSError(.invalidArgument, "\(checked.kind.rawValue) of \(checked.path) refused: it is \(Self.typeName(type)), not a regular file; the host reads and writes regular files only")
    }

    static func typeName(_ type: mode_t) -> String {
        switch type {
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFIFO: return "a FIFO"
        case S_IFSOCK: return "a socket"
        case S_IFLNK: return "a symbolic link"
        case S_IFDIR: return "a directory"
        default: return "not a regular file"
        }
    }

    func failure(_ error: Int32, _ checked: CheckedPath, _ doing: String) -> LLMOSError {
        let what = "\(checked.kind.rawValue) of \(checked.path)"
        let reason = PathCanonicalizer.describe(error)
        switch error {
        case ENOENT: return LLMOSError(.notFound, "\(what): no such file or directory")
        case ENOTDIR: return LLMOSError(.invalidArgument, "\(what): not a directory")
        case EISDIR: return LLMOSError(.invalidArgument, "\(what): it is a directory")
        case EEXIST: return LLMOSError(.invalidArgument, "\(what): the file already exists (mode create makes new files only; use overwrite or append)")
        case ENXIO: return LLMOSError(.invalidArgument, "\(what) refused: it is a FIFO or device with no reader, not a regular file")
        case EACCES, EPERM, EROFS: return LLMOSError(.permissionDenied, "\(what): the host cannot \(doing) it (\(reason))")
        case ENAMETOOLONG, ELOOP: return LLMOSError(.invalidArgument, "\(what): \(reason)")
        default: return LLMOSError(.io, "\(what): cannot \(doing) it: \(reason)")
        }
    }

    static func encode(_ bytes: [UInt8]) -> (String, ContentEncoding) {
        if let text = String(validating: bytes, as: UTF8.self) { return (text, .utf8) }
        return (Data(bytes).base64EncodedString(), .base64)
    }
}

// MARK: - System call handlers

extension FileService {
    /// `fs.read {path, offset?, length?}` → `{path, size, content, encoding, truncated}`.
    public static func fsRead(_ request: JSONValue, workspace: String, authorize: (AccessRequest) -> Decision,
                              driver: String, tool: String?, service: FileService = FileService()) throws(LLMOSError) -> JSONValue {
        let fields = try HostRequestFields(request, "fs.read", allowed: ["path", "offset", "length"])
        let result = try service.read(try fields.string("path"), workspace: workspace,
                                      offset: try fields.integer("offset") ?? 0, length: try fields.integer("length"),
                                      authorize: authorize, driver: driver, tool: tool)
        return ["path": .string(result.path), "size": .int(result.size), "content": .string(result.content),
                "encoding": .string(result.encoding.rawValue), "truncated": .bool(result.truncated)]
    }

    /// `fs.write {path, content, encoding?, mode, make_parents?}` → `{path, bytes_written}`.
    public static func fsWrite(_ request: JSONValue, workspace: String, authorize: (AccessRequest) -> Decision,
                               driver: String, tool: String?, service: FileService = FileService()) throws(LLMOSError) -> JSONValue {
        let fields = try HostRequestFields(request, "fs.write", allowed: ["path", "content", "encoding", "mode", "make_parents"])
        let path = try fields.string("path")
        let text = try fields.string("content")
        let encoding = try fields.choice("encoding", ContentEncoding.self) ?? .utf8
        guard let mode = try fields.choice("mode", WriteMode.self) else {
            throw LLMOSError(.invalidArgument, "fs.write: expected a field \"mode\": \"create\", \"overwrite\" or \"append\"")
        }
        let content: [UInt8]
        switch encoding {
        case .utf8: content = Array(text.utf8)
        case .base64:
            guard let data = Data(base64Encoded: text) else {
                throw LLMOSError(.invalidArgument, "fs.write: \"content\" is not valid base64")
            }
            content = [UInt8](data)
        }
        let result = try service.write(path, workspace: workspace, content: content, mode: mode,
                                       makeParents: try fields.bool("make_parents") ?? false,
                                       authorize: authorize, driver: driver, tool: tool)
        return ["path": .string(result.path), "bytes_written": .int(Int64(result.bytesWritten))]
    }

    /// `fs.list {path}` → `{path, entries: [{name, type, size}], truncated}`.
    public static func fsList(_ request: JSONValue, workspace: String, authorize: (AccessRequest) -> Decision,
                              driver: String, tool: String?, service: FileService = FileService()) throws(LLMOSError) -> JSONValue {
        let fields = try HostRequestFields(request, "fs.list", allowed: ["path"])
        let result = try service.list(try fields.string("path"), workspace: workspace, authorize: authorize, driver: driver, tool: tool)
        let entries: [JSONValue] = result.entries.map {
            ["name": .string($0.name), "type": .string($0.type.rawValue), "size": .int($0.size)]
        }
        return ["path": .string(result.path), "entries": .array(entries), "truncated": .bool(result.truncated)]
    }

    /// `fs.stat {path}` → `{path, type, size, mode, modified}`.
    public static func fsStat(_ request: JSONValue, workspace: String, authorize: (AccessRequest) -> Decision,
                              driver: String, tool: String?, service: FileService = FileService()) throws(LLMOSError) -> JSONValue {
        let fields = try HostRequestFields(request, "fs.stat", allowed: ["path"])
        let result = try service.stat(try fields.string("path"), workspace: workspace, authorize: authorize, driver: driver, tool: tool)
        return ["path": .string(result.path), "type": .string(result.type.rawValue), "size": .int(result.size),
                "mode": .string(result.modeString), "modified": .string(result.modifiedISO8601)]
    }
}

/// The fields of a system call's request object, with messages naming the service.
struct HostRequestFields {
    let object: JSONObject
    let service: String

    init(_ request: JSONValue, _ service: String, allowed: [String]) throws(LLMOSError) {
        guard let object = request.objectValue else {
            throw LLMOSError(.invalidArgument, "\(service): the request must be a JSON object, not \(request.typeName)")
        }
        for key in object.keys where !allowed.contains(key) {
            throw LLMOSError(.invalidArgument, "\(service): unknown field \"\(key)\"" + NearestNames.suggestion(for: key, in: allowed) + " (it takes \(allowed.joined(separator: ", ")))")
        }
        self.object = object
        self.service = service
    }

    func string(_ key: String) throws(LLMOSError) -> String {
        guard let value = object[key] else { throw LLMOSError(.invalidArgument, "\(service): expected a string field \"\(key)\"") }
        guard let text = value.stringValue else {
            throw LLMOSError(.invalidArgument, "\(service): \"\(key)\" must be a string, not \(value.typeName)")
        }
        return text
    }

    func integer(_ key: String) throws(LLMOSError) -> Int64? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let number = value.int64Value else {
            throw LLMOSError(.invalidArgument, "\(service): \"\(key)\" must be an integer, not \(value.typeName == "number" ? "\(value)" : value.typeName)")
        }
        return number
    }

    func bool(_ key: String) throws(LLMOSError) -> Bool? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let flag = value.boolValue else {
            throw LLMOSError(.invalidArgument, "\(service): \"\(key)\" must be true or false, not \(value.typeName)")
        }
        return flag
    }

    func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ type: T.Type) throws(LLMOSError) -> T? where T.RawValue == String {
        guard let value = object[key], !value.isNull else { return nil }
        let names = T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        guard let text = value.stringValue, let choice = T(rawValue: text) else {
            throw LLMOSError(.invalidArgument, "\(service): \"\(key)\" must be one of \(names), not \(value)")
        }
        return choice
    }
}

// MARK: - fs.move, fs.delete, fs.mkdir

/// Moving and deleting act on a *name*, not on what it points to: `rename` and `unlink`
/// never follow the last component. So their check is made on the canonical parent
/// directory joined with the last component as given (`checkEntry`): deleting a symlink
/// inside the workspace removes the link, checked where the link is, and never touches
/// its target. The parent is then opened with `SecureOpen` (symlinks forbidden) and the
/// operation made relative to that descriptor, so it reaches exactly the checked entry.
///
/// A directory moved or deleted as a whole carries everything beneath it, and a policy
/// may deny part of that tree (`deny fs.write=${workspace}/keep/**`). So every entry
/// beneath is checked first, one by one, and nothing is changed unless all are allowed;
/// at most `maxTreeEntries` entries, beyond which the operation is refused before
/// anything changes. A recursive delete then removes exactly the entries it checked,
/// walking with `O_NOFOLLOW` descriptors: an entry that appeared meanwhile makes its
/// directory non-empty and the delete stops there (reported, not followed); a directory
/// swapped for a symlink meanwhile is refused, never followed out of the tree.
///
/// - `fs.move {path, to, overwrite?: bool}` → `{path, to}`: needs `fs.read` and `fs.write`
///   on the source (a move makes a file readable under another name) and `fs.write` on
///   the destination; for a directory, on every entry beneath too. Without `overwrite`
///   an existing destination is refused (atomically: `renameat2(RENAME_NOREPLACE)`);
///   the destination's directory must exist (use `fs.mkdir`). Across file systems:
///   refused (copy, then delete).
/// - `fs.delete {path, recursive?: bool}` → `{path, type, deleted}`: needs `fs.write`.
///   A file, symlink or empty directory; a non-empty directory only with `recursive`,
///   and then only up to `maxTreeEntries` entries. `deleted` counts the entries removed.
/// - `fs.mkdir {path, parents?: bool}` → `{path, created}`: needs `fs.write`;
///   `created` is false when the directory was already there.
extension FileService {
    /// The most entries a directory moved or deleted as a whole may hold (each is checked).
    public static let defaultMaxTreeEntries = 10_000

    /// An entry checked by name: the canonical parent, the last component as given.
    public struct CheckedEntry: Sendable, Hashable {
        /// The canonical parent directory (it exists).
        public var parent: String
        /// The last component, not followed.
        public var name: String
        /// `parent/name`: what the decision was made on.
        public var path: String { parent == "/" ? "/" + name : parent + "/" + name }
    }

    /// Decides `kind` on `resource`, throwing unless allowed (the messages of `check`).
    func require(_ kind: CapabilityKind, _ resource: String, raw: String?, authorize: (AccessRequest) -> Decision,
                 driver: String, tool: String?) throws(LLMOSError) {
        let decision = authorize(Self.accessRequest(kind, canonical: resource, driver: driver, tool: tool))
        let via = raw.map { $0 == resource ? "" : " (\"\(PathCanonicalizer.abbreviated($0))\" resolves to it)" } ?? ""
        switch decision.verdict {
        case .allow: return
        case .deny: throw LLMOSError(.permissionDenied, "\(kind.rawValue) of \(resource) denied by \(decision.rule)\(via)")
        case .ask: throw LLMOSError(.permissionDenied, "\(kind.rawValue) of \(resource) needs confirmation (\(decision.rule)) and none was given\(via)")
        }
    }

    /// The entry `raw` names, by name: its parent made canonical (it must exist), its last
    /// component kept (never `.` or `..`), then `kinds` decided on `parent/name`.
    public func checkEntry(_ raw: String, workspace: String, kinds: [CapabilityKind], service: String,
                           authorize: (AccessRequest) -> Decision, driver: String, tool: String?) throws(LLMOSError) -> CheckedEntry {
        try PathCanonicalizer.validate(raw)
        let canonicalizer = PathCanonicalizer(workspace: workspace, homeDirectory: homeDirectory)
        var parts = PathCanonicalizer.components(canonicalizer.absolute(raw))
        guard let name = parts.popLast() else {
            throw LLMOSError(.invalidArgument, "\(service): \"\(PathCanonicalizer.abbreviated(raw))\" names the root directory; give the path of a file or directory below it")
        }
        guard !PathCanonicalizer.isDotOrDotDot(name) else {
            throw LLMOSError(.invalidArgument, "\(service): \"\(PathCanonicalizer.abbreviated(raw))\" ends with \"\(name)\"; name the entry itself (for example dir/sub, not dir/sub/.)")
        }
        guard name.utf8.count <= PathCanonicalizer.maxComponentBytes else {
            throw LLMOSError(.invalidArgument, "\(service): the name is \(name.utf8.count) bytes; the limit is \(PathCanonicalizer.maxComponentBytes) (NAME_MAX)")
        }
        let parent = try canonicalizer.canonicalize("/" + parts.joined(separator: "/"))
        let entry = CheckedEntry(parent: parent.path, name: name)
        guard parent.exists else {
            for kind in kinds { try require(kind, entry.path, raw: nil, authorize: authorize, driver: driver, tool: tool) }
            throw LLMOSError(.notFound, "\(service) of \(entry.path): the directory \(parent.existingAncestor == "/" ? "" : parent.existingAncestor)/\(parent.missing[0]) does not exist")
        }
        for kind in kinds { try require(kind, entry.path, raw: raw, authorize: authorize, driver: driver, tool: tool) }
        return entry
    }

    /// Opens the checked entry's parent directory (`O_PATH`, no symlinks on the way).
    func openParent(_ entry: CheckedEntry, _ service: String) throws(LLMOSError) -> Int32 {
        if let betweenCheckAndOpen {
            // Tests: the racing attacker acts here, as for the other services.
            let canonical = PathCanonicalizer.Canonical(path: entry.path, existingAncestor: entry.parent, missing: [entry.name], directoryExpected: false)
            betweenCheckAndOpen(CheckedPath(kind: .fsWrite, raw: entry.path, canonical: canonical, decision: Decision(verdict: .allow, rule: "")))
        }
        switch opener.open(entry.parent, flags: SecureOpen.oPath | O_DIRECTORY) {
        case .success(let fd): return fd
        case .failure(.symlink):
            throw LLMOSError(.permissionDenied, "\(service) of \(entry.path) refused: the path changed between the check and the operation (a symlink was swapped in)")
        case .failure(.system(let error)): throw failure(error, what: "\(service) of \(entry.path)", "open the directory of")
        }
    }

    /// One entry under a directory being moved or deleted whole, as it was checked.
    struct TreeNode {
        var name: String
        var isDirectory: Bool
        var children: [TreeNode]
    }

    /// Every entry beneath the directory `name` in `directory`, each checked by `check`
    /// (with its path) before it counts; refused past `limit` entries in all.
    func collectTree(at directory: Int32, _ name: String, path: String, service: String, count: inout Int, limit: Int,
                     check: (String) throws(LLMOSError) -> Void) throws(LLMOSError) -> [TreeNode] {
        let fd = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw failure(errno, what: "\(service) of \(path)", "open the directory") }
        let listing: [(name: String, info: stat?)]
        switch FileSyscalls.entries(fd, limit: limit - count + 1) {
        case .failure(let error): throw failure(error.code, what: "\(service) of \(path)", "list")
        case .success(let (found, truncated)):
            if truncated || count + found.count > limit { throw treeTooLarge(path, service, limit) }
            listing = found
        }
        // A second descriptor for the walk down: `entries` consumed the first.
        let walk = openat(directory, name, SecureOpen.oPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard walk >= 0 else { throw failure(errno, what: "\(service) of \(path)", "open the directory") }
        defer { close(walk) }
        var nodes: [TreeNode] = []
        for (child, info) in listing {
            guard let info else { continue }  // removed while listing
            let childPath = path + "/" + child
            count += 1
            if count > limit { throw treeTooLarge(path, service, limit) }
            try check(childPath)
            let isDirectory = (info.st_mode & S_IFMT) == S_IFDIR
            let children = isDirectory
                ? try collectTree(at: walk, child, path: childPath, service: service, count: &count, limit: limit, check: check)
                : []
            nodes.append(TreeNode(name: child, isDirectory: isDirectory, children: children))
        }
        return nodes
    }

    func treeTooLarge(_ path: String, _ service: String, _ limit: Int) -> LLMOSError {
        LLMOSError(.resourceExhausted, "\(service) of \(path): the tree holds more than \(limit) entries, the most one \(service) changes (maxTreeEntries); work on its sub-directories one at a time")
    }

    /// Removes what `collectTree` found beneath `directory/name`, then the directory;
    /// counts into `deleted`. Stops at the first failure.
    func removeTree(at directory: Int32, _ name: String, _ children: [TreeNode], path: String, deleted: inout Int) throws(LLMOSError) {
        let fd = openat(directory, name, SecureOpen.oPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ELOOP || errno == ENOTDIR {
                throw LLMOSError(.permissionDenied, "fs.delete of \(path) stopped after \(deleted) entries: it is no longer a directory (a symlink was swapped in?); nothing beneath it was followed")
            }
            throw failure(errno, what: "fs.delete of \(path)", "open the directory")
        }
        defer { close(fd) }
        for child in children {
            let childPath = path + "/" + child.name
            if child.isDirectory {
                try removeTree(at: fd, child.name, child.children, path: childPath, deleted: &deleted)
            } else if unlinkat(fd, child.name, 0) != 0 {
                let error = errno
                if error == ENOENT { continue }  // already gone
                throw failure(error, what: "fs.delete of \(childPath) (after \(deleted) entries were deleted)", "delete")
            }
            deleted += 1
        }
        if unlinkat(directory, name, AT_REMOVEDIR) != 0 {
            let error = errno
            if error == ENOTEMPTY || error == EEXIST {
                throw LLMOSError(.unavailable, "fs.delete of \(path) stopped after \(deleted) entries: entries appeared in it after the check, and those are not deleted unchecked; call fs.delete again")
            }
            throw failure(error, what: "fs.delete of \(path) (after \(deleted) entries were deleted)", "delete")
        }
    }

    public struct DeleteResult: Sendable, Hashable {
        public var path: String
        public var type: EntryType
        /// Entries removed, the path itself included.
        public var deleted: Int
    }

    /// fs.delete: a file, symlink or empty directory; a directory tree with `recursive`.
    public func delete(_ raw: String, workspace: String, recursive: Bool = false, maxTreeEntries: Int = FileService.defaultMaxTreeEntries,
                       authorize: (AccessRequest) -> Decision, driver: String, tool: String? = nil) throws(LLMOSError) -> DeleteResult {
        let entry = try checkEntry(raw, workspace: workspace, kinds: [.fsWrite], service: "fs.delete", authorize: authorize, driver: driver, tool: tool)
        let parent = try openParent(entry, "fs.delete")
        defer { close(parent) }
        guard let info = FileSyscalls.status(at: parent, entry.name) else {
            throw failure(errno, what: "fs.delete of \(entry.path)", "examine")
        }
        let type = EntryType(mode: info.st_mode)
        guard type == .directory else {
            guard unlinkat(parent, entry.name, 0) == 0 else { throw failure(errno, what: "fs.delete of \(entry.path)", "delete") }
            return DeleteResult(path: entry.path, type: type, deleted: 1)
        }
        if unlinkat(parent, entry.name, AT_REMOVEDIR) == 0 {
            return DeleteResult(path: entry.path, type: type, deleted: 1)
        }
        let error = errno
        guard error == ENOTEMPTY || error == EEXIST else { throw failure(error, what: "fs.delete of \(entry.path)", "delete") }
        guard recursive else {
            throw LLMOSError(.invalidArgument, "fs.delete of \(entry.path): the directory is not empty; pass recursive: true to delete it and everything in it (at most \(maxTreeEntries) entries)")
        }
        var count = 0
        let tree = try collectTree(at: parent, entry.name, path: entry.path, service: "fs.delete", count: &count, limit: maxTreeEntries) { path throws(LLMOSError) in
            try require(.fsWrite, path, raw: nil, authorize: authorize, driver: driver, tool: tool)
        }
        var deleted = 0
        try removeTree(at: parent, entry.name, tree, path: entry.path, deleted: &deleted)
        return DeleteResult(path: entry.path, type: type, deleted: deleted + 1)
    }

    public struct MoveResult: Sendable, Hashable {
        public var path: String
        public var to: String
        public var type: EntryType
    }

    /// fs.move: renames an entry (a file, symlink or directory) within one file system.
    public func move(_ raw: String, to rawDestination: String, workspace: String, overwrite: Bool = false,
                     maxTreeEntries: Int = FileService.defaultMaxTreeEntries,
                     authorize: (AccessRequest) -> Decision, driver: String, tool: String? = nil) throws(LLMOSError) -> MoveResult {
        let source = try checkEntry(raw, workspace: workspace, kinds: [.fsRead, .fsWrite], service: "fs.move", authorize: authorize, driver: driver, tool: tool)
        let destination = try checkEntry(rawDestination, workspace: workspace, kinds: [.fsWrite], service: "fs.move", authorize: authorize, driver: driver, tool: tool)
        if source.path.utf8.elementsEqual(destination.path.utf8) {
            throw LLMOSError(.invalidArgument, "fs.move: the source and the destination are both \(source.path)")
        }
        let from = try openParent(source, "fs.move")
        defer { close(from) }
        let into = try openParent(destination, "fs.move")
        defer { close(into) }
        guard let info = FileSyscalls.status(at: from, source.name) else {
            throw failure(errno, what: "fs.move of \(source.path)", "examine")
        }
        let type = EntryType(mode: info.st_mode)
        if type == .directory {
            // Everything beneath moves too: each entry must be readable and writable here,
            // and writable where it lands.
            var count = 0
            _ = try collectTree(at: from, source.name, path: source.path, service: "fs.move", count: &count, limit: maxTreeEntries) { path throws(LLMOSError) in
                try require(.fsRead, path, raw: nil, authorize: authorize, driver: driver, tool: tool)
                try require(.fsWrite, path, raw: nil, authorize: authorize, driver: driver, tool: tool)
                let landing = destination.path + String(decoding: path.utf8.dropFirst(source.path.utf8.count), as: UTF8.self)
                try require(.fsWrite, landing, raw: nil, authorize: authorize, driver: driver, tool: tool)
            }
        }
        let result = FileSyscalls.rename(from, source.name, into, destination.name, replace: overwrite)
        guard result == 0 else {
            let what = "fs.move of \(source.path) to \(destination.path)"
            switch result {
            case EEXIST, ENOTEMPTY:
                throw LLMOSError(.invalidArgument, "\(what): the destination exists" + (overwrite ? " and is a non-empty directory" : "; pass overwrite: true to replace it"))
            case EXDEV:
                throw LLMOSError(.unsupported, "\(what): they are on different file systems; copy it with fs.read and fs.write, then delete the source")
            case EINVAL:
                throw LLMOSError(.invalidArgument, "\(what): a directory cannot be moved into itself")
            default:
                throw failure(result, what: what, "move")
            }
        }
        return MoveResult(path: source.path, to: destination.path, type: type)
    }

    public struct MakeDirectoryResult: Sendable, Hashable {
        public var path: String
        public var created: Bool
    }

    /// fs.mkdir: creates a directory (and, with `parents`, the missing ones above it).
    public func makeDirectory(_ raw: String, workspace: String, parents: Bool = false,
                              authorize: (AccessRequest) -> Decision, driver: String, tool: String? = nil) throws(LLMOSError) -> MakeDirectoryResult {
        let checked = try check(raw, workspace: workspace, kind: .fsWrite, authorize: authorize, driver: driver, tool: tool)
        betweenCheckAndOpen?(checked)
        let canonical = checked.canonical
        if canonical.exists {
            let fd = try open(checked, flags: SecureOpen.oPath)
            defer { close(fd) }
            guard let info = FileSyscalls.status(fd) else { throw failure(errno, checked, "examine") }
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                throw LLMOSError(.invalidArgument, "fs.mkdir of \(canonical.path): it exists and is \(Self.typeName(info.st_mode & S_IFMT)), not a directory")
            }
            return MakeDirectoryResult(path: canonical.path, created: false)
        }
        if canonical.missing.count > 1 && !parents {
            throw LLMOSError(.notFound, "fs.mkdir of \(canonical.path): the directory \(canonical.existingAncestor == "/" ? "" : canonical.existingAncestor)/\(canonical.missing[0]) does not exist (pass parents: true to create it too)")
        }
        var directory = try open(checked, canonical.existingAncestor, flags: SecureOpen.oPath | O_DIRECTORY)
        defer { close(directory) }
        for name in canonical.missing {
            if let error = FileSyscalls.makeDirectory(at: directory, name) {
                throw failure(error, checked, "create the directory \(name) for")
            }
            let next = try open(checked, name, at: directory, flags: SecureOpen.oPath | O_DIRECTORY)
            close(directory)
            directory = next
        }
        return MakeDirectoryResult(path: canonical.path, created: true)
    }

    /// `failure(_:_:_:)` for what is not a `CheckedPath`: `what` is "fs.delete of /x".
    func failure(_ error: Int32, what: String, _ doing: String) -> LLMOSError {
        let reason = PathCanonicalizer.describe(error)
        switch error {
        case ENOENT: return LLMOSError(.notFound, "\(what): no such file or directory")
        case ENOTDIR: return LLMOSError(.invalidArgument, "\(what): not a directory")
        case EISDIR: return LLMOSError(.invalidArgument, "\(what): it is a directory")
        case ELOOP: return LLMOSError(.permissionDenied, "\(what) refused: a symlink was swapped in after the check")
        case EACCES, EPERM, EROFS, EBUSY: return LLMOSError(.permissionDenied, "\(what): the host cannot \(doing) it (\(reason))")
        case ENAMETOOLONG: return LLMOSError(.invalidArgument, "\(what): \(reason)")
        default: return LLMOSError(.io, "\(what): cannot \(doing) it: \(reason)")
        }
    }
}

extension FileSyscalls {
    typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>?, Int32, UnsafePointer<CChar>?, UInt32) -> Int32

    /// glibc's renameat2 (2.28+), looked up at run time: Swift's Glibc module does not
    /// declare it (it needs _GNU_SOURCE).
    nonisolated(unsafe) static let renameat2: RenameAt2? = {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "renameat2") else { return nil }
        return unsafeBitCast(symbol, to: RenameAt2.self)
    }()

    static let renameNoReplace: UInt32 = 1  // RENAME_NOREPLACE

    /// Renames `from/fromName` to `into/intoName`; 0 or an errno. Without `replace` an
    /// existing destination is EEXIST, decided atomically by the kernel where it can
    /// (renameat2); where it cannot, by a check just before (a documented race).
    static func rename(_ from: Int32, _ fromName: String, _ into: Int32, _ intoName: String, replace: Bool) -> Int32 {
        if replace { return renameat(from, fromName, into, intoName) == 0 ? 0 : errno }
        if let renameat2 {
            if renameat2(from, fromName, into, intoName, renameNoReplace) == 0 { return 0 }
            let error = errno
            guard error == ENOSYS || error == EINVAL else { return error }
            // EINVAL: this file system has no RENAME_NOREPLACE (or the move is into
            // itself, which renameat refuses the same way): fall back to check-then-rename.
        }
        if status(at: into, intoName) != nil { return EEXIST }
        return renameat(from, fromName, into, intoName) == 0 ? 0 : errno
    }
}

extension FileService {
    /// `fs.move {path, to, overwrite?}` → `{path, to, type}`.
    public static func fsMove(_ request: JSONValue, workspace: String, authorize: (AccessRequest) -> Decision,
                              driver: String, tool: String?, service: FileService = FileService()) throws(LLMOSError) -> JSONValue {
        let fields = try HostRequestFields(request, "fs.move", allowed: ["path", "to", "overwrite"])
        let result = try service.move(try fields.string("path"), to: try fields.string("to"), workspace: workspace,
                                      overwrite: try fields.bool("overwrite") ?? false,
                                      authorize: authorize, driver: driver, tool: tool)
        return ["path": .string(result.path), "to": .string(result.to), "type": .string(result.type.rawValue)]
    }

    /// `fs.delete {path, recursive?}` → `{path, type, deleted}`.
    public static func fsDelete(_ request: JSONValue, workspace: String, authorize: (AccessRequest) -> Decision,
                                driver: String, tool: String?, service: FileService = FileService()) throws(LLMOSError) -> JSONValue {
        let fields = try HostRequestFields(request, "fs.delete", allowed: ["path", "recursive"])
        let result = try service.delete(try fields.string("path"), workspace: workspace, recursive: try fields.bool("recursive") ?? false,
                                        authorize: authorize, driver: driver, tool: tool)
        return ["path": .string(result.path), "type": .string(result.type.rawValue), "deleted": .int(Int64(result.deleted))]
    }

    /// `fs.mkdir {path, parents?}` → `{path, created}`.
    public static func fsMkdir(_ request: JSONValue, workspace: String, authorize: (AccessRequest) -> Decision,
                               driver: String, tool: String?, service: FileService = FileService()) throws(LLMOSError) -> JSONValue {
        let fields = try HostRequestFields(request, "fs.mkdir", allowed: ["path", "parents"])
        let result = try service.makeDirectory(try fields.string("path"), workspace: workspace, parents: try fields.bool("parents") ?? false,
                                               authorize: authorize, driver: driver, tool: tool)
        return ["path": .string(result.path), "created": .bool(result.created)]
    }
}
