import LLMOSJSON

// The C signature of a zero-code (ffi) tool, as its manifest declares it (docs/FFI.md).
// Parsed by ManifestParser (FFIManifest.swift), compiled for libffi at load (FFIFunction.swift).

/// A C scalar type an ffi argument or result may have. LP64 Linux only: `long` is 64 bits.
public enum FFIScalar: String, Sendable, CaseIterable {
    case int8, int16, int32, int64, uint8, uint16, uint32, uint64, float, double, bool

    /// C spellings accepted in manifests for the same types (LP64: long and size_t are 64 bits).
    static let aliases: [String: FFIScalar] = [
        "char": .int8, "signed_char": .int8, "unsigned_char": .uint8,
        "short": .int16, "unsigned_short": .uint16,
        "int": .int32, "unsigned": .uint32, "unsigned_int": .uint32, "uint": .uint32,
        "long": .int64, "unsigned_long": .uint64, "ulong": .uint64,
        "long_long": .int64, "unsigned_long_long": .uint64,
        "size_t": .uint64, "ssize_t": .int64, "intptr_t": .int64, "uintptr_t": .uint64,
        "_Bool": .bool,
    ]

    var isInteger: Bool { self != .float && self != .double && self != .bool }
    var isSigned: Bool { [.int8, .int16, .int32, .int64].contains(self) }

    /// The range of an integer type, as Int64 bounds (uint64's top is Int64.max: JSON numbers
    /// above it arrive as doubles and cannot be passed exactly, see docs/FFI.md).
    var integerRange: ClosedRange<Int64> {
        switch self {
        case .int8: return Int64(Int8.min)...Int64(Int8.max)
        case .int16: return Int64(Int16.min)...Int64(Int16.max)
        case .int32: return Int64(Int32.min)...Int64(Int32.max)
        case .int64: return Int64.min...Int64.max
        case .uint8: return 0...Int64(UInt8.max)
        case .uint16: return 0...Int64(UInt16.max)
        case .uint32: return 0...Int64(UInt32.max)
        case .uint64: return 0...Int64.max
        default: return 0...0
        }
    }

    /// "from -128 to 127", for messages and schema descriptions.
    var rangeText: String {
        if self == .uint64 { return "from 0 to \(Int64.max) (larger uint64 values cannot be written exactly as JSON numbers)" }
        return "from \(integerRange.lowerBound) to \(integerRange.upperBound)"
    }

    /// The JSON Schema type an argument of this C type takes.
    var jsonType: String {
        switch self {
        case .bool: return "boolean"
        case .float, .double: return "number"
        default: return "integer"
        }
    }

    /// A short phrase for schema descriptions: "C int8, from -128 to 127".
    var schemaHint: String {
        isInteger ? "C \(rawValue), an integer \(rangeText)" : "C \(rawValue)"
    }
}

/// How the bytes of a `buffer` argument are written in the JSON input.
public enum FFIBufferEncoding: String, Sendable, CaseIterable {
    /// The string's UTF-8 bytes (no terminating NUL is added or counted).
    case utf8
    /// The string is base64 text; the function receives the decoded bytes.
    case base64
}

/// How an `out_buffer`'s bytes are returned in the output object.
public enum FFIOutFormat: String, Sendable, CaseIterable {
    /// The bytes up to the first NUL (all of them if there is none), as UTF-8 text
    /// (invalid sequences become U+FFFD).
    case string
    case hex
    case base64
}

/// One C parameter, in order.
public enum FFIArgumentKind: Sendable, Equatable {
    /// A scalar read from the input field of the argument's name.
    case scalar(FFIScalar)
    /// `const char *`: the input string, NUL-terminated (a NUL inside is refused).
    case string
    /// `const void *`: the bytes of the input string (its length goes in a `length_of` parameter).
    case buffer(FFIBufferEncoding)
    /// An integer parameter that receives the byte length of the named string or buffer argument.
    case lengthOf(String, FFIScalar)
    /// `void *` / `char *`: a zeroed buffer of `size` bytes the kernel owns for the call;
    /// what the function writes is returned under the argument's name.
    case outBuffer(size: Int, format: FFIOutFormat)
    /// An integer parameter that receives the declared size of the named out buffer.
    case sizeOf(String, FFIScalar)
}

