import LLMOSJSON
import Yams

// Reading a tool's `ffi` section (docs/FFI.md) and the driver-wide rules of an ffi
// manifest. Every problem names the file, line and field, like the rest of the parser.

extension ManifestParser.Reader {
    static let ffiKeys = ["symbol", "args", "returns", "variadic"]
    static let ffiArgumentKeys = ["name", "type", "description", "default", "max_bytes", "length_of", "size_of", "size", "encoding", "as"]
    static let ffiTypeNames: [String] = FFIScalar.allCases.map(\.rawValue) + ["string", "buffer", "out_buffer"]

    /// `field` is "tools[3].ffi".
    mutating func ffiSignature(_ node: Node, _ field: String) -> FFISignature? {
        guard let pairs = mapping(node, field) else { return nil }
        var fields: [String: Node] = [:]
        for (key, value) in pairs {
            fields[key] = value
            if !Self.ffiKeys.contains(key) {
                // An ignored key here could be a dropped part of the signature: refuse it.
                let near = NearestNames.nearest(to: key, in: Self.ffiKeys, limit: 1)
                error("\(field).\(key)", value, "unknown key" + (near.isEmpty ? "" : " (did you mean \(near[0])?)") + "; ffi takes symbol, args, returns and variadic")
            }
        }
        let errorsBefore = errors.count
        if let v = fields["variadic"], bool(v, "\(field).variadic") == true {
            error("\(field).variadic", v, "variadic functions cannot be tools: the arguments a variadic C function reads depend on the values of others, so the kernel cannot check or pass them; wrap it in a C function with fixed arguments")
        }
        let symbol = string(fields["symbol"], "\(field).symbol", parent: node) ?? ""
        if fields["symbol"] != nil && !symbol.isEmpty {
            if !Self.isCSymbol(symbol) {
                error("\(field).symbol", fields["symbol"], "\"\(symbol)\" is not a C symbol name (letters, digits and _, not starting with a digit)")
            } else if let refusal = FFISymbolRules.refusal(symbol) {
                error("\(field).symbol", fields["symbol"], refusal)
            }
        } else if fields["symbol"] != nil {
            error("\(field).symbol", fields["symbol"], "must not be empty; expected the C function's name as the library exports it")
        }
        let returns = ffiReturn(fields["returns"], "\(field).returns", parent: node)
        var arguments: [FFIArgument] = []
        if let argsNode = fields["args"], !isNull(argsNode) {
            if case .sequence(let items) = argsNode {
                for (i, item) in items.enumerated() {
                    if let argument = ffiArgument(item, "\(field).args[\(i)]") { arguments.append(argument) }
                }
                checkReferences(arguments, Array(items), "\(field).args")
            } else {
                error("\(field).args", argsNode, "expected a list of the C function's parameters in order, got \(kind(argsNode))")
            }
        } else if fields["args"] == nil {
            error("\(field).args", node, "missing; expected the C function's parameters in order (args: [] for a function of no arguments)")
        }
        guard errors.count == errorsBefore, let returns else { return nil }
        return FFISignature(symbol: symbol, arguments: arguments, returns: returns)
    }

    static func isCSymbol(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(48...57).contains(first) else { return false }
        return name.utf8.allSatisfy { $0 == UInt8(ascii: "_") || (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) }
    }

