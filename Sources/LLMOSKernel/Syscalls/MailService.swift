import LLMOSJSON

/// The service behind the `net.mail.send` system call: one message handed to an SMTP
/// server. A protocol, so the kernel stays free of SMTP code: LLMOSNet implements it with
/// libcurl on `CurlNetworkService`, and a host whose network service does not conform
/// answers "unsupported".
///
/// The implementation must put `smtp://host:port` (or `smtps://`) to `authorize` as a
/// `net.connect` request before connecting, and the address actually connected as well,
/// exactly as net.fetch does. The audit log gets only that resource and the decision —
/// never the recipients, the message or a password.
public protocol MailService: Sendable {
    /// `net.mail.send` (JSON shape in docs/SYSCALLS.md) → `{"accepted": [recipients], "server": "smtp://host:port"}`.
    func sendMail(_ request: JSONValue, authorize: @escaping @Sendable (AccessRequest) -> Decision) throws(LLMOSError) -> JSONValue
}
