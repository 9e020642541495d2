// The fs driver: files in the workspace, for a model.
//
// It never touches the file system itself: every operation is a host system call
// (fs.read, fs.write, fs.list, fs.stat, fs.move, fs.delete, fs.mkdir), so the kernel
// makes each path canonical, checks it against the manifest's request and the
// operator's policy, audits it, and opens exactly what it checked. Relative paths are
// taken from the workspace by the kernel. Stateless: the manifest says `concurrent`.
import Glibc
import LLMOSDriverSDK

struct FSDriver: LLMOSToolDriver {
    static let name = "fs"
    static let version = "1.0.0"

    init(context: DriverContext) throws {}

    static func register(_ tools: inout Router) {
        tools.add("read", Self.read)
        tools.add("write", Self.write)
        tools.add("append", Self.append)
        tools.add("list", Self.list)
        tools.add("stat", Self.stat)
        tools.add("search", Self.search)
        tools.add("move", Self.move)
        tools.add("delete", Self.delete)
        tools.add("mkdir", Self.mkdir)
    }

    // MARK: System call shapes (docs/SYSCALLS.md)

    struct PathRequest: Encodable { var path: String }

    struct ReadRequest: Encodable {
        var path: String
        var offset: Int64?
        var length: Int64?
    }

    struct ReadResponse: Codable {
        var path: String
        var size: Int64
        var content: String
        var encoding: String
        var truncated: Bool
    }

    struct WriteRequest: Encodable {
        var path: String
        var content: String
        var encoding: String?
        var mode: String
        var makeParents: Bool?
        enum CodingKeys: String, CodingKey { case path, content, encoding, mode, makeParents = "make_parents" }
    }

    struct WriteResponse: Decodable {
        var path: String
        var bytesWritten: Int64
        enum CodingKeys: String, CodingKey { case path, bytesWritten = "bytes_written" }
    }

    struct Entry: Codable {
        var name: String
        var type: String
        var size: Int64
    }

    struct ListResponse: Codable {
        var path: String
        var entries: [Entry]
        var truncated: Bool
    }

    struct StatResponse: Codable {
        var path: String
        var type: String
        var size: Int64
        var mode: String
        var modified: String
    }

    // MARK: read

    /// What one read returns when no length is given (the output limit is 4 MiB, and
    /// base64 grows bytes by a third).
    static let defaultReadLength: Int64 = 1 << 20

    struct ReadInput: Decodable {
        var path: String
        var offset: Int64?
        var length: Int64?
    }

    func read(_ input: ReadInput, _ call: CallContext) throws -> ReadResponse {
        try call.syscall("fs.read", ReadRequest(path: input.path, offset: input.offset, length: input.length ?? Self.defaultReadLength),
                         as: ReadResponse.self)
    }

    // MARK: write, append

    struct WriteInput: Decodable {
        var path: String
        var content: String
        var encoding: String?
        var ifExists: String?
        var makeParents: Bool?
        enum CodingKeys: String, CodingKey {
            case path, content, encoding, ifExists = "if_exists", makeParents = "make_parents"
        }
    }

    struct WriteOutput: Encodable {
        var path: String
        var bytesWritten: Int64
        var created: Bool
        enum CodingKeys: String, CodingKey { case path, bytesWritten = "bytes_written", created }
    }

    func write(_ input: WriteInput, _ call: CallContext) throws -> WriteOutput {
        func request(_ mode: String) -> WriteRequest {
            WriteRequest(path: input.path, content: input.content, encoding: input.encoding, mode: mode, makeParents: input.makeParents)
        }
        if input.ifExists == "fail" {
            let written = try call.syscall("fs.write", request("create"), as: WriteResponse.self)
            return WriteOutput(path: written.path, bytesWritten: written.bytesWritten, created: true)
        }
        // Create first (the common case for a new file); a file already there is replaced.
        switch Result(catching: { () throws(DriverError) in try call.syscall("fs.write", request("create"), as: WriteResponse.self) }) {
        case .success(let written):
            return WriteOutput(path: written.path, bytesWritten: written.bytesWritten, created: true)
        case .failure(let error):
            guard error.code == .invalidArgument,
                  let existing = try? call.syscall("fs.stat", PathRequest(path: input.path), as: StatResponse.self),
                  existing.type == "file" else { throw error }
            let written = try call.syscall("fs.write", request("overwrite"), as: WriteResponse.self)
            return WriteOutput(path: written.path, bytesWritten: written.bytesWritten, created: false)
        }
    }

    struct AppendInput: Decodable {
        var path: String
        var content: String
        var encoding: String?
        var create: Bool?
    }

    func append(_ input: AppendInput, _ call: CallContext) throws -> WriteOutput {
        var request = WriteRequest(path: input.path, content: input.content, encoding: input.encoding, mode: "append", makeParents: nil)
        var created = false
        let written: WriteResponse
        switch Result(catching: { () throws(DriverError) in try call.syscall("fs.write", request, as: WriteResponse.self) }) {
        case .success(let response):
            written = response
        case .failure(let error):
            // A missing file is created (unless told not to); a missing directory is the
            // create's own error, which says so.
            guard error.code == .notFound, input.create ?? true else { throw error }
            request.mode = "create"
            written = try call.syscall("fs.write", request, as: WriteResponse.self)
            created = true
        }
        return WriteOutput(path: written.path, bytesWritten: written.bytesWritten, created: created)
    }

