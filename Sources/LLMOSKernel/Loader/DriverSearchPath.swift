import Foundation

/// Where drivers are found, first match wins (DESIGN.md): `--drivers DIR` flags,
/// `$LLMOS_DRIVER_PATH`, `./manifests`, the user's data directory, then the system's.
public struct DriverSearchPath: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var directory: String
        /// Why it is on the path: "--drivers", "LLMOS_DRIVER_PATH", "./manifests", "user", "system".
        public var origin: String

        public init(directory: String, origin: String) {
            self.directory = directory
            self.origin = origin
        }
    }

    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    /// Just these directories, in this order (for tests, benchmarks and `--drivers` only runs).
    public init(directories: [String], origin: String = "--drivers") {
        self.entries = directories.map { Entry(directory: $0, origin: origin) }
    }

    /// The standard path for this process's environment and working directory.
    public static func standard(flags: [String] = [], environment: [String: String] = ProcessInfo.processInfo.environment,
                                workingDirectory: String = FileManager.default.currentDirectoryPath) -> DriverSearchPath {
        var entries = flags.map { Entry(directory: FilePath.absolute($0, relativeTo: workingDirectory), origin: "--drivers") }
        if let list = environment["LLMOS_DRIVER_PATH"] {
            for dir in list.split(separator: ":") where !dir.isEmpty {
                entries.append(Entry(directory: FilePath.absolute(String(dir), relativeTo: workingDirectory), origin: "LLMOS_DRIVER_PATH"))
            }
        }
        entries.append(Entry(directory: FilePath.join(workingDirectory, "manifests"), origin: "./manifests"))
        entries.append(Entry(directory: userDriverDirectory(environment: environment), origin: "user"))
        entries.append(Entry(directory: "/usr/local/share/llmos/drivers", origin: "system"))
        entries.append(Entry(directory: "/usr/share/llmos/drivers", origin: "system"))
        var seen = Set<String>()
        return DriverSearchPath(entries: entries.filter { seen.insert($0.directory).inserted })
    }

    /// `$XDG_DATA_HOME/llmos/drivers`, by default `~/.local/share/llmos/drivers`.
    public static func userDriverDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let data = environment["XDG_DATA_HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil }
            ?? FilePath.join(environment["HOME"] ?? FilePath.homeDirectory, ".local/share")
        return FilePath.join(data, "llmos/drivers")
    }

    static let manifestExtensions = ["yaml", "yml", "json"]

    /// The manifests in one directory: `DIR/NAME.yaml` (or .yml, .json), and
    /// `DIR/NAME/NAME.yaml` for a driver installed with its library in a folder.
    public static func manifests(in directory: String) -> [String] {
        var found: [String] = []
        for entry in FilePath.contents(of: directory) where !entry.hasPrefix(".") {
            let path = FilePath.join(directory, entry)
            if FilePath.isDirectory(path) {
                for ext in manifestExtensions {
                    let inner = FilePath.join(path, "\(entry).\(ext)")
                    if FilePath.isRegularFile(inner) { found.append(inner); break }
                }
            } else if let dot = entry.lastIndex(of: "."), manifestExtensions.contains(String(entry[entry.index(after: dot)...])),
                      FilePath.isRegularFile(path) {
                found.append(path)
            }
        }
        return found
    }
}
