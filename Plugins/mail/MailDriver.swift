// The mail driver: send a plain-text email through the operator's SMTP server.
//
// The driver composes nothing on the wire and opens no socket: it hands the fields to
// the kernel's net.mail.send system call, which builds the message (no header can be
// injected), checks the server as net.connect smtp://host:port (and the address it
// connects to), sends with libcurl and audits the decision — never the recipients, the
// message or the password. Sending cannot be undone, so the tool is marked destructive
// and needs_confirmation: the broker asks before every call unless the operator allowed
// mail.send by name.
//
// Configuration (llmos --config 'mail={...}'): server (smtp://host:port or
// smtps://host:port), from (the sender address), username, password_env (the name of
// an environment variable holding the password, read through env.get so the operator
// grants it; the password itself never sits in a configuration file), tls, timeout_ms.
import LLMOSDriverSDK
import LLMOSJSON

struct MailDriver: LLMOSToolDriver {
    static let name = "mail"
    static let version = "1.0.0"

    struct Config: Decodable {
        var server: String?
        var from: String?
        var username: String?
        var password_env: String?
        var tls: String?
        var timeout_ms: Int?
    }

    let config: Config

    init(context: DriverContext) throws {
        config = try context.decodeConfig(Config.self)
    }

    static func register(_ tools: inout Router) {
        tools.addRaw("send") { (driver: Self, json: String, call: CallContext) in try driver.send(json, call) }
    }

    static let setup = "set it in the mail driver's configuration, e.g. llmos --config 'mail={\"server\": \"smtp://mail.example.org:587\", \"from\": \"me@example.org\"}', and grant the server with --allow net.connect=smtp://mail.example.org:587"

    func send(_ json: String, _ call: CallContext) throws(DriverError) -> String {
        guard let server = config.server, !server.isEmpty else {
            throw .unavailable("no SMTP server is configured (config field server): \(Self.setup)")
        }
        guard let from = config.from, !from.isEmpty else {
            throw .unavailable("no sender address is configured (config field from): \(Self.setup)")
        }
        guard let input = try? JSON.parse(json), input.objectValue != nil else { throw .invalidArgument("the input must be an object") }
        guard let subject = input["subject"]?.stringValue else { throw .invalidArgument("subject is required") }
        guard let body = input["body"]?.stringValue else { throw .invalidArgument("body is required") }

        var request: JSONObject = ["server": .string(server), "from": .string(from), "subject": .string(subject), "body": .string(body)]
        for field in ["to", "cc", "bcc", "reply_to"] {
            if let value = input[field], !value.isNull { request[field] = value }
        }
        if let username = config.username { request["username"] = .string(username) }
        if let variable = config.password_env, !variable.isEmpty {
            let answer: String
            do { answer = try call.syscall("env.get", JSONValue.object(["name": .string(variable)]).serialized()) } catch {
                throw DriverError(error.code, "the SMTP password is read from \(variable) (config field password_env), which may not be read: \(error.message); grant it with --allow env=\(variable)")
            }
            guard let password = (try? JSON.parse(answer))?["value"]?.stringValue, !password.isEmpty else {
                throw .unavailable("the SMTP password variable \(variable) (config field password_env) is not set")
            }
            request["password"] = .string(password)
        }
        if let tls = config.tls { request["tls"] = .string(tls) }
        if let timeout = config.timeout_ms { request["timeout_ms"] = .int(Int64(timeout)) }

        let answer = try call.syscall("net.mail.send", JSONValue.object(request).serialized())
        guard let sent = try? JSON.parse(answer) else { throw .internal("net.mail.send answered with something that is not JSON") }
        return JSONValue.object([
            "sent": true, "server": sent["server"] ?? .null, "accepted": sent["accepted"] ?? .array([]),
            "message_id": sent["message_id"] ?? .null,
        ]).serialized()
    }
}

@c public func llmos_driver_entry_v1(
    _ host: UnsafePointer<llmos_host>?,
    _ driver: UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?
) -> llmos_status { LLMOSDriverExport.entry(MailDriver.self, host, driver) }
