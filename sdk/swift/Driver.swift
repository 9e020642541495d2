// LLMOSDriverSDK: write an llmos driver in Swift.
//
// A driver is a type conforming to `LLMOSDriver` plus one line exporting the C
// entry point:
//
//     import LLMOSDriverSDK
//
//     struct GreetDriver: LLMOSDriver {
//         static let name = "greet"        // = the manifest's name
//         static let version = "1.0.0"
//
//         init(context: DriverContext) throws {}
//
//         static func register(_ router: inout Router) {
//             router.add("hello", Self.hello)          // a method...
//             router.add("ping") { (_: Empty, call) in Empty() }   // ...or a closure
//         }
//
//         struct HelloInput: Decodable { var name: String }
//         struct HelloOutput: Encodable { var greeting: String }
//         func hello(_ input: HelloInput, _ call: CallContext) throws -> HelloOutput {
//             HelloOutput(greeting: "Hello, \(input.name)!")
//         }
//     }
//
//     @c public func llmos_driver_entry_v1(
//         _ host: UnsafePointer<llmos_host>?,
//         _ driver: UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?
//     ) -> llmos_status { LLMOSDriverExport.entry(GreetDriver.self, host, driver) }
//
// The SDK builds the `llmos_driver` description, turns C calls into Swift calls,
// decodes inputs and encodes outputs (Codable, JSON), and turns every thrown
// error into host->set_error: no Swift error ever crosses the C boundary. It
// cannot catch traps (force-unwrap of nil, array index out of range, fatalError):
// those crash the process that loaded the driver, so don't.
//
// Swift's ABI is not stable on Linux: build a Swift driver with the same
// toolchain as the llmos host.

@_exported import CLLMOS

/// A driver: its identity, how to make an instance, and its operations.
///
/// For class `tool` the operations are the manifest's tools. The kernel
/// creates one or more instances (each with its configuration) and calls
/// operations on them.
///
/// Threads: with `threading: serialized` (the manifest's default) the kernel
/// never runs two calls of one instance at once, so the instance may hold
/// plain mutable state. With `threading: concurrent` calls run on many threads
/// at once: then the instance must be safe for that (ideally `Sendable`: only
/// `let` properties of Sendable types, or state behind a `Mutex`).
public protocol LLMOSDriver {
    /// Must equal the manifest's `name`.
    static var name: String { get }
    /// The driver's own version, e.g. "1.2.0".
    static var version: String { get }
    /// The lowest host ABI minor this driver needs (default 0, i.e. any 1.x
    /// host). The entry point returns LLMOS_ERR_ABI for an older host.
    static var minimumHostABIMinor: UInt32 { get }

    /// Make an instance from its configuration (`context.config`, JSON). Runs on
    /// the kernel's thread that creates instances. A thrown error refuses the
    /// instance; its message goes to the host's log.
    init(context: DriverContext) throws

    /// Declare the operations. Called once, by the entry point, before any
    /// instance exists: the kernel needs the list of operations at load time.
    /// Handlers receive the instance they run on.
    static func register(_ router: inout OperationRouter<Self>)
}

extension LLMOSDriver {
    public static var minimumHostABIMinor: UInt32 { 0 }

    /// The router of this driver type, for `register(_:)`.
    public typealias Router = OperationRouter<Self>
}

/// The spelling used by tool drivers; the same protocol.
public typealias LLMOSToolDriver = LLMOSDriver

/// The operations of a driver type, each with its handler.
///
/// Typed handlers take a `Decodable` input and return an `Encodable` output,
/// converted with JSONDecoder/JSONEncoder (output keys sorted). The kernel has
/// already validated the input against the manifest's input_schema; if the
/// Swift type disagrees with the schema, decoding fails and the call fails with
/// LLMOS_ERR_INVALID_ARGUMENT "invalid input: ..." naming the field.
///
/// Raw handlers get the input JSON text and return output JSON text.
///
/// Handlers may throw: a `DriverError` is reported as is; any other error as
/// LLMOS_ERR_INTERNAL with its description.
public struct OperationRouter<Driver: LLMOSDriver> {
    /// Runs one operation: instance, input bytes (host-owned, valid during the
    /// call), call context -> output JSON bytes.
    typealias Handler = (Driver, UnsafeRawBufferPointer, CallContext) throws -> [UInt8]