    /// "unsigned long" and "unsigned_long" are the same spelling.
    static func normalizedType(_ raw: String) -> String {
        raw.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: "_")
    }

    mutating func unknownType(_ raw: String, _ field: String, _ node: Node?, returns: Bool) {
        if raw.contains("*") {
            error(field, node, "pointer types are not supported: use string for a const char * argument, buffer (with a length_of argument) for bytes the function reads, out_buffer for bytes it writes" + (returns ? ", and string for a returned const char *" : ""))
            return
        }
        let known = returns ? ["void"] + FFIScalar.allCases.map(\.rawValue) + ["string"] : Self.ffiTypeNames
        let near = NearestNames.nearest(to: raw, in: known + FFIScalar.aliases.keys.sorted(), limit: 1)
        error(field, node, "unknown type \"\(raw)\"" + (near.isEmpty ? "" : " (did you mean \(near[0])?)") + "; known: \(known.joined(separator: ", ")) (and the C names int, unsigned int, long, unsigned long, size_t, ...)")
    }

    mutating func ffiReturn(_ node: Node?, _ field: String, parent: Node) -> FFIReturn? {
        guard let node else {
            error(field, parent, "missing; expected the C return type (void, int32, double, string, ...)")
            return nil
        }
        guard let raw = string(node, field) else { return nil }
        let name = Self.normalizedType(raw)
        if name == "void" { return .void }
        if name == "string" { return .string }
        if let scalar = FFIScalar(rawValue: name) ?? FFIScalar.aliases[name] { return .scalar(scalar) }
        if name == "buffer" || name == "out_buffer" {
            error(field, node, "a function cannot return a \(name): return its bytes through an out_buffer argument")
            return nil
        }
        unknownType(raw, field, node, returns: true)
        return nil
    }

    mutating func ffiArgument(_ node: Node, _ field: String) -> FFIArgument? {
        guard let pairs = mapping(node, field) else { return nil }
        var f: [String: Node] = [:]
        for (key, value) in pairs {
            f[key] = value
            if !Self.ffiArgumentKeys.contains(key) {
                let near = NearestNames.nearest(to: key, in: Self.ffiArgumentKeys, limit: 1)
                error("\(field).\(key)", value, "unknown key" + (near.isEmpty ? "" : " (did you mean \(near[0])?)") + "; an argument takes \(Self.ffiArgumentKeys.joined(separator: ", "))")
            }
        }
        let errorsBefore = errors.count
        guard let rawType = string(f["type"], "\(field).type", parent: node) else { return nil }
        let typeName = Self.normalizedType(rawType)
        let scalar = FFIScalar(rawValue: typeName) ?? FFIScalar.aliases[typeName]
        let name = f["name"].flatMap { string($0, "\(field).name") }
        if let name, !ManifestParser.Reader.isValidName(name) {
            error("\(field).name", f["name"], "\"\(name)\" is not a valid argument name: use lowercase letters, digits and _ (starting with a letter), as in the C prototype")
        }
        let description = f["description"].flatMap { string($0, "\(field).description") }

        func refuseKey(_ key: String, _ why: String) {
            if let v = f[key] { error("\(field).\(key)", v, why) }
        }

        var kind: FFIArgumentKind
        if let target = f["length_of"] ?? f["size_of"] {
            let key = f["length_of"] != nil ? "length_of" : "size_of"
            if f["length_of"] != nil && f["size_of"] != nil { error("\(field).size_of", f["size_of"], "an argument is either a length_of or a size_of, not both") }
            guard let scalar, scalar.isInteger else {
                error("\(field).type", f["type"], "a \(key) argument is filled in by the kernel with a byte count, so its type must be an integer type (size_t, uint32, ...), got \"\(rawType)\"")
                return nil
            }
            guard let referenced = string(target, "\(field).\(key)") else { return nil }
            refuseKey("name", "a \(key) argument is filled in by the kernel, not by the caller, so it takes no name")
            for k in ["default", "max_bytes", "size", "encoding", "as"] { refuseKey(k, "does not apply to a \(key) argument") }
            kind = key == "length_of" ? .lengthOf(referenced, scalar) : .sizeOf(referenced, scalar)
        } else {
            if name == nil {
                error("\(field).name", node, "missing; expected the argument's name as in the C prototype (it becomes the input field)")
            }
            if let scalar {
                kind = .scalar(scalar)
            } else {
                switch typeName {
                case "string": kind = .string
                case "buffer":
                    var encoding = FFIBufferEncoding.utf8
                    if let e = f["encoding"] {
                        encoding = FFIBufferEncoding(rawValue: oneOf(e, "\(field).encoding", FFIBufferEncoding.allCases.map(\.rawValue), default: "utf8")) ?? .utf8
                    }
                    kind = .buffer(encoding)
                case "out_buffer":
                    var format = FFIOutFormat.string
                    if let a = f["as"] {
                        format = FFIOutFormat(rawValue: oneOf(a, "\(field).as", FFIOutFormat.allCases.map(\.rawValue), default: "string")) ?? .string
                    }
                    var size = 0
                    if let s = f["size"] {
                        size = integer(s, "\(field).size", range: 1...FFISignature.maxOutBufferBytes) ?? 0
                    } else {
                        error("\(field).size", node, "missing; an out_buffer needs its size in bytes (the kernel allocates and zeroes it for each call)")
                    }
                    kind = .outBuffer(size: size, format: format)
                case "void":
                    error("\(field).type", f["type"], "void is only a return type; a function of no arguments has args: []")
                    return nil
                default:
                    unknownType(rawType, "\(field).type", f["type"], returns: false)
                    return nil
                }
            }
            if typeName != "buffer" { refuseKey("encoding", "only a buffer argument has an encoding") }
            if typeName != "out_buffer" {
                refuseKey("as", "only an out_buffer argument has an output format (as)")
                refuseKey("size", "only an out_buffer argument has a size (a string's or buffer's length comes from the input; limit it with max_bytes)")
            }
        }

        var maxBytes = FFISignature.defaultMaxBytes
        if let m = f["max_bytes"] {
            switch kind {
            case .string, .buffer: maxBytes = integer(m, "\(field).max_bytes", range: 0...(1 << 30)) ?? maxBytes
            default: error("\(field).max_bytes", m, "only a string or buffer argument has max_bytes")
            }
        }

        var defaultValue: JSONValue?
        if let d = f["default"] {
            if case .outBuffer = kind {
                error("\(field).default", d, "an out_buffer is written by the function; it has no default")
            } else if let value = json(d, "\(field).default") {
                if let problem = FFIValues.check(value, kind: kind, maxBytes: maxBytes) {
                    error("\(field).default", d, "the default \(value.serialized()) does not fit: \(problem)")
                } else {
                    defaultValue = value
                }
            }
        }
        guard errors.count == errorsBefore else { return nil }
        return FFIArgument(name: name, kind: kind, description: description, defaultValue: defaultValue, maxBytes: maxBytes)
    }

    /// Names are unique; every length_of/size_of names an argument of the right kind; every
    /// buffer has its length passed (a C function cannot know it otherwise).
    mutating func checkReferences(_ arguments: [FFIArgument], _ items: [Node], _ field: String) {
        guard arguments.count == items.count else { return }   // errors already reported
        var seen: [String: Int] = [:]
        for (i, argument) in arguments.enumerated() {
            guard let name = argument.name else { continue }
            if let first = seen[name] {
                error("\(field)[\(i)].name", items[i], "\"\(name)\" is declared twice (first as \(field)[\(first)])")
            }
            seen[name] = i
        }
        var lengthPassed = Set<String>()
        for (i, argument) in arguments.enumerated() {
            switch argument.kind {
            case .lengthOf(let target, _):
                guard let j = seen[target] else {
                    error("\(field)[\(i)].length_of", items[i], "names no argument \"\(target)\"" + NearestNames.suggestion(for: target, in: seen.keys))
                    continue
                }
                switch arguments[j].kind {
                case .string, .buffer: lengthPassed.insert(target)
                default: error("\(field)[\(i)].length_of", items[i], "\"\(target)\" is \(FFISignature.describe(arguments[j].kind)); length_of names a string or buffer argument")
                }
            case .sizeOf(let target, _):
                guard let j = seen[target] else {
                    error("\(field)[\(i)].size_of", items[i], "names no argument \"\(target)\"" + NearestNames.suggestion(for: target, in: seen.keys))
                    continue
                }
                if case .outBuffer = arguments[j].kind {} else {
                    error("\(field)[\(i)].size_of", items[i], "\"\(target)\" is \(FFISignature.describe(arguments[j].kind)); size_of names an out_buffer argument")
                }
            default: break
            }
        }
        for (i, argument) in arguments.enumerated() {
            if case .buffer = argument.kind, let name = argument.name, !lengthPassed.contains(name) {
                error("\(field)[\(i)]", items[i], "the buffer \(name) has no length argument: add {type: size_t, length_of: \(name)} where the C function takes its length")
            }
            if argument.name == FFISignature.resultKey, case .outBuffer = argument.kind {
                error("\(field)[\(i)].name", items[i], "an out_buffer may not be named \"result\": that output field holds the return value")
            }
        }
    }

    /// The rules for a whole ffi manifest (some tool has an `ffi` section): checked after
    /// the fields are read, with `fields` the raw top-level nodes.
    mutating func checkFFIDriver(_ fields: [String: Node], _ operations: [OperationSpec],
                                 deviceClass: DeviceClass, isolation: Isolation) {
        guard operations.contains(where: { $0.ffi != nil }) else { return }
        var operationItems: [Node] = []
        if let list = fields[deviceClass.operationsKey], case .sequence(let items) = list { operationItems = Array(items) }
        if deviceClass != .tool {
            error("class", fields["class"], "an ffi driver is a set of tools: its class must be tool, got \(deviceClass)")
        }
        for (i, operation) in operations.enumerated() where operation.ffi == nil {
            error("tools[\(i)]", i < operationItems.count ? operationItems[i] : nil, "every tool of an ffi driver needs an ffi section: the library is a plain C library with no llmos entry point to call \(operation.name) through")
        }
        if isolation == .process {
            error("isolation", fields["isolation"], "an ffi driver cannot run isolated: the sandboxed helper hosts libraries through llmos_driver_entry_v1, which a plain C library does not have; use isolation: in-process (the library then runs inside the host: trust it as you trust llmos), or wrap the functions in a C driver")
        }
        if let library = fields["library"], case .mapping(let map) = library {
            for (key, value) in map where key.string == "entry" {
                error("library.entry", value, "an ffi driver has no entry point (the kernel calls the tools' symbols through libffi); remove library.entry")
            }
        }
        if let config = fields["config"], !isNull(config) {
            error("config", config, "an ffi driver takes no configuration: there is no create function to pass it to; give defaults in ffi.args instead")
        }
    }
}

