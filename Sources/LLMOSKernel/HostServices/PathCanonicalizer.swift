import Foundation

/// Turns a path a driver or a model gave into the one canonical absolute path that a
/// capability check is made on: relative paths are taken from the workspace, `~` and
/// `~/…` from the home directory, `.`, `..` and repeated slashes are gone, and **every
/// symlink is resolved**, including procfs "magic links" (`/proc/self/root`,
/// `/proc/self/cwd`, `/proc/self/fd/N`, `/proc/<pid>/exe`, …): a grant check must see
/// what the path really names, never a name that points elsewhere.
///
/// The walk is the one `realpath(3)` makes — `lstat` each component, `readlink` each
/// symlink and restart from its target, `..` taken on the already-resolved (symlink-free)
/// prefix — written out so that it can go on where `realpath` stops: for a path that does
/// not exist yet (fs.write creating a file), the deepest existing ancestor is resolved
/// and the missing components are appended as they are. A `..` among the missing
/// components is refused: nothing exists to take it from, so its meaning at open time
/// would depend on what gets created there.
///
/// Refused with `.invalidArgument`: an empty path, a NUL byte, a path of `PATH_MAX`
/// (4096) bytes or more (as given, after expansion, or while resolving), a component
/// longer than `NAME_MAX` (255), more than 40 symlinks followed (a loop), a magic link
/// that names no path (`/proc/self/fd/N` of a pipe or socket, `/proc/self/ns/net`), and a
/// path through something that is not a directory.
///
/// The result is only a *name*: between this and the open, anything may change on disk.
/// `FileService` therefore opens the canonical path with symlinks forbidden, so that an
/// open either reaches exactly the checked path or fails (see `SecureOpen`).
public struct PathCanonicalizer: Sendable {
    /// The directory relative paths are taken from (made absolute against the process's
    /// current directory if it is not; its own symlinks are resolved like any other).
    public var workspace: String
    /// What `~` expands to.
    public var homeDirectory: String

    /// Longest path accepted, in bytes: `PATH_MAX` counts the terminating NUL.
    public static let maxPathBytes = Int(PATH_MAX) - 1
    /// Longest component accepted, in bytes (`NAME_MAX`).
    public static let maxComponentBytes = Int(NAME_MAX)
    /// Symlinks followed before giving up, as Linux does (`MAXSYMLINKS`).
    public static let maxSymlinks = 40

    /// The canonical form of one path.
    public struct Canonical: Sendable, Hashable, CustomStringConvertible {
        /// Absolute, symlink-free, without `.`/`..` or repeated slashes.
        public var path: String
        /// The deepest ancestor (or the path itself) that existed when resolved: canonical.
        public var existingAncestor: String
        /// The components after `existingAncestor` that did not exist (empty when the path
        /// exists); none is `.` or `..`.
        public var missing: [String]
        /// The path was given with a trailing `/`: it must name a directory.
        public var directoryExpected: Bool

        public var exists: Bool { missing.isEmpty }

        /// The directory holding the last component, and that component (split on bytes;
        /// nil for `/`).
        public var parentAndName: (parent: String, name: String)? {
            var parts = PathCanonicalizer.components(path)
            guard let name = parts.popLast() else { return nil }
            return ("/" + parts.joined(separator: "/"), name)
        }
        public var description: String { path }
    }

    public init(workspace: String, homeDirectory: String? = nil) {
        self.workspace = workspace.isEmpty ? FileManager.default.currentDirectoryPath : workspace
        if self.workspace.utf8.first != Self.slash {
            self.workspace = FileManager.default.currentDirectoryPath + "/" + self.workspace
        }
        self.homeDirectory = homeDirectory ?? FilePath.homeDirectory
    }

    /// Checks the raw path for what is refused before anything touches the disk.
    public static func validate(_ raw: String) throws(LLMOSError) {
        if raw.isEmpty { throw LLMOSError(.invalidArgument, "the path is empty") }
        if raw.utf8.contains(0) {
            throw LLMOSError(.invalidArgument, "the path contains a NUL byte (at byte \(raw.utf8.firstIndex(of: 0).map { raw.utf8.distance(from: raw.utf8.startIndex, to: $0) } ?? 0)); a file name cannot")
        }
        try checkLength(raw, what: "the path")
    }