    // MARK: list, stat

    struct ListInput: Decodable { var path: String? }

    func list(_ input: ListInput, _ call: CallContext) throws -> ListResponse {
        try call.syscall("fs.list", PathRequest(path: input.path ?? "."), as: ListResponse.self)
    }

    struct StatInput: Decodable { var path: String }

    func stat(_ input: StatInput, _ call: CallContext) throws -> StatResponse {
        try call.syscall("fs.stat", PathRequest(path: input.path), as: StatResponse.self)
    }

    // MARK: move, delete, mkdir

    struct MoveInput: Codable {
        var path: String
        var to: String
        var overwrite: Bool?
    }

    struct MoveOutput: Codable {
        var path: String
        var to: String
        var type: String
    }

    func move(_ input: MoveInput, _ call: CallContext) throws -> MoveOutput {
        try call.syscall("fs.move", input, as: MoveOutput.self)
    }

    struct DeleteInput: Codable {
        var path: String
        var recursive: Bool?
    }

    struct DeleteOutput: Codable {
        var path: String
        var type: String
        var deleted: Int
    }

    func delete(_ input: DeleteInput, _ call: CallContext) throws -> DeleteOutput {
        try call.syscall("fs.delete", input, as: DeleteOutput.self)
    }

    struct MkdirInput: Codable {
        var path: String
        var parents: Bool?
    }

    struct MkdirOutput: Codable {
        var path: String
        var created: Bool
    }

    func mkdir(_ input: MkdirInput, _ call: CallContext) throws -> MkdirOutput {
        try call.syscall("fs.mkdir", input, as: MkdirOutput.self)
    }

    // MARK: search

    struct SearchInput: Decodable {
        var path: String?
        var glob: String?
        var content: String?
        var regex: Bool?
        var ignoreCase: Bool?
        var hidden: Bool?
        var maxResults: Int?
        var maxFiles: Int?
        var maxBytes: Int?
        var maxFileBytes: Int?
        enum CodingKeys: String, CodingKey {
            case path, glob, content, regex, hidden
            case ignoreCase = "ignore_case", maxResults = "max_results", maxFiles = "max_files"
            case maxBytes = "max_bytes", maxFileBytes = "max_file_bytes"
        }
    }

    struct SearchMatch: Encodable {
        var path: String
        var type: String
        var size: Int64
        var line: Int?
        var text: String?
    }

    struct SearchOutput: Encodable {
        var matches: [SearchMatch]
        var filesVisited: Int
        var bytesRead: Int
        var skipped: Int
        /// Directories and files the policy refused: skipped, not fatal (the search root is).
        var denied: Int
        var truncated: Bool
        var stoppedBy: String?
        enum CodingKeys: String, CodingKey {
            case matches, truncated, skipped, denied
            case filesVisited = "files_visited", bytesRead = "bytes_read", stoppedBy = "stopped_by"
        }
    }

    /// The longest line excerpt returned with a content match, in characters.
    static let excerptLength = 200

