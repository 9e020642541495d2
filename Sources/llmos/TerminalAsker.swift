import Foundation
import LLMOSKernel

/// Resolves `ask` on the controlling terminal: shows who wants what (the driver, the
/// tool and the exact canonical resource) and takes allow once, allow for this
/// session, or deny. It talks to /dev/tty, not stdin/stdout, so that piped input and
/// output (`--json`) are never mixed with the question. Without a terminal it denies,
/// saying how to grant instead (see `DenyingAsker`).
final class TerminalAsker: Asker, @unchecked Sendable {
    private let lock = NSLock()
    private let fallback = DenyingAsker()

    /// The terminal, when there is one to ask on.
    static func open() -> FileHandle? {
        let fd = Glibc.open("/dev/tty", O_RDWR | O_CLOEXEC)
        return fd >= 0 ? FileHandle(fileDescriptor: fd, closeOnDealloc: true) : nil
    }

    func ask(_ request: AccessRequest, decision: Decision) -> AskAnswer {
        guard let tty = TerminalAsker.open() else { return .deny }
        // One question at a time, even when calls run on several threads.
        lock.lock()
        defer { lock.unlock() }
        // An agent's call names the process (and the model) it is made for.
        let agent = request.agent.map { pid in
            AgentProcess.lookup(pid).map { "agent process \($0.pid) (\($0.owner), cpu \($0.drivers.cpu))" } ?? "agent process \(pid)"
        }
        let who = request.driver.isEmpty
            ? (agent.map { "The model in \($0)" } ?? "You (a direct call)")
            : "Driver \(request.driver)" + (agent.map { ", for \($0)," } ?? "")
        let during = request.tool.map { " while running \($0)" } ?? ""
        let what = request.resource.isEmpty ? request.kind.rawValue : "\(request.kind.rawValue) \(request.resource)"
        let via = request.address.map { " (address \($0))" } ?? ""
        tty.write(Data("""

        llmos: permission needed
          \(who)\(during) asks for \(what)\(via)
          rule: \(decision.rule)
        Allow [o]nce, allow for this [s]ession, or [d]eny? [d] 
        """.utf8))
        var answer = ""
        while true {
            let byte = tty.readData(ofLength: 1)
            if byte.isEmpty || byte.first == UInt8(ascii: "\n") || byte.first == UInt8(ascii: "\r") { break }
            answer.append(Character(UnicodeScalar(byte.first!)))
        }
        switch answer.trimmingCharacters(in: .whitespaces).lowercased() {
        case "o", "once", "y", "yes": tty.write(Data("  allowed once\n".utf8)); return .allowOnce
        case "s", "session": tty.write(Data("  allowed for this session (revocable)\n".utf8)); return .allowForSession
        default: tty.write(Data("  denied\n".utf8)); return .deny
        }
    }

    func unansweredReason(_ request: AccessRequest, decision: Decision) -> String? {
        TerminalAsker.open() == nil ? fallback.unansweredReason(request, decision: decision) : nil
    }
}
