import Foundation
import LLMOSJSON

/// The `exec.authorize` system call: before a driver starts a program (the shell and
/// python drivers), the kernel names exactly what would run and decides whether it may.
///
/// `exec.authorize {program, sandbox?}` → `{path, workspace, sandbox?}`:
/// - a `program` with a `/` is a path, taken from the workspace when relative; a bare
///   name is looked up in a fixed list of directories (`searchPath`), never the host's
///   `PATH`, which a driver or the environment could have changed;
/// - every symlink is resolved (`/bin/sh` is checked as `/usr/bin/dash` on Debian), and
///   the result must be a regular file with an execute bit;
/// - the canonical path is put to the broker as `exec` (the driver's manifest request ∩
///   the operator's policy) and the decision is audited.
///
/// The driver then executes exactly `path` (no PATH search of its own). A driver running
/// `isolation: process` is held to the same grant a second time by its sandbox: seccomp
/// refuses execve without an exec grant and Landlock executes only the granted files —
/// which also covers a file swapped in after this check.
///
/// With `sandbox: true` the answer also carries the sandbox to start the program in
/// (`{plan, summary, notes}`, `ProgramSandbox.swift`), built from the same grants.
///
/// Refused: `.invalidArgument` for a bad request, `.notFound` for no such program,
/// `.permissionDenied` (naming the canonical path and the rule) when not granted.
public enum ExecService {
    /// Where a bare program name is looked for, in order.
    public static let searchPath = ["/usr/local/bin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/sbin", "/sbin"]

    public static func authorize(_ request: JSONValue, workspace: String, authorize: (AccessRequest) -> Decision,
                                 driver: String, tool: String?) throws(LLMOSError) -> JSONValue {
        let fields = try HostRequestFields(request, "exec.authorize", allowed: ["program", "sandbox"])
        let program = try fields.string("program")
        if let sandbox = request["sandbox"], sandbox != .bool(true), sandbox != .bool(false) {
            throw LLMOSError(.invalidArgument, "exec.authorize: sandbox: expected true or false, got \(sandbox.serialized())")
        }
        do { try PathCanonicalizer.validate(program) } catch {
            throw LLMOSError(.invalidArgument, "exec.authorize: program: \(error.message)")
        }
        let canonicalizer = PathCanonicalizer(workspace: workspace)
        let candidates = program.contains("/") ? [program] : searchPath.map { $0 + "/" + program }
        var found: String?
        for candidate in candidates {
            guard let canonical = try? canonicalizer.canonicalize(candidate), canonical.exists else { continue }
            guard FilePath.isRegularFile(canonical.path) else {
                if program.contains("/") {
                    throw LLMOSError(.invalidArgument, "exec.authorize: \(canonical.path) is not a regular file, so it cannot be run")
                }
                continue
            }
            guard access(canonical.path, X_OK) == 0 else {
                if program.contains("/") {
                    throw LLMOSError(.permissionDenied, "exec.authorize: \(canonical.path) is not executable (no execute permission)")
                }
                continue
            }
            found = canonical.path
            break
        }
        guard let path = found else {
            let shown = PathCanonicalizer.abbreviated(program)
            throw LLMOSError(.notFound, program.contains("/")
                ? "exec.authorize: no program at \(shown) (relative paths are taken from the workspace)"
                : "exec.authorize: no program \"\(shown)\" in \(searchPath.joined(separator: ":")); give its absolute path, or install it")
        }
        let decision = authorize(AccessRequest(kind: .exec, resource: path, driver: driver, tool: tool))
        switch decision.verdict {
        case .allow:
            let root = (try? canonicalizer.canonicalize(canonicalizer.workspace).path) ?? canonicalizer.workspace
            return ["path": .string(path), "workspace": .string(root)]
        case .deny:
            throw LLMOSError(.permissionDenied, "\(driver): exec of \(path) denied by \(decision.rule)")
        case .ask:
            throw LLMOSError(.permissionDenied, "\(driver): exec of \(path) needs confirmation (\(decision.rule)) and none was given")
        }
    }
}
