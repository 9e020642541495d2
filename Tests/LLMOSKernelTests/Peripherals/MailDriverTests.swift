import Foundation
import LLMOSJSON
import LLMOSNet
import Synchronization
import Testing
@testable import LLMOSKernel

// The mail driver (Plugins/mail, manifests/mail.yaml) and the kernel's net.mail.send,
// called through the kernel as a model calls them, against a real SMTP server on loopback
// (aiosmtpd, Tests/Fixtures/mail/server.py), whose outbox the tests read back.

/// A Python with aiosmtpd: the system's if it has it, else a virtual environment made
/// once (in /tmp, shared by test runs) with `pip install aiosmtpd`.
private enum SMTPPython {
    private static let cached = Mutex<String?>(nil)

    static func path() throws -> String {
        try cached.withLock { found in
            if let found { return found }
            if (try? run("/usr/bin/python3", ["-c", "import aiosmtpd"]))?.status == 0 {
                found = "/usr/bin/python3"
                return "/usr/bin/python3"
            }
            let venv = NSTemporaryDirectory() + "llmos-aiosmtpd-venv"
            let python = venv + "/bin/python"
            if (try? run(python, ["-c", "import aiosmtpd"]))?.status != 0 {
                let made = try run("/usr/bin/python3", ["-m", "venv", venv])
                guard made.status == 0 else { throw Fixtures.FixtureError(message: "python3 -m venv \(venv) failed: \(made.output)") }
                let installed = try run(venv + "/bin/pip", ["install", "--quiet", "aiosmtpd"])
                guard installed.status == 0 else {
                    throw Fixtures.FixtureError(message: "pip install aiosmtpd into \(venv) failed (the mail tests need a real SMTP server): \(installed.output)")
                }
            }
            found = python
            return python
        }
    }
}

/// Tests/Fixtures/mail/server.py in a child process; its stdin held open until stop().
private final class SMTPServer {
    let process = Process()
    private let input = Pipe()
    let outbox = Paths.temporaryDirectory("outbox")
    let port: Int

    init() throws {
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: try SMTPPython.path())
        process.arguments = [Paths.repoRoot + "/Tests/Fixtures/mail/server.py", outbox]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        var data = Data()
        while !data.contains(0x0A) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { throw Fixtures.FixtureError(message: "the SMTP fixture exited before listening") }
            data.append(chunk)
        }
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        port = object?["port"] as? Int ?? 0
    }

    var server: String { "smtp://127.0.0.1:\(port)" }

    /// The messages received, in order: {mail_from, rcpt_tos, content}.
    func received() throws -> [JSONValue] {
        let names = try FileManager.default.contentsOfDirectory(atPath: outbox).filter { $0.hasSuffix(".json") }
            .sorted { Int($0.dropLast(5)) ?? 0 < Int($1.dropLast(5)) ?? 0 }
        return try names.map { try JSON.parse(String(contentsOfFile: outbox + "/" + $0, encoding: .utf8)) }
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    deinit { stop() }
}

private func mailKernel(config: JSONValue, grants: [String], asker: (any Asker)? = nil, audit: MemoryAuditLog? = nil) throws -> Kernel {
    let rules = try grants.map { try PolicyParser.rule(fromFlag: $0, action: .allow) }
    let kernel = makeKernel { c in
        c.broker = CapabilityBroker(policy: Policy.builtInDefault.adding(rules), asker: asker ?? DenyingAsker())
        c.network = CurlNetworkService()
        c.driverConfig["mail"] = config
        if let audit { c.audit = audit }
    }
    try kernel.load(manifestAt: Paths.manifests + "/mail.yaml")
    return kernel
}

private func send(_ kernel: Kernel, _ input: JSONValue) throws -> JSONValue {
    try JSON.parse(try kernel.call("mail.send", input: input.serialized()).output)
}

