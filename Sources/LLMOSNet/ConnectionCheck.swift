import Foundation
import LLMOSJSON
import LLMOSKernel

/// `net.connect` (docs/SYSCALLS.md): for an in-process driver that opens its own
/// connection through a client library (libpq for the postgres driver), the kernel
/// makes the host canonical, resolves it, and puts each address to the broker as
/// `net.connect scheme://host:port` at that address. The answer is the first address
/// the policy allows, and the caller connects to that address only (libpq's hostaddr),
/// so what was checked is what is used: no second lookup can send it elsewhere.
extension CurlNetworkService {
    public func authorizeConnection(_ request: JSONValue, authorize: @escaping @Sendable (AccessRequest) -> Decision) throws(LLMOSError) -> JSONValue {
        func bad(_ message: String) -> LLMOSError { LLMOSError(.invalidArgument, "net.connect: \(message)") }
        guard let scheme = request["scheme"]?.stringValue?.lowercased(), PolicyNetPatternCheck.isValidScheme(scheme) else {
            throw bad("scheme: expected a URL scheme naming the protocol, e.g. \"postgresql\"")
        }
        guard scheme != "http" && scheme != "https" else {
            throw bad("scheme: http and https go through net.fetch, which checks every redirect and pins the address")
        }
        guard let rawHost = request["host"]?.stringValue, !rawHost.isEmpty else { throw bad("host: expected a host name or an IP address") }
        guard let port = request["port"]?.int64Value, (1...65535).contains(port) else { throw bad("port: expected an integer from 1 to 65535") }
        let literal = rawHost.contains(":") && !rawHost.hasPrefix("[") ? "[\(rawHost)]" : rawHost
        let host: String, literalAddress: String?
        do { (host, literalAddress) = try URLCanonicalizer.canonicalHost(literal, original: rawHost) } catch {
            throw bad("host: \(error.message)")
        }
        let resource = "\(scheme)://\(bracketed(host)):\(port)"
        let addresses: [String]
        if let literalAddress { addresses = [literalAddress] } else { addresses = try Self.resolve(host, port: Int(port)) }
        var refusals: [String] = []
        for address in addresses {
            if address == "::" || address.hasPrefix("0.") {
                refusals.append("\(address) is the unspecified address (it reaches this machine); refused whatever the grants")
                continue
            }
            let decision = authorize(AccessRequest(kind: .netConnect, resource: resource, address: address, driver: ""))
            if decision.verdict == .allow {
                return ["resource": .string(resource), "host": .string(host), "address": .string(address), "port": .int(port)]
            }
            refusals.append("net.connect \(resource) (address \(address)) denied by \(decision.rule)")
        }
        throw LLMOSError(.permissionDenied, "net.connect: \(refusals.first ?? resource)" + (refusals.count > 1 ? " (and \(refusals.count - 1) more addresses)" : ""))
    }

    /// The host's addresses, in the resolver's order (canonical text, IPv4-mapped as IPv4).
    static func resolve(_ host: String, port: Int) throws(LLMOSError) -> [String] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else {
            throw LLMOSError(.unavailable, "net.connect: cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var addresses: [String] = []
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let current = entry {
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            if let address = current.pointee.ai_addr {
                if current.pointee.ai_family == AF_INET {
                    address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                        var a = sin.pointee.sin_addr
                        _ = inet_ntop(AF_INET, &a, &buffer, socklen_t(buffer.count))
                    }
                } else if current.pointee.ai_family == AF_INET6 {
                    address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                        var a = sin6.pointee.sin6_addr
                        _ = inet_ntop(AF_INET6, &a, &buffer, socklen_t(buffer.count))
                    }
                }
                let text = String(cString: buffer)
                if !text.isEmpty {
                    let canonical = text.contains(":") ? (IPAddress.canonicalIPv6(text)?.text ?? text) : text
                    if !addresses.contains(canonical) { addresses.append(canonical) }
                }
            }
            entry = current.pointee.ai_next
        }
        guard !addresses.isEmpty else { throw LLMOSError(.unavailable, "net.connect: \(host) has no IPv4 or IPv6 address") }
        return addresses
    }
}

/// The scheme rule of net.connect patterns: a letter, then letters, digits, + - .
enum PolicyNetPatternCheck {
    static func isValidScheme(_ s: String) -> Bool {
        guard let first = s.utf8.first, isAlpha(first), s.utf8.count <= 32 else { return false }
        return s.utf8.allSatisfy { isAlpha($0) || isDigit($0) || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
    }
}