    func search(_ input: SearchInput, _ call: CallContext) throws -> SearchOutput {
        guard input.glob != nil || input.content != nil else {
            throw DriverError.invalidArgument("search needs glob (file names, e.g. \"**/*.md\"), content (text inside files), or both")
        }
        let root = input.path ?? "."
        let glob = try input.glob.map(Glob.init)
        let matcher = try input.content.map { try ContentMatcher($0, regex: input.regex ?? false, ignoreCase: input.ignoreCase ?? false) }
        let maxResults = input.maxResults ?? 100
        let maxFiles = input.maxFiles ?? 2000
        let maxBytes = input.maxBytes ?? (8 << 20)
        let maxFileBytes = input.maxFileBytes ?? (1 << 20)
        let showHidden = input.hidden ?? false

        var output = SearchOutput(matches: [], filesVisited: 0, bytesRead: 0, skipped: 0, denied: 0, truncated: false, stoppedBy: nil)
        func stop(_ reason: String) { output.truncated = true; output.stoppedBy = reason }
        func display(_ relative: String) -> String {
            relative.isEmpty ? root : (root == "." ? relative : (root.hasSuffix("/") ? root + relative : root + "/" + relative))
        }

        // Breadth first, names in order: the nearest files are found before the limits bite.
        var pending: [String] = [""]
        walk: while !pending.isEmpty {
            let directory = pending.removeFirst()
            try call.checkCancellation()
            let listing: ListResponse
            switch Result(catching: { () throws(DriverError) in try call.syscall("fs.list", PathRequest(path: display(directory)), as: ListResponse.self) }) {
            case .success(let found): listing = found
            case .failure(let error):
                // A refused folder below the root is skipped and counted; the root itself is the answer.
                guard error.code == .permissionDenied, !directory.isEmpty else { throw error }
                output.denied += 1
                continue walk
            }
            if listing.truncated { stop("list_truncated") }
            for entry in listing.entries {
                if !showHidden && entry.name.hasPrefix(".") { continue }
                if output.filesVisited >= maxFiles { stop("max_files"); break walk }
                output.filesVisited += 1
                let relative = directory.isEmpty ? entry.name : directory + "/" + entry.name
                // Symlinks are reported by name but never followed: no loops, no way out.
                if entry.type == "directory" { pending.append(relative) }
                if let glob, !glob.matches(relative) { continue }
                guard let matcher else {
                    output.matches.append(SearchMatch(path: display(relative), type: entry.type, size: entry.size))
                    if output.matches.count >= maxResults { stop("max_results"); break walk }
                    continue
                }
                guard entry.type == "file" else { continue }
                if entry.size > Int64(maxFileBytes) { output.skipped += 1; continue }
                let budget = maxBytes - output.bytesRead
                if entry.size > Int64(budget) { stop("max_bytes"); break walk }
                let file: ReadResponse
                let request = ReadRequest(path: display(relative), offset: 0, length: Int64(min(maxFileBytes, budget)))
                switch Result(catching: { () throws(DriverError) in try call.syscall("fs.read", request, as: ReadResponse.self) }) {
                case .success(let read): file = read
                case .failure(let error):
                    guard error.code == .permissionDenied else { throw error }
                    output.denied += 1
                    continue
                }
                output.bytesRead += Int(min(file.size, Int64(min(maxFileBytes, budget))))
                // Not UTF-8, or with NUL bytes (as grep decides): binary, not searched.
                guard file.encoding == "utf-8", !file.content.utf8.contains(0) else { output.skipped += 1; continue }
                var number = 0
                for line in file.content.split(separator: "\n", omittingEmptySubsequences: false) {
                    number += 1
                    guard matcher.matches(line) else { continue }
                    let text = line.count > Self.excerptLength ? String(line.prefix(Self.excerptLength)) + "…" : String(line)
                    output.matches.append(SearchMatch(path: display(relative), type: entry.type, size: entry.size, line: number, text: text))
                    if output.matches.count >= maxResults { stop("max_results"); break walk }
                }
            }
        }
        return output
    }
}

/// A glob over paths relative to the search root: `*` and `?` and `[...]` within one
/// name (fnmatch), `**` any number of directories. A pattern without `/` matches the
/// name alone, at any depth (`*.md`); with one, the whole relative path (`docs/**/*.md`).
struct Glob {
    let parts: [String]
    let nameOnly: Bool

    init(_ pattern: String) throws(DriverError) {
        guard !pattern.isEmpty else { throw DriverError.invalidArgument("glob must not be empty (try \"*\" or \"**/*.txt\")") }
        guard !pattern.hasPrefix("/") else {
            throw DriverError.invalidArgument("glob \"\(pattern)\" is absolute; it is matched against paths relative to the search path (set path instead)")
        }
        parts = pattern.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        nameOnly = !pattern.contains("/")
    }

    func matches(_ relative: String) -> Bool {
        let names = relative.split(separator: "/").map(String.init)
        if nameOnly { return names.last.map { Self.match(parts[0], $0) } ?? false }
        return Self.match(parts[...], names[...])
    }

    static func match(_ pattern: ArraySlice<String>, _ names: ArraySlice<String>) -> Bool {
        guard let first = pattern.first else { return names.isEmpty }
        if first == "**" {
            // Zero or more directories.
            var rest = names
            while true {
                if match(pattern.dropFirst(), rest) { return true }
                guard !rest.isEmpty else { return false }
                rest = rest.dropFirst()
            }
        }
        guard let name = names.first, match(first, name) else { return false }
        return match(pattern.dropFirst(), names.dropFirst())
    }

    static func match(_ pattern: String, _ name: String) -> Bool {
        fnmatch(pattern, name, 0) == 0
    }
}

/// Content matching, line by line: a substring, or a regular expression.
struct ContentMatcher {
    let needle: String
    let regex: Regex<AnyRegexOutput>?
    let ignoreCase: Bool

    init(_ pattern: String, regex isRegex: Bool, ignoreCase: Bool) throws(DriverError) {
        guard !pattern.isEmpty else { throw DriverError.invalidArgument("content must not be empty") }
        self.ignoreCase = ignoreCase
        needle = ignoreCase ? pattern.lowercased() : pattern
        if isRegex {
            do {
                let compiled = try Regex(pattern)
                regex = ignoreCase ? compiled.ignoresCase() : compiled
            } catch {
                throw DriverError.invalidArgument("content is not a valid regular expression: \(error)")
            }
        } else {
            regex = nil
        }
    }

    func matches(_ line: Substring) -> Bool {
        if let regex { return (try? regex.firstMatch(in: line)) != nil }
        return ignoreCase ? line.lowercased().contains(needle) : line.contains(needle)
    }
}

@c public func llmos_driver_entry_v1(
    _ host: UnsafePointer<llmos_host>?,
    _ driver: UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?
) -> llmos_status { LLMOSDriverExport.entry(FSDriver.self, host, driver) }