@Suite(.serialized) struct MailDriverTests {
    @Test func aMessageArrivesAtARealSMTPServer() throws {
        let smtp = try SMTPServer()
        defer { smtp.stop() }
        let audit = MemoryAuditLog()
        let kernel = try mailKernel(config: ["server": .string(smtp.server), "from": "llmos@example.org"],
                                    grants: ["tool.call=mail.send", "net.connect=\(smtp.server)"], audit: audit)
        let sent = try send(kernel, [
            "to": ["ada@example.org", "bob@example.org"], "cc": "carol@example.org", "bcc": ["dave@example.org"],
            "subject": "Café at 9", "body": "Hello,\n.\nsee you at 9 — Ada\n", "reply_to": "ada@example.org",
        ])
        #expect(sent["sent"] == true)
        #expect(sent["server"] == .string(smtp.server))
        #expect(sent["accepted"] == ["ada@example.org", "bob@example.org", "carol@example.org", "dave@example.org"])

        let messages = try smtp.received()
        try #require(messages.count == 1)
        let message = messages[0]
        #expect(message["mail_from"] == "llmos@example.org")
        #expect(message["rcpt_tos"] == ["ada@example.org", "bob@example.org", "carol@example.org", "dave@example.org"])
        let content = try #require(message["content"]?.stringValue)
        #expect(content.contains("From: llmos@example.org\r\n"))
        #expect(content.contains("To: ada@example.org, bob@example.org\r\n"))
        #expect(content.contains("Cc: carol@example.org\r\n"))
        #expect(!content.contains("dave@example.org"), "bcc goes to the envelope only")
        #expect(content.contains("Reply-To: ada@example.org\r\n"))
        #expect(content.contains("Subject: =?UTF-8?B?\(Data("Café at 9".utf8).base64EncodedString())?=\r\n"), "\(content)")
        #expect(content.contains("Message-ID: \(sent["message_id"]?.stringValue ?? "?")\r\n"))
        #expect(content.contains("Content-Transfer-Encoding: base64"), "non-ASCII text goes as base64")
        let encoded = content.components(separatedBy: "\r\n\r\n").dropFirst().joined().replacingOccurrences(of: "\r\n", with: "")
        let decoded = Data(base64Encoded: encoded).map { String(decoding: $0, as: UTF8.self) }
        #expect(decoded == "Hello,\r\n.\r\nsee you at 9 — Ada\r\n", "a lone dot survives (SMTP dot-stuffing): \(decoded ?? "?")")

        // The audit names the server, never a recipient or the message.
        let records = audit.records
        #expect(records.contains { $0.capability == "net.connect" && $0.resource.hasPrefix(smtp.server) && $0.decision == .allow })
        #expect(!records.contains { $0.resource.contains("ada@") || $0.rule.contains("ada@") })
    }

    @Test func sendingAsksFirstAndARefusalSendsNothing() throws {
        let smtp = try SMTPServer()
        defer { smtp.stop() }
        let config: JSONValue = ["server": .string(smtp.server), "from": "llmos@example.org"]
        let input: JSONValue = ["to": "ada@example.org", "subject": "hi", "body": "plain text"]

        // Not allowed by name: the broker asks (here nobody can answer, so it is denied).
        let unasked = try mailKernel(config: config, grants: ["net.connect=\(smtp.server)"])
        let denied = expectError { try send(unasked, input) }
        #expect(denied.code == .permissionDenied)
        #expect(denied.message.contains("--allow tool.call=mail.send"), "\(denied.message)")

        let asker = ScriptedAsker([.deny, .allowOnce])
        let asking = try mailKernel(config: config, grants: ["net.connect=\(smtp.server)"], asker: asker)
        let refused = expectError { try send(asking, input) }
        #expect(refused.code == .permissionDenied)
        #expect(try smtp.received().isEmpty, "nothing was sent")
        #expect(try send(asking, input)["sent"] == true)
        #expect(asker.asked.count == 2)
        #expect(asker.asked.allSatisfy { $0.request.kind == .toolCall && $0.request.resource == "mail.send" })
        let content = try smtp.received().first?["content"]?.stringValue ?? ""
        #expect(content.contains("Content-Transfer-Encoding: 7bit\r\n\r\nplain text\r\n"), "\(content)")
    }

