import Foundation
import LLMOSJSON

/// Where "allow for this session" grants live between the commands of one session.
/// A protocol with an in-memory reference implementation; `FileSessionGrantStore`
/// keeps them for a terminal login session, the way sudo keeps its timestamp per tty.
public protocol SessionGrantStore: Sendable {
    func load() -> [SessionGrant]
    func save(_ grants: [SessionGrant])
}

public final class MemorySessionGrantStore: SessionGrantStore, @unchecked Sendable {
    private let lock = PThreadMutex()
    private var grants: [SessionGrant] = []
    public init() {}
    public func load() -> [SessionGrant] { lock.withLock { grants } }
    public func save(_ grants: [SessionGrant]) { lock.withLock { self.grants = grants } }
}

/// One JSON file per session (`getsid(0)`: the terminal's login session), under
/// `$XDG_RUNTIME_DIR/llmos/` (else `/tmp/llmos-<uid>/`). The folder and the file must
/// belong to this user and be private (0700 / 0600): grants planted by anyone else are
/// ignored, never trusted.
public struct FileSessionGrantStore: SessionGrantStore {
    public let path: String

    public init(path: String) { self.path = path }

    /// The file for the current session.
    public static func forCurrentSession(environment: [String: String] = ProcessInfo.processInfo.environment) -> FileSessionGrantStore {
        let runtime = environment["XDG_RUNTIME_DIR"].flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "/tmp/llmos-\(getuid())"
        return FileSessionGrantStore(path: "\(runtime)/llmos/session-\(getsid(0)).json")
    }

    public func load() -> [SessionGrant] {
        guard isPrivate(path), let data = FileManager.default.contents(atPath: path),
              let value = try? JSON.parse([UInt8](data)), let items = value["grants"]?.arrayValue else { return [] }
        return items.compactMap { item in
            guard let id = item["id"]?.int64Value, let kindName = item["kind"]?.stringValue, let kind = CapabilityKind(rawValue: kindName),
                  let resource = item["resource"]?.stringValue, let driver = item["driver"]?.stringValue else { return nil }
            return SessionGrant(id: Int(id), kind: kind, resource: resource, driver: driver)
        }
    }

    public func save(_ grants: [SessionGrant]) {
        let directory = (path as NSString).deletingLastPathComponent
        mkdir((directory as NSString).deletingLastPathComponent, 0o700)
        mkdir(directory, 0o700)
        guard isPrivate(directory) else { return }
        let document: JSONValue = ["session": .int(Int64(getsid(0))), "grants": .array(grants.map { grant in
            ["id": .int(Int64(grant.id)), "kind": .string(grant.kind.rawValue), "resource": .string(grant.resource), "driver": .string(grant.driver)]
        })]
        let temporary = path + ".\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let bytes = Array(document.serialized(pretty: true).utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        if written == bytes.count { rename(temporary, path) } else { unlink(temporary) }
    }

    /// Owned by us and closed to everyone else; not a symlink.
    private func isPrivate(_ path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0 else { return false }
        return info.st_uid == getuid() && (info.st_mode & 0o077) == 0 && (info.st_mode & S_IFMT) != S_IFLNK
    }
}