    static func checkLength(_ path: String, what: String) throws(LLMOSError) {
        let bytes = path.utf8.count
        if bytes > maxPathBytes {
            throw LLMOSError(.invalidArgument, "\(what) is \(bytes) bytes; the limit is \(maxPathBytes) (PATH_MAX)")
        }
    }

    /// The absolute path before symlinks are resolved: `~` expanded, joined to the
    /// workspace, nothing else changed (a lexical `..` here would be wrong: `a/link/..`
    /// is the parent of the link's target, not `a`).
    public func absolute(_ raw: String) -> String {
        var path = raw
        let bytes = Array(raw.utf8)
        if bytes.first == Self.tilde && (bytes.count == 1 || bytes[1] == Self.slash) {
            path = homeDirectory + String(decoding: bytes.dropFirst(), as: UTF8.self)
        }
        if path.utf8.first != Self.slash { path = workspace + "/" + path }
        return path
    }

    /// The canonical path of `raw` (see the type's documentation).
    public func canonicalize(_ raw: String) throws(LLMOSError) -> Canonical {
        try Self.validate(raw)
        let full = absolute(raw)
        try Self.checkLength(full, what: "the path (\"\(Self.abbreviated(raw))\" made absolute)")
        let last = Self.components(raw).last
        let directoryExpected = raw.utf8.last == Self.slash || last.map(Self.isDotOrDotDot) ?? true

        // `pending` holds the components still to walk, last one first; `done` the resolved,
        // existing, symlink-free components so far.
        var pending: [String] = Self.components(full).reversed()
        var done: [String] = []
        var links = 0
        func joined(_ parts: [String]) -> String { "/" + parts.joined(separator: "/") }

        while let part = pending.popLast() {
            if Self.isDot(part) { continue }
            if Self.isDotDot(part) {
                if !done.isEmpty { done.removeLast() }
                continue
            }
            if part.utf8.count > Self.maxComponentBytes {
                throw LLMOSError(.invalidArgument, "a path component is \(part.utf8.count) bytes; the limit is \(Self.maxComponentBytes) (NAME_MAX): \"\(Self.abbreviated(part))\"")
            }
            let candidate = joined(done + [part])
            var info = stat()
            if lstat(candidate, &info) != 0 {
                let error = errno
                switch error {
                case ENOENT:
                    // The rest does not exist: append it as it is.
                    var missing = [part]
                    for rest in pending.reversed() where !Self.isDot(rest) {
                        if Self.isDotDot(rest) {
                            throw LLMOSError(.invalidArgument, "\"\(Self.abbreviated(raw))\": \"..\" after \(candidate), which does not exist, cannot be resolved; give a path without \"..\" below the last existing directory")
                        }
                        if rest.utf8.count > Self.maxComponentBytes {
                            throw LLMOSError(.invalidArgument, "a path component is \(rest.utf8.count) bytes; the limit is \(Self.maxComponentBytes) (NAME_MAX)")
                        }
                        missing.append(rest)
                    }
                    let path = joined(done + missing)
                    try Self.checkLength(path, what: "the resolved path")
                    return Canonical(path: path, existingAncestor: joined(done), missing: missing, directoryExpected: directoryExpected)
                case ENOTDIR:
                    throw LLMOSError(.invalidArgument, "\"\(Self.abbreviated(raw))\": \(joined(done)) is not a directory")
                case EACCES:
                    throw LLMOSError(.permissionDenied, "\"\(Self.abbreviated(raw))\": the host may not search \(joined(done)) (\(Self.describe(error)))")
                case ENAMETOOLONG:
                    throw LLMOSError(.invalidArgument, "\"\(Self.abbreviated(raw))\": the path is too long (\(Self.describe(error)))")
                default:
                    throw LLMOSError(.io, "\"\(Self.abbreviated(raw))\": cannot examine \(candidate): \(Self.describe(error))")
                }
            }
            if (info.st_mode & S_IFMT) == S_IFLNK {
                links += 1
                if links > Self.maxSymlinks {
                    throw LLMOSError(.invalidArgument, "\"\(Self.abbreviated(raw))\": more than \(Self.maxSymlinks) symbolic links to follow (a loop?)")
                }
                let target = try Self.readLink(candidate)
                if target.isEmpty {
                    throw LLMOSError(.invalidArgument, "\"\(Self.abbreviated(raw))\": \(candidate) is a symbolic link with an empty target")
                }
                if target.utf8.first != Self.slash && done.first == "proc" && target.contains(":") {
                    // procfs magic link to an object with no path: "pipe:[123]", "socket:[…]",
                    // "anon_inode:[eventfd]", "net:[4026531840]".
                    throw LLMOSError(.invalidArgument, "\"\(Self.abbreviated(raw))\": \(candidate) is a magic link to \"\(target)\", which is not a file path")
                }
                if target.utf8.first == Self.slash { done.removeAll() }
                let expanded = Self.components(target)
                pending.append(contentsOf: expanded.reversed())
                let remaining = pending.reduce(0) { $0 + $1.utf8.count + 1 } + done.reduce(0) { $0 + $1.utf8.count + 1 }
                if remaining > Self.maxPathBytes {
                    throw LLMOSError(.invalidArgument, "\"\(Self.abbreviated(raw))\": resolving symbolic links makes the path longer than \(Self.maxPathBytes) bytes (PATH_MAX)")
                }
                continue
            }
            if pending.allSatisfy(Self.isDot) {
                // The last component: done.
                done.append(part)
                break
            }
            if (info.st_mode & S_IFMT) != S_IFDIR {
                throw LLMOSError(.invalidArgument, "\"\(Self.abbreviated(raw))\": \(candidate) is not a directory")
            }
            done.append(part)
        }
        let path = joined(done)
        try Self.checkLength(path, what: "the resolved path")
        if directoryExpected {
            var info = stat()
            if stat(path, &info) == 0, (info.st_mode & S_IFMT) != S_IFDIR {
                throw LLMOSError(.invalidArgument, "\"\(Self.abbreviated(raw))\" ends with \"/\" but \(path) is not a directory")
            }
        }
        return Canonical(path: path, existingAncestor: path, missing: [], directoryExpected: directoryExpected)
    }