public struct FFIArgument: Sendable, Equatable {
    /// The input field (or output field, for an out buffer); nil for `length_of` / `size_of`.
    public var name: String?
    public var kind: FFIArgumentKind
    public var description: String?
    /// Used when the caller leaves the field out (the argument is then optional).
    public var defaultValue: JSONValue?
    /// For strings and buffers: the most bytes a caller may pass.
    public var maxBytes: Int

    /// Whether the caller supplies this parameter as an input field.
    public var isInput: Bool {
        switch kind {
        case .scalar, .string, .buffer: return true
        default: return false
        }
    }
}

public enum FFIReturn: Sendable, Equatable {
    case void
    case scalar(FFIScalar)
    /// `const char *` to storage the function keeps (static, or inside the library):
    /// copied, never freed. NULL is returned as JSON null.
    case string
}

/// A tool's C signature: the function the kernel calls through libffi.
public struct FFISignature: Sendable, Equatable {
    public var symbol: String
    public var arguments: [FFIArgument]
    public var returns: FFIReturn

    public static let defaultMaxBytes = 16 << 20
    public static let maxOutBufferBytes = 16 << 20

    /// The output field that holds the return value.
    public static let resultKey = "result"

    var inputArguments: [FFIArgument] { arguments.filter(\.isInput) }

    /// The input schema derived from the signature: one property per input argument, named as
    /// in the manifest; arguments without a default are required; nothing else is accepted.
    public var derivedInputSchema: JSONValue {
        var properties = JSONObject()
        var required: [JSONValue] = []
        for argument in inputArguments {
            guard let name = argument.name else { continue }
            var property = JSONObject()
            let hint: String
            switch argument.kind {
            case .scalar(let scalar):
                property["type"] = .string(scalar.jsonType)
                hint = scalar.schemaHint
            case .string:
                property["type"] = .string("string")
                hint = "C string"
            case .buffer(let encoding):
                property["type"] = .string("string")
                hint = encoding == .base64 ? "bytes, as base64" : "bytes, as UTF-8 text"
            default:
                continue
            }
            property["description"] = .string(argument.description.map { "\($0) (\(hint))" } ?? hint)
            if let value = argument.defaultValue { property["default"] = value } else { required.append(.string(name)) }
            properties[name] = .object(property)
        }
        var schema: JSONObject = ["type": "object", "properties": .object(properties)]
        if !required.isEmpty { schema["required"] = .array(required) }
        schema["additionalProperties"] = false
        return .object(schema)
    }

    /// Why an explicit `input_schema` does not fit this signature (the schema path and the
    /// reason), or nil when it does. The schema may say more (descriptions, tighter bounds),
    /// never something else: the same properties, each of its argument's JSON type, every
    /// argument without a default required, and no other fields accepted.
    func disagreement(with schema: JSONValue) -> (path: String, message: String)? {
        guard let object = schema.objectValue else {
            return ("", "must be an object schema with one property per C argument, like the one derived from ffi.args (leave input_schema out to have it derived)")
        }
        let properties = object["properties"]?.objectValue ?? JSONObject()
        let inputs = inputArguments
        let names = inputs.compactMap(\.name)
        for (key, _) in properties where !names.contains(key) {
            return ("properties.\(key)", "the C function has no argument \"\(key)\" (ffi.args names: \(names.isEmpty ? "none" : names.joined(separator: ", "))); the schema must describe exactly the signature")
        }
        let required = Set((object["required"]?.arrayValue ?? []).compactMap(\.stringValue))
        for argument in inputs {
            guard let name = argument.name else { continue }
            guard let property = properties[name] else {
                return ("properties", "missing the property \"\(name)\" for the C argument \(name); every argument in ffi.args must be described")
            }
            let expected: String
            switch argument.kind {
            case .scalar(let scalar): expected = scalar.jsonType
            default: expected = "string"
            }
            let declared = property["type"]?.stringValue
            let acceptable = expected == "number" ? ["number", "integer"] : [expected]
            guard let declared, acceptable.contains(declared) else {
                return ("properties.\(name).type", "the C argument \(name) is \(Self.describe(argument.kind)), so its property must have type: \(expected)" + (declared.map { ", not \($0)" } ?? " (it declares no single type)"))
            }
            if argument.defaultValue == nil && !required.contains(name) {
                return ("required", "the C argument \(name) has no default, so it must be listed in required (or give it a default in ffi.args)")
            }
        }
        if object["additionalProperties"] != .bool(false) {
            return ("additionalProperties", "must be false: a misspelt argument must be refused, not silently left at its default")
        }
        return nil
    }

