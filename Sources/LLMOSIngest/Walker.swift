import Foundation

/// The files under the paths given, in a stable order: directories recursively, skipping
/// hidden entries (.git), build folders and symbolic-link loops; files whose kind is unknown
/// or binary are reported as skipped.
public enum Walker {
    public static let skippedDirectories: Set<String> = [".git", ".build", "node_modules", "__pycache__", ".venv", "venv", ".hg", ".svn"]

    public struct Found: Sendable {
        public var files: [String] = []
        public var skipped: [(path: String, reason: String)] = []
        public var missing: [String] = []
    }

    public static func files(under paths: [String]) -> Found {
        var found = Found()
        var seen = Set<String>()
        let fm = FileManager.default
        for path in paths {
            let absolute = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: absolute, isDirectory: &isDirectory) else { found.missing.append(path); continue }
            if !isDirectory.boolValue {
                if seen.insert(absolute).inserted { found.files.append(absolute) }
                continue
            }
            var directories = [absolute]
            var visited = Set<String>()
            while let directory = directories.popLast() {
                guard visited.insert(directory).inserted,
                      let names = try? fm.contentsOfDirectory(atPath: directory) else { continue }
                var subdirectories: [String] = []
                for name in names.sorted() where !name.hasPrefix(".") && !skippedDirectories.contains(name) {
                    let child = URL(fileURLWithPath: directory).appendingPathComponent(name).resolvingSymlinksInPath().path
                    var childIsDirectory: ObjCBool = false
                    guard fm.fileExists(atPath: child, isDirectory: &childIsDirectory) else { continue }
                    if childIsDirectory.boolValue { subdirectories.append(child) }
                    else if seen.insert(child).inserted { found.files.append(child) }
                }
                directories.append(contentsOf: subdirectories.reversed())
            }
        }
        return found
    }
}