    @Test func aServerThePolicyDoesNotGrantIsRefusedBeforeAnyConnection() throws {
        let smtp = try SMTPServer()
        defer { smtp.stop() }
        let kernel = try mailKernel(config: ["server": .string(smtp.server), "from": "llmos@example.org"], grants: ["tool.call=mail.send"])
        let error = expectError { try send(kernel, ["to": "ada@example.org", "subject": "hi", "body": "x"]) }
        #expect(error.code == .permissionDenied)
        #expect(error.message.contains("net.mail.send: net.connect \(smtp.server)") && error.message.contains("denied by"), "\(error.message)")
        #expect(try smtp.received().isEmpty)
    }

    @Test func missingConfigurationSaysWhatToSet() throws {
        let kernel = try mailKernel(config: [:], grants: ["tool.call=mail.send"])
        let error = expectError { try send(kernel, ["to": "ada@example.org", "subject": "hi", "body": "x"]) }
        #expect(error.code == .unavailable)
        #expect(error.message.contains("no SMTP server is configured (config field server)") && error.message.contains("--config 'mail="), "\(error.message)")

        let noSender = try mailKernel(config: ["server": "smtp://127.0.0.1:25"], grants: ["tool.call=mail.send"])
        let sender = expectError { try send(noSender, ["to": "ada@example.org", "subject": "hi", "body": "x"]) }
        #expect(sender.message.contains("config field from"), "\(sender.message)")
    }

    @Test func headerInjectionBadAddressesAndPlainTextPasswordsAreRefused() throws {
        let smtp = try SMTPServer()
        defer { smtp.stop() }
        let grants = ["tool.call=mail.send", "net.connect=\(smtp.server)", "env=LLMOS_SMTP_PASSWORD"]
        let kernel = try mailKernel(config: ["server": .string(smtp.server), "from": "llmos@example.org"], grants: grants)

        let injected = expectError { try send(kernel, ["to": "ada@example.org", "subject": "hi\r\nBcc: eve@example.org", "body": "x"]) }
        #expect(injected.code == .invalidArgument)
        #expect(injected.message.contains("subject must be one line"), "\(injected.message)")

        let display = expectError { try send(kernel, ["to": "Ada <ada@example.org>", "subject": "hi", "body": "x"]) }
        #expect(display.message.contains("to[0]") && display.message.contains("not a plain address"), "\(display.message)")

        let rejected = expectError { try send(kernel, ["to": "reject-me@example.org", "subject": "hi", "body": "x"]) }
        #expect(rejected.code == .unavailable)
        #expect(rejected.message.contains("550"), "the server's refusal is passed on: \(rejected.message)")

        // A password is never sent in clear text.
        setenv("LLMOS_SMTP_PASSWORD", "s3cret-pw", 1)
        defer { unsetenv("LLMOS_SMTP_PASSWORD") }
        let log = MemoryAuditLog()
        let withPassword = try mailKernel(config: ["server": .string(smtp.server), "from": "llmos@example.org", "username": "llmos",
                                                   "password_env": "LLMOS_SMTP_PASSWORD", "tls": "try"], grants: grants, audit: log)
        let clear = expectError { try send(withPassword, ["to": "ada@example.org", "subject": "hi", "body": "x"]) }
        #expect(clear.code == .invalidArgument)
        #expect(clear.message.contains("a password is sent only over TLS"), "\(clear.message)")
        #expect(!clear.message.contains("s3cret-pw"))
        #expect(!log.records.contains { $0.resource.contains("s3cret") || $0.rule.contains("s3cret") })
        #expect(try smtp.received().isEmpty)
    }
}