    static func describe(_ kind: FFIArgumentKind) -> String {
        switch kind {
        case .scalar(let s): return "a C \(s.rawValue)"
        case .string: return "a C string"
        case .buffer: return "a byte buffer"
        case .lengthOf(_, let s): return "a \(s.rawValue) length"
        case .outBuffer: return "an output buffer"
        case .sizeOf(_, let s): return "a \(s.rawValue) size"
        }
    }
}

/// Symbols a manifest may not name, and why. This guards against mistakes a manifest can
/// make by construction (a function that never returns, or reads arguments the kernel
/// cannot know about), and keeps a capability-free-looking manifest from running programs.
/// It is not a sandbox: an in-process library can do anything the host can (docs/FFI.md).
enum FFISymbolRules {
    /// Variadic (or va_list) functions: how many arguments they read, and of what type,
    /// depends on the values of others, which no fixed signature can describe.
    static let variadic: Set<String> = [
        "printf", "fprintf", "dprintf", "sprintf", "snprintf", "asprintf",
        "vprintf", "vfprintf", "vdprintf", "vsprintf", "vsnprintf", "vasprintf",
        "scanf", "fscanf", "sscanf", "vscanf", "vfscanf", "vsscanf",
        "wprintf", "fwprintf", "swprintf", "wscanf", "fwscanf", "swscanf",
        "syslog", "vsyslog", "verr", "verrx", "vwarn", "vwarnx", "open", "openat", "open64", "openat64", "fcntl", "fcntl64", "ioctl",
        "prctl", "syscall", "execl", "execlp", "execle", "mremap", "ulimit", "strfmon",
        "curl_easy_setopt", "curl_easy_getinfo", "curl_multi_setopt", "curl_share_setopt",
        "sqlite3_config", "sqlite3_db_config", "sqlite3_mprintf", "sqlite3_snprintf", "sqlite3_test_control",
    ]

    /// Functions that never return to the kernel, or return twice: the call could not finish.
    static let noReturn: Set<String> = [
        "exit", "_exit", "_Exit", "quick_exit", "abort", "longjmp", "siglongjmp", "_longjmp",
        "setjmp", "sigsetjmp", "_setjmp", "pthread_exit", "thrd_exit", "__assert_fail",
    ]

    /// Functions that run other programs or duplicate the host: they would bypass the `exec`
    /// capability from a manifest that requests nothing.
    static let processControl: Set<String> = [
        "system", "popen", "fork", "vfork", "clone", "execv", "execve", "execvp", "execvpe", "fexecve",
        "posix_spawn", "posix_spawnp", "daemon", "dlopen", "dlmopen", "dlsym", "dlvsym",
    ]

    /// Why `symbol` cannot be a tool, or nil.
    static func refusal(_ symbol: String) -> String? {
        if variadic.contains(symbol) {
            return "\(symbol) is variadic (it takes \"...\" or a va_list): the arguments it reads depend on the values of others, so no fixed signature can describe a call to it; wrap it in a C function with fixed arguments"
        }
        if noReturn.contains(symbol) {
            return "\(symbol) does not return normally to its caller, so the kernel could never finish the call"
        }
        if processControl.contains(symbol) {
            return "\(symbol) runs programs, loads code or duplicates the host process; an ffi tool may not, because it would bypass the exec capability. Use the shell driver with an exec grant instead"
        }
        return nil
    }
}
