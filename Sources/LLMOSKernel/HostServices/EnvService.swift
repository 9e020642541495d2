import Foundation
import LLMOSJSON

/// The `env.get` system call: one environment variable of the host process, checked
/// with the `env` capability over the variable's name (the authorizer matches it against
/// the grants' name globs: `env=LLMOS_*`, `env=HOME`).
///
/// `env.get {name}` → `{name, value: string|null}` (null when the variable is not set).
/// A name must match `[A-Za-z_][A-Za-z0-9_]*` and be at most `maxNameBytes` bytes: a glob
/// is matched against a plain name, never against `*`, `=`, a NUL or a path. Refused:
/// `.invalidArgument` for a bad name or request, `.permissionDenied` naming the variable
/// and the rule for a name not granted. A value that is not valid UTF-8 is returned with
/// U+FFFD replacements.
public enum EnvService {
    public static let maxNameBytes = 256

    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= maxNameBytes else { return false }
        func letter(_ c: UInt8) -> Bool { (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95 }
        return letter(first) && name.utf8.allSatisfy { letter($0) || ($0 >= 48 && $0 <= 57) }
    }

    /// The host process's value of `name` (getenv).
    public static func processValue(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// Checks `env` on `name`, then answers `{name, value}`.
    public static func get(name: String, authorize: (AccessRequest) -> Decision, driver: String = "", tool: String? = nil,
                           environment: (String) -> String? = EnvService.processValue) throws(LLMOSError) -> JSONValue {
        guard isValidName(name) else {
            let shown = PathCanonicalizer.abbreviated(name)
            throw LLMOSError(.invalidArgument, "env.get: \"\(shown)\" is not a variable name (letters, digits and _, not starting with a digit, at most \(maxNameBytes) bytes)")
        }
        let decision = authorize(AccessRequest(kind: .env, resource: name, driver: driver, tool: tool))
        switch decision.verdict {
        case .allow:
            return ["name": .string(name), "value": environment(name).map(JSONValue.string) ?? .null]
        case .deny:
            throw LLMOSError(.permissionDenied, "env of \(name) denied by \(decision.rule)")
        case .ask:
            throw LLMOSError(.permissionDenied, "env of \(name) needs confirmation (\(decision.rule)) and none was given")
        }
    }

    /// `env.get {name}` → `{name, value}`.
    public static func envGet(_ request: JSONValue, authorize: (AccessRequest) -> Decision, driver: String, tool: String?,
                              environment: (String) -> String? = EnvService.processValue) throws(LLMOSError) -> JSONValue {
        let fields = try HostRequestFields(request, "env.get", allowed: ["name"])
        return try get(name: try fields.string("name"), authorize: authorize, driver: driver, tool: tool, environment: environment)
    }
}