    static let slash = UInt8(ascii: "/")
    static let tilde = UInt8(ascii: "~")

    /// The components of a path, split on the byte `/` as the kernel does — never on
    /// Swift `Character`s: a `/` can sit inside one grapheme cluster (`"\u{600}/"`,
    /// `"/\u{301}"`), and a walk that missed it would disagree with the kernel about
    /// which component a `..` removes. Comparisons below are on bytes for the same reason.
    static func components(_ path: String) -> [String] {
        path.utf8.split(separator: slash, omittingEmptySubsequences: true).map { String(decoding: $0, as: UTF8.self) }
    }

    static func isDot(_ part: String) -> Bool { part.utf8.isEmpty || part.utf8.elementsEqual(CollectionOfOne(UInt8(ascii: "."))) }
    static func isDotDot(_ part: String) -> Bool { part.utf8.elementsEqual("..".utf8) }
    static func isDotOrDotDot(_ part: String) -> Bool { isDot(part) || isDotDot(part) }

    static func readLink(_ path: String) throws(LLMOSError) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count - 1)
        if count < 0 {
            throw LLMOSError(.io, "cannot read the symbolic link \(path): \(describe(errno))")
        }
        if count >= buffer.count - 1 {
            throw LLMOSError(.invalidArgument, "the symbolic link \(path) has a target longer than PATH_MAX")
        }
        guard let target = String(validating: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) else {
            // Decoding with replacement characters would name another file.
            throw LLMOSError(.invalidArgument, "the symbolic link \(path) has a target that is not valid UTF-8")
        }
        return target
    }

    static func describe(_ error: Int32) -> String { String(cString: strerror(error)) }

    /// A path for a message: long ones are cut in the middle.
    static func abbreviated(_ text: String) -> String {
        let scalars = text.unicodeScalars.map { $0 == "\0" ? "\\0" : String($0) }
        guard scalars.count > 160 else { return scalars.joined() }
        return scalars.prefix(80).joined() + "…(\(text.utf8.count) bytes)…" + scalars.suffix(40).joined()
    }
}