    private(set) var handlers: [String: Handler] = [:]
    /// The operation names, in the order they were added.
    public private(set) var operations: [String] = []
    /// Names added more than once (a bug, reported by the entry point).
    private(set) var duplicates: [String] = []

    init() {}

    private mutating func insert(_ name: String, _ handler: @escaping Handler) {
        if handlers.updateValue(handler, forKey: name) != nil {
            duplicates.append(name)
        } else {
            operations.append(name)
        }
    }

    /// Add an operation handled by an instance method:
    /// `router.add("count", Self.count)` with
    /// `func count(_ input: CountInput, _ call: CallContext) throws -> CountOutput`.
    public mutating func add<Input: Decodable, Output: Encodable>(
        _ name: String,
        _ method: @escaping (Driver) -> (Input, CallContext) throws -> Output
    ) {
        insert(name) { driver, bytes, call in
            let input = try decodeInput(Input.self, bytes)
            return try encodeOutput(method(driver)(input, call), name)
        }
    }

    /// Add an operation handled by a closure that receives the instance:
    /// `router.add("count") { (driver, input: CountInput, call) in ... }`.
    public mutating func add<Input: Decodable, Output: Encodable>(
        _ name: String,
        _ handler: @escaping (Driver, Input, CallContext) throws -> Output
    ) {
        insert(name) { driver, bytes, call in
            let input = try decodeInput(Input.self, bytes)
            return try encodeOutput(handler(driver, input, call), name)
        }
    }

    /// Add an operation handled by a closure that needs no instance state:
    /// `router.add("trim") { (input: TrimInput, call) in ... }`.
    public mutating func add<Input: Decodable, Output: Encodable>(
        _ name: String,
        _ handler: @escaping (Input, CallContext) throws -> Output
    ) {
        insert(name) { _, bytes, call in
            let input = try decodeInput(Input.self, bytes)
            return try encodeOutput(handler(input, call), name)
        }
    }

    /// Add an operation that takes and returns JSON text. The output must be
    /// one well-formed JSON value (the kernel checks it).
    public mutating func addRaw(
        _ name: String,
        _ handler: @escaping (Driver, String, CallContext) throws -> String
    ) {
        insert(name) { driver, bytes, call in
            let input = String(decoding: bytes, as: UTF8.self)
            return Array(try handler(driver, input, call).utf8)
        }
    }

    /// Handle every operation not added by name: for a driver whose manifest says
    /// `tools: discovered` (its tools are learnt at run time, e.g. from an MCP server),
    /// the handler gets the operation name (the tool name without the driver prefix),
    /// the input JSON text, and returns the output JSON text. The kernel only calls
    /// tools it registered, so an unknown name here means a tool that went away.
    public mutating func addFallback(
        _ handler: @escaping (Driver, String, String, CallContext) throws -> String
    ) {
        fallback = { driver, bytes, call in
            let input = String(decoding: bytes, as: UTF8.self)
            return Array(try handler(driver, call.operation, input, call).utf8)
        }
    }

    /// The handler of `addFallback`, if any.
    private(set) var fallback: Handler?

    /// `addRaw` for a closure that needs no instance state.
    public mutating func addRaw(
        _ name: String,
        _ handler: @escaping (String, CallContext) throws -> String
    ) {
        addRaw(name) { _, input, call in try handler(input, call) }
    }
}

/// A DecodingError of an operation's input, told apart from one the handler
/// itself throws (which is an internal error).
struct InputDecodingFailure: Error {
    let error: DecodingError
}

private func decodeInput<Input: Decodable>(_ type: Input.Type, _ bytes: UnsafeRawBufferPointer) throws -> Input {
    do {
        return try JSONCoding.decode(type, from: bytes)
    } catch let error as DecodingError {
        throw InputDecodingFailure(error: error)
    }
}

private func encodeOutput<Output: Encodable>(_ output: Output, _ operation: String) throws -> [UInt8] {
    do {
        return Array(try JSONCoding.encode(output))
    } catch {
        throw DriverError.invalidOutput("could not encode the output of \(operation): \(error)")
    }
}