/// Checks and conversions of JSON values for ffi arguments, shared by the manifest
/// (defaults) and the call path.
enum FFIValues {
    /// Why `value` cannot be passed as an argument of `kind`, or nil.
    static func check(_ value: JSONValue, kind: FFIArgumentKind, maxBytes: Int) -> String? {
        switch kind {
        case .scalar(let scalar):
            switch scalar {
            case .bool:
                return value.boolValue == nil ? "a C bool takes true or false, got \(value.typeName)" : nil
            case .float, .double:
                guard let d = value.doubleValue else { return "a C \(scalar.rawValue) takes a number, got \(value.typeName)" }
                if scalar == .float && abs(d) > Double(Float.greatestFiniteMagnitude) {
                    return "a C float holds at most ±\(Float.greatestFiniteMagnitude), got \(d)"
                }
                return nil
            default:
                return integerProblem(value, scalar)
            }
        case .string, .buffer:
            guard let s = value.stringValue else { return "expected a string, got \(value.typeName)" }
            if kind == .string && s.utf8.contains(0) { return "a C string cannot contain a NUL character (\\u0000): the function would see only the text before it" }
            if kind == .buffer(.base64), base64Decode(s) == nil { return "expected base64 text (A-Z, a-z, 0-9, +, /, = padding)" }
            let count = kind == .buffer(.base64) ? (base64Decode(s)?.count ?? 0) : s.utf8.count
            if count > maxBytes { return "it is \(count) bytes, over the limit of \(maxBytes) (max_bytes)" }
            return nil
        default:
            return nil
        }
    }

