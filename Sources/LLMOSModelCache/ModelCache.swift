import Foundation

/// Where `scripts/setup-model` keeps the local model and llama-server: the one rule
/// for every reader (the `local` driver, `llmos models`, the model benchmark, tests),
/// which must agree with the script's own.
public enum ModelCache {
    /// `$LLMOS_CACHE_DIR`, else `${XDG_CACHE_HOME:-$HOME/.cache}/llmos`. An empty
    /// variable counts as unset; `$HOME` falls back to the password database's, as
    /// Python's expanduser does.
    public static func directory(_ env: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let dir = env["LLMOS_CACHE_DIR"], !dir.isEmpty { return dir }
        let base = env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (home(env) + "/.cache")
        return base + "/llmos"
    }

    /// `$HOME`, as the setup script (Python's expanduser) reads it; else the password database's.
    public static func home(_ env: [String: String] = ProcessInfo.processInfo.environment) -> String {
        env["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
    }

    /// The marker the script writes once the setup is complete.
    public static func markerPath(in cache: String) -> String { cache + "/setup.json" }
}
