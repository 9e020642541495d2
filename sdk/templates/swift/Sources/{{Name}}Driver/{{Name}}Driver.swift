// The {{name}} driver. Each tool in {{name}}.yaml is one operation added in
// `register`; its input and output are Codable types matching the manifest's
// input_schema and output_schema.
import LLMOSDriverSDK

struct {{Name}}Driver: LLMOSToolDriver {
    static let name = "{{name}}"  // must equal `name` in {{name}}.yaml
    static let version = "0.1.0"

    /// One instance per configuration. `context.config` is the configuration
    /// JSON; decode it with `try context.decodeConfig(MyConfig.self)`.
    init(context: DriverContext) throws {}

    static func register(_ tools: inout Router) {
        tools.add("hello", Self.hello)
    }

    // MARK: hello

    struct HelloInput: Decodable {
        var name: String
    }

    struct HelloOutput: Encodable {
        var greeting: String
    }

    /// Runs on a kernel thread, possibly several at once (the manifest says
    /// `threading: concurrent`; say `serialized` if your driver keeps mutable
    /// state). Throw `DriverError.invalidArgument("...")` and friends for errors
    /// the model should see; `call.isCancelled` tells when to give up.
    func hello(_ input: HelloInput, _ call: CallContext) throws -> HelloOutput {
        guard !input.name.allSatisfy(\.isWhitespace) else {
            throw DriverError.invalidArgument("name must not be empty")
        }
        return HelloOutput(greeting: "Hello, \(input.name)!")
    }
}

// The entry point the kernel looks up (the manifest's library.entry). Keep it
// exactly like this; only the type name changes.
@c public func llmos_driver_entry_v1(
    _ host: UnsafePointer<llmos_host>?,
    _ driver: UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?
) -> llmos_status { LLMOSDriverExport.entry({{Name}}Driver.self, host, driver) }