    static func integerProblem(_ value: JSONValue, _ scalar: FFIScalar) -> String? {
        guard let i = value.int64Value else {
            if case .double(let d) = value, d.rounded() == d, d.isFinite {
                return "a C \(scalar.rawValue) is an integer \(scalar.rangeText), got \(value.serialized())"
            }
            return "a C \(scalar.rawValue) takes an integer \(scalar.rangeText), got \(value.typeName == "number" ? value.serialized() : value.typeName)"
        }
        guard scalar.integerRange.contains(i) else {
            return "a C \(scalar.rawValue) is an integer \(scalar.rangeText), got \(i)"
        }
        return nil
    }

    static let base64Alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Strict base64 (RFC 4648, padding optional, no whitespace); nil when malformed.
    static func base64Decode(_ text: String) -> [UInt8]? {
        var table = [Int16](repeating: -1, count: 256)
        for (i, c) in base64Alphabet.enumerated() { table[Int(c)] = Int16(i) }
        var bytes = Array(text.utf8)
        while bytes.last == UInt8(ascii: "=") { bytes.removeLast() }
        if text.utf8.count - bytes.count > 2 || bytes.count % 4 == 1 { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 3 / 4)
        var accumulator = 0, bits = 0
        for c in bytes {
            let v = table[Int(c)]
            if v < 0 { return nil }
            accumulator = (accumulator << 6) | Int(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((accumulator >> bits) & 0xFF))
            }
        }
        return out
    }

    static func base64Encode(_ bytes: UnsafeRawBufferPointer) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let b0 = Int(bytes[i]), b1 = i + 1 < bytes.count ? Int(bytes[i + 1]) : 0, b2 = i + 2 < bytes.count ? Int(bytes[i + 2]) : 0
            out.append(base64Alphabet[b0 >> 2])
            out.append(base64Alphabet[((b0 & 3) << 4) | (b1 >> 4)])
            out.append(i + 1 < bytes.count ? base64Alphabet[((b1 & 15) << 2) | (b2 >> 6)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? base64Alphabet[b2 & 63] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hexEncode(_ bytes: UnsafeRawBufferPointer) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
