import CFFI
import CLLMOS
import Glibc
import LLMOSJSON

/// One ffi tool, compiled at load: the function's address (dlsym) and its call
/// interface (ffi_prep_cif, once). Immutable afterwards, so any number of threads may
/// call it at once; whether they do is the manifest's `threading`, as for any driver.
final class FFIFunction: @unchecked Sendable {
    /// The tool's name inside its driver (`pow`), as the kernel passes it as `op`.
    let operation: String
    let signature: FFISignature
    private let address: UnsafeMutableRawPointer
    private let cif: UnsafeMutablePointer<ffi_cif>
    /// Must outlive the cif, which points into it.
    private let argumentTypes: UnsafeMutablePointer<UnsafeMutablePointer<ffi_type>?>
    private let parameters: [Parameter]
    /// Whether any parameter carries bytes (strings, buffers, out buffers): those calls
    /// need an arena; calls with scalars only need none.
    private let carriesBytes: Bool
    /// For the scalar-only fast path: each parameter's input key as bytes, type and default.
    private let scalarKeys: [[UInt8]]
    private let scalarNames: [String]
    private let scalarTypes: [FFIScalar]
    private let scalarFallbacks: [JSONValue?]

    /// How one C parameter is filled for a call.
    private enum Parameter {
        case scalar(FFIScalar, key: String, fallback: JSONValue?)
        case bytes(key: String, isString: Bool, encoding: FFIBufferEncoding, fallback: JSONValue?, maxBytes: Int)
        /// The byte length of parameter `of`, as an integer of type `scalar`.
        case length(of: Int, FFIScalar)
        case out(key: String, size: Int, format: FFIOutFormat)
        case size(of: Int, FFIScalar)
    }

    /// Compiles `signature` for the function at `address`. Errors name the manifest field.
    init(operation: String, signature: FFISignature, address: UnsafeMutableRawPointer, field: String, file: String) throws(LLMOSError) {
        self.operation = operation
        self.signature = signature
        self.address = address
        let arguments = signature.arguments
        var indexOf: [String: Int] = [:]
        for (i, argument) in arguments.enumerated() { if let name = argument.name { indexOf[name] = i } }
        var parameters: [Parameter] = []
        var carriesBytes = false
        for argument in arguments {
            switch argument.kind {
            case .scalar(let scalar):
                parameters.append(.scalar(scalar, key: argument.name ?? "", fallback: argument.defaultValue))
            case .string:
                carriesBytes = true
                parameters.append(.bytes(key: argument.name ?? "", isString: true, encoding: .utf8, fallback: argument.defaultValue, maxBytes: argument.maxBytes))
            case .buffer(let encoding):
                carriesBytes = true
                parameters.append(.bytes(key: argument.name ?? "", isString: false, encoding: encoding, fallback: argument.defaultValue, maxBytes: argument.maxBytes))
            case .outBuffer(let size, let format):
                carriesBytes = true
                parameters.append(.out(key: argument.name ?? "", size: size, format: format))
            case .lengthOf(let target, let scalar):
                parameters.append(.length(of: indexOf[target] ?? 0, scalar))
            case .sizeOf(let target, let scalar):
                parameters.append(.size(of: indexOf[target] ?? 0, scalar))
            }
        }
        self.parameters = parameters
        self.carriesBytes = carriesBytes
        var keys: [[UInt8]] = [], types: [FFIScalar] = [], fallbacks: [JSONValue?] = []
        for argument in arguments {
            if case .scalar(let scalar) = argument.kind {
                keys.append(Array((argument.name ?? "").utf8))
                types.append(scalar)
                fallbacks.append(argument.defaultValue)
            }
        }
        scalarKeys = keys
        scalarNames = keys.map { String(decoding: $0, as: UTF8.self) }
        scalarTypes = types
        scalarFallbacks = fallbacks

        argumentTypes = .allocate(capacity: max(1, arguments.count))
        for (i, argument) in arguments.enumerated() {
            switch argument.kind {
            case .scalar(let s), .lengthOf(_, let s), .sizeOf(_, let s): argumentTypes[i] = Self.ffiType(s)
            case .string, .buffer, .outBuffer: argumentTypes[i] = llmos_ffi_type_pointer()
            }
        }
        let returnType: UnsafeMutablePointer<ffi_type>
        switch signature.returns {
        case .void: returnType = llmos_ffi_type_void()
        case .scalar(let s): returnType = Self.ffiType(s)
        case .string: returnType = llmos_ffi_type_pointer()
        }
        cif = .allocate(capacity: 1)
        cif.initialize(to: ffi_cif())
        let status = llmos_ffi_prep(cif, UInt32(arguments.count), returnType, argumentTypes)
        guard status == llmos_ffi_ok() else {
            cif.deallocate()
            argumentTypes.deallocate()
            throw LLMOSError(.loadFailed, "\(file): \(field): libffi cannot prepare a call to \(signature.symbol) with this signature (ffi_prep_cif returned \(status))")
        }
    }

    deinit {
        cif.deallocate()
        argumentTypes.deallocate()
    }

    static func ffiType(_ scalar: FFIScalar) -> UnsafeMutablePointer<ffi_type> {
        switch scalar {
        case .int8: return llmos_ffi_type_sint8()
        case .int16: return llmos_ffi_type_sint16()
        case .int32: return llmos_ffi_type_sint32()
        case .int64: return llmos_ffi_type_sint64()
        case .uint8: return llmos_ffi_type_uint8()
        case .uint16: return llmos_ffi_type_uint16()
        case .uint32: return llmos_ffi_type_uint32()
        case .uint64: return llmos_ffi_type_uint64()
        case .float: return llmos_ffi_type_float()
        case .double: return llmos_ffi_type_double()
        case .bool: return llmos_ffi_type_bool()
        }
    }

    // MARK: A call

    /// The outcome of one call: the output JSON, or an error for the caller.
    enum Outcome {
        case output(String)
        case failure(LLMOSError.Code, String)
    }

    /// Converts the (already schema-validated) input, calls the function, and builds the
    /// output object: `{"result": R}` plus one field per out buffer.
    func call(_ input: UnsafeRawBufferPointer) -> Outcome {
        if !carriesBytes, case .scalar = signature.returns, let outcome = fastCall(input) { return outcome }
        let object: JSONObject
        do {
            guard let parsed = try JSON.parse(input).objectValue else { return .failure(.invalidArgument, "the input must be a JSON object of the C arguments") }
            object = parsed
        } catch {
            return .failure(.invalidArgument, "the input is not valid JSON: \(error)")
        }
        let count = parameters.count
        return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: max(1, count)) { slots in
            withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer?.self, capacity: max(1, count)) { values in
                let slotBase = UnsafeMutableRawPointer(slots.baseAddress!)
                for i in 0..<count { values[i] = slotBase + i * 8 }
                if !carriesBytes { return callScalars(object, slotBase, values.baseAddress!) }
                return callWithBytes(object, slotBase, values.baseAddress!)
            }
        }
    }

    /// The common case (libm): every parameter a scalar, no allocation beyond the parse.
    private func callScalars(_ object: JSONObject, _ slots: UnsafeMutableRawPointer,
                             _ values: UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> Outcome {
        for (i, parameter) in parameters.enumerated() {
            guard case .scalar(let scalar, let key, let fallback) = parameter else { continue }
            if let problem = store(object[key] ?? fallback, scalar, key: key, into: slots + i * 8) { return problem }
        }
        var result: UInt64 = 0
        llmos_ffi_call(cif, address, &result, values)
        if case .string = signature.returns {
            let pointer = UnsafePointer<CChar>(bitPattern: UInt(result))
            let value: JSONValue = pointer.map { .string(String(cString: $0)) } ?? .null
            return .output(JSONValue.object([FFISignature.resultKey: value]).serialized())
        }
        switch resultText(result) {
        case .success(let text):
            guard let text else { return .output("{}") }
            return .output("{\"result\":" + text + "}")
        case .failure(let failure):
            return failure.outcome
        }
    }

    private func callWithBytes(_ object: JSONObject, _ slots: UnsafeMutableRawPointer,
                               _ values: UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> Outcome {
        // Gather the bytes first, to size one arena for the call.
        var payloads: [[UInt8]?] = Array(repeating: nil, count: parameters.count)
        var arenaSize = 0
        for (i, parameter) in parameters.enumerated() {
            switch parameter {
            case .bytes(let key, let isString, let encoding, let fallback, let maxBytes):
                guard let value = object[key] ?? fallback else { return .failure(.invalidArgument, "missing argument \(key)") }
                let kind: FFIArgumentKind = isString ? .string : .buffer(encoding)
                if let problem = FFIValues.check(value, kind: kind, maxBytes: maxBytes) {
                    return .failure(.invalidArgument, "argument \(key): \(problem)")
                }
                var bytes = encoding == .base64 ? (FFIValues.base64Decode(value.stringValue ?? "") ?? []) : Array((value.stringValue ?? "").utf8)
                let length = bytes.count
                bytes.append(0)   // strings need it; buffers get it too, harmlessly, past their length
                payloads[i] = bytes
                arenaSize += bytes.count
                _ = length
            case .out(_, let size, _):
                arenaSize += size
            default: break
            }
        }
        guard let arena = calloc(1, max(1, arenaSize)) else { return .failure(.resourceExhausted, "out of memory for the call's buffers (\(arenaSize) bytes)") }
        defer { free(arena) }
        var offsets = Array(repeating: 0, count: parameters.count)
        var lengths = Array(repeating: 0, count: parameters.count)
        var cursor = 0
        for (i, parameter) in parameters.enumerated() {
            switch parameter {
            case .scalar(let scalar, let key, let fallback):
                if let problem = store(object[key] ?? fallback, scalar, key: key, into: slots + i * 8) { return problem }
            case .bytes:
                let bytes = payloads[i]!
                bytes.withUnsafeBytes { (arena + cursor).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                offsets[i] = cursor
                lengths[i] = bytes.count - 1
                (slots + i * 8).storeBytes(of: arena + cursor, as: UnsafeMutableRawPointer.self)
                cursor += bytes.count
            case .out(_, let size, _):
                offsets[i] = cursor
                lengths[i] = size
                (slots + i * 8).storeBytes(of: arena + cursor, as: UnsafeMutableRawPointer.self)
                cursor += size
            default: break
            }
        }
        for (i, parameter) in parameters.enumerated() {
            switch parameter {
            case .length(let target, let scalar), .size(let target, let scalar):
                let length = lengths[target]
                guard Int64(length) <= scalar.integerRange.upperBound else {
                    let name = signature.arguments[target].name ?? "?"
                    return .failure(.invalidArgument, "argument \(name) is \(length) bytes, more than its \(scalar.rawValue) length parameter can hold (at most \(scalar.integerRange.upperBound))")
                }
                _ = store(.int(Int64(length)), scalar, key: "", into: slots + i * 8)
            default: break
            }
        }

        var result: UInt64 = 0
        llmos_ffi_call(cif, address, &result, values)

        var output = JSONObject()
        switch resultText(result) {
        case .success(let text):
            if let text {
                if case .string = signature.returns {
                    let pointer = UnsafePointer<CChar>(bitPattern: UInt(result))
                    output[FFISignature.resultKey] = pointer.map { .string(String(cString: $0)) } ?? .null
                } else {
                    // Re-read as a JSONValue so the object serializes in one place.
                    output[FFISignature.resultKey] = (try? JSON.parse(text)) ?? .null
                }
            }
        case .failure(let failure):
            return failure.outcome
        }
        for (i, parameter) in parameters.enumerated() {
            guard case .out(let key, let size, let format) = parameter else { continue }
            let bytes = UnsafeRawBufferPointer(start: arena + offsets[i], count: size)
            switch format {
            case .string:
                let end = bytes.firstIndex(of: 0) ?? size
                output[key] = .string(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<end]), as: UTF8.self))
            case .hex: output[key] = .string(FFIValues.hexEncode(bytes))
            case .base64: output[key] = .string(FFIValues.base64Encode(bytes))
            }
        }
        return .output(JSONValue.object(output).serialized())
    }

    /// The hot path for functions of scalars returning a scalar (libm): the input, already
    /// parsed and validated by the kernel, is a flat object of numbers and booleans, scanned
    /// here without building a JSONValue; the output is written into a stack buffer. Returns
    /// nil for anything it does not handle plainly (an escaped key, a string or null value,
    /// an integer lexeme past Int64): the general path then decides, with its messages.
    private func fastCall(_ input: UnsafeRawBufferPointer) -> Outcome? {
        let count = scalarTypes.count
        guard count <= 16 else { return nil }
        return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 17) { slots -> Outcome? in
            withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer?.self, capacity: 16) { values -> Outcome? in
                let base = UnsafeMutableRawPointer(slots.baseAddress!)
                var seen: UInt32 = 0
                var scanner = FlatScanner(input)
                guard scanner.consume(UInt8(ascii: "{")) else { return nil }
                if !scanner.consume(UInt8(ascii: "}")) {
                    repeat {
                        guard let key = scanner.key() else { return nil }
                        var index = -1
                        for i in 0..<count where scalarKeys[i].withUnsafeBufferPointer({ $0.elementsEqual(key) }) { index = i; break }
                        guard index >= 0, let value = scanner.scalarValue() else { return nil }
                        seen |= 1 << UInt32(index)
                        if let problem = store(value, scalarTypes[index], key: scalarNames[index], into: base + index * 8) {
                            return problem
                        }
                    } while scanner.consume(UInt8(ascii: ","))
                    guard scanner.consume(UInt8(ascii: "}")) else { return nil }
                }
                for i in 0..<count where seen & (1 << UInt32(i)) == 0 {
                    if let problem = store(scalarFallbacks[i], scalarTypes[i], key: scalarNames[i], into: base + i * 8) {
                        return problem
                    }
                }
                for i in 0..<count { values[i] = base + i * 8 }
                var result: UInt64 = 0
                llmos_ffi_call(cif, address, &result, values.baseAddress!)
                return resultObject(result)
            }
        }
    }

    /// `{"result":R}` for a scalar result, built in one small buffer (short results stay
    /// inside the String itself: no allocation).
    private func resultObject(_ raw: UInt64) -> Outcome {
        guard case .scalar(let scalar) = signature.returns else { return .failure(.internalError, "resultObject on a non-scalar") }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 48) { buffer -> Outcome in
            var length = 0
            func put(_ byte: UInt8) { buffer[length] = byte; length += 1 }
            for byte in "{\"result\":".utf8 { put(byte) }
            func putInteger(_ value: UInt64, negative: Bool) {
                if negative { put(UInt8(ascii: "-")) }
                var digits: (UInt64, Int) = (value, 0)
                var scratch: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                              UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0)
                withUnsafeMutableBytes(of: &scratch) { s in
                    repeat {
                        s[digits.1] = UInt8(ascii: "0") + UInt8(digits.0 % 10)
                        digits.0 /= 10
                        digits.1 += 1
                    } while digits.0 > 0
                    for i in stride(from: digits.1 - 1, through: 0, by: -1) { put(s[i]) }
                }
            }
            switch scalar {
            case .double, .float:
                let value = scalar == .double ? Double(bitPattern: raw) : Double(Float(bitPattern: UInt32(truncatingIfNeeded: raw)))
                guard value.isFinite else {
                    if case .failure(let problem) = finite(value, "") { return problem.outcome }
                    return .failure(.internalError, "non-finite")
                }
                if value == value.rounded(), abs(value) < 1e15 {
                    // What Swift's description prints for these ("1024.0"), without the String.
                    putInteger(UInt64(abs(value)), negative: value < 0 || (value == 0 && value.sign == .minus))
                    put(UInt8(ascii: ".")); put(UInt8(ascii: "0"))
                } else {
                    let text = scalar == .double ? "\(value)" : "\(Float(bitPattern: UInt32(truncatingIfNeeded: raw)))"
                    for byte in text.utf8 { put(byte) }
                }
            case .bool:
                for byte in (UInt8(truncatingIfNeeded: raw) != 0 ? "true" : "false").utf8 { put(byte) }
            case .int8: let v = Int64(Int8(truncatingIfNeeded: raw)); putInteger(v.magnitude, negative: v < 0)
            case .int16: let v = Int64(Int16(truncatingIfNeeded: raw)); putInteger(v.magnitude, negative: v < 0)
            case .int32: let v = Int64(Int32(truncatingIfNeeded: raw)); putInteger(v.magnitude, negative: v < 0)
            case .int64: let v = Int64(bitPattern: raw); putInteger(v.magnitude, negative: v < 0)
            case .uint8: putInteger(UInt64(UInt8(truncatingIfNeeded: raw)), negative: false)
            case .uint16: putInteger(UInt64(UInt16(truncatingIfNeeded: raw)), negative: false)
            case .uint32: putInteger(UInt64(UInt32(truncatingIfNeeded: raw)), negative: false)
            case .uint64: putInteger(raw, negative: false)
            }
            put(UInt8(ascii: "}"))
            return .output(String(decoding: UnsafeBufferPointer(rebasing: buffer[0..<length]), as: UTF8.self))
        }
    }

    /// Writes a scalar argument into its slot, with the type and range check.
    @inline(__always)
    private func store(_ value: JSONValue?, _ scalar: FFIScalar, key: String, into slot: UnsafeMutableRawPointer) -> Outcome? {
        guard let value else { return .failure(.invalidArgument, "missing argument \(key)") }
        switch scalar {
        case .double:
            guard let d = value.doubleValue else { return .failure(.invalidArgument, "argument \(key): a C double takes a number, got \(value.typeName)") }
            slot.storeBytes(of: d, as: Double.self)
        case .float:
            guard let d = value.doubleValue, abs(d) <= Double(Float.greatestFiniteMagnitude) else {
                return .failure(.invalidArgument, "argument \(key): " + (FFIValues.check(value, kind: .scalar(.float), maxBytes: 0) ?? "not a float"))
            }
            slot.storeBytes(of: Float(d), as: Float.self)
        case .bool:
            guard let b = value.boolValue else { return .failure(.invalidArgument, "argument \(key): a C bool takes true or false, got \(value.typeName)") }
            slot.storeBytes(of: b ? 1 : 0, as: UInt8.self)
        default:
            guard let i = value.int64Value, scalar.integerRange.contains(i) else {
                return .failure(.invalidArgument, "argument \(key): " + (FFIValues.integerProblem(value, scalar) ?? "out of range"))
            }
            switch scalar {
            case .int8: slot.storeBytes(of: Int8(i), as: Int8.self)
            case .int16: slot.storeBytes(of: Int16(i), as: Int16.self)
            case .int32: slot.storeBytes(of: Int32(i), as: Int32.self)
            case .int64: slot.storeBytes(of: i, as: Int64.self)
            case .uint8: slot.storeBytes(of: UInt8(i), as: UInt8.self)
            case .uint16: slot.storeBytes(of: UInt16(i), as: UInt16.self)
            case .uint32: slot.storeBytes(of: UInt32(i), as: UInt32.self)
            default: slot.storeBytes(of: UInt64(i), as: UInt64.self)
            }
        }
        return nil
    }

    struct ResultProblem: Error {
        var code: LLMOSError.Code
        var message: String
        var outcome: Outcome { .failure(code, message) }
    }

    /// The return value as JSON text (nil for void). `raw` is the ffi_arg-sized result:
    /// libffi widens integers narrower than a register, and stores floats at its start.
    @inline(__always)
    private func resultText(_ raw: UInt64) -> Result<String?, ResultProblem> {
        switch signature.returns {
        case .void: return .success(nil)
        case .string: return .success("")
        case .scalar(let scalar):
            switch scalar {
            case .double: return finite(Double(bitPattern: raw), "\(Double(bitPattern: raw))")
            case .float:
                let f = Float(bitPattern: UInt32(truncatingIfNeeded: raw))
                return finite(Double(f), "\(f)")
            case .bool: return .success(UInt8(truncatingIfNeeded: raw) != 0 ? "true" : "false")
            case .int8: return .success(String(Int8(truncatingIfNeeded: raw)))
            case .int16: return .success(String(Int16(truncatingIfNeeded: raw)))
            case .int32: return .success(String(Int32(truncatingIfNeeded: raw)))
            case .int64: return .success(String(Int64(bitPattern: raw)))
            case .uint8: return .success(String(UInt8(truncatingIfNeeded: raw)))
            case .uint16: return .success(String(UInt16(truncatingIfNeeded: raw)))
            case .uint32: return .success(String(UInt32(truncatingIfNeeded: raw)))
            case .uint64: return .success(String(raw))
            }
        }
    }

    /// JSON has no NaN or infinity: say what happened instead of inventing a value.
    private func finite(_ value: Double, _ text: String) -> Result<String?, ResultProblem> {
        if value.isFinite { return .success(text) }
        let what = value.isNaN ? "NaN (not a number): an argument is probably outside the function's domain" : "\(value < 0 ? "-" : "")infinity: the result overflowed, or an argument is at a pole of the function"
        return .failure(ResultProblem(code: .invalidArgument, message: "\(signature.symbol) returned \(what); JSON cannot represent it"))
    }
}

/// The instance of an ffi driver: its compiled functions. The kernel calls it through the
/// same `llmos_driver.call` slot as any driver, so the call path (gate, validation,
/// limits, threading, audit) is the ordinary one.
final class FFIDriverInstance: @unchecked Sendable {
    let functions: [FFIFunction]
    /// Keyed by the address of the operation string the kernel passes (the tool entry's own
    /// copy of its name, fixed for the life of the driver): a pointer hash, not a string compare.
    private let byOperationPointer: [UnsafeRawPointer: FFIFunction]

    init(functions: [FFIFunction], operationPointers: [(UnsafeRawPointer, FFIFunction)]) {
        self.functions = functions
        var map: [UnsafeRawPointer: FFIFunction] = [:]
        for (pointer, function) in operationPointers { map[pointer] = function }
        byOperationPointer = map
    }

    @inline(__always)
    func function(for op: UnsafePointer<CChar>) -> FFIFunction? {
        if let function = byOperationPointer[UnsafeRawPointer(op)] { return function }
        let name = String(cString: op)
        return functions.first { $0.operation == name }
    }

    /// The `llmos_driver.call` of every ffi driver.
    static let call: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, Int) -> llmos_status = { instance, ctx, op, input, length in
        guard let instance, let op, let state = CallRef.from(ctx) else { return LLMOS_ERR_INVALID_ARGUMENT }
        let driver = Unmanaged<FFIDriverInstance>.fromOpaque(instance).takeUnretainedValue()
        guard let function = driver.function(for: op) else {
            return fail(state, .unsupported, "no ffi function for the operation \(String(cString: op))")
        }
        switch function.call(UnsafeRawBufferPointer(start: input, count: input == nil ? 0 : length)) {
        case .output(let text):
            let limit = state.pointee.tool.driver.manifest.limits.maxOutputBytes
            let count = text.utf8.count
            if count > limit {
                state.pointee.output = nil
                state.pointee.outputRejectedBytes = count
                return LLMOS_ERR_OUTPUT_TOO_LARGE
            }
            state.pointee.output = text
            return LLMOS_OK
        case .failure(let code, let message):
            return fail(state, code, message)
        }
    }

    static let destroy: @convention(c) (UnsafeMutableRawPointer?) -> Void = { instance in
        guard let instance else { return }
        Unmanaged<FFIDriverInstance>.fromOpaque(instance).release()
    }

    private static func fail(_ state: CallRef, _ code: LLMOSError.Code, _ message: String) -> llmos_status {
        state.pointee.errorStatus = code.rawValue
        state.pointee.errorMessage = message
        return code.rawValue
    }
}

/// Reads a flat JSON object of numbers and booleans that the kernel has already parsed and
/// validated. Anything else (escapes, strings, null, nesting, huge integers) makes it give up,
/// and the general path reads the input instead.
struct FlatScanner {
    let bytes: UnsafeRawBufferPointer
    var position = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inline(__always)
    mutating func skipSpace() {
        while position < bytes.count {
            let b = bytes[position]
            guard b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 else { return }
            position += 1
        }
    }

    @inline(__always)
    mutating func consume(_ byte: UInt8) -> Bool {
        skipSpace()
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    /// A key without escapes, and the colon after it.
    mutating func key() -> UnsafeRawBufferPointer.SubSequence? {
        guard consume(UInt8(ascii: "\"")) else { return nil }
        let start = position
        while position < bytes.count, bytes[position] != UInt8(ascii: "\"") {
            if bytes[position] == UInt8(ascii: "\\") { return nil }
            position += 1
        }
        guard position < bytes.count else { return nil }
        let key = bytes[start..<position]
        position += 1
        guard consume(UInt8(ascii: ":")) else { return nil }
        return key
    }

    /// true, false, or a number (an integer lexeme that fits Int64 stays an integer).
    mutating func scalarValue() -> JSONValue? {
        skipSpace()
        guard position < bytes.count else { return nil }
        let first = bytes[position]
        if first == UInt8(ascii: "t") { return literal("true", .bool(true)) }
        if first == UInt8(ascii: "f") { return literal("false", .bool(false)) }
        guard first == UInt8(ascii: "-") || (48...57).contains(first) else { return nil }
        let start = position
        var integral = true
        while position < bytes.count {
            let b = bytes[position]
            if (48...57).contains(b) || b == UInt8(ascii: "-") || b == UInt8(ascii: "+") {
                position += 1
            } else if b == UInt8(ascii: ".") || b == UInt8(ascii: "e") || b == UInt8(ascii: "E") {
                integral = false
                position += 1
            } else {
                break
            }
        }
        let lexeme = bytes[start..<position]
        if integral {
            var value: Int64 = 0
            var negative = false
            for b in lexeme {
                if b == UInt8(ascii: "-") { negative = true; continue }
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int64(b - 48))
                if o1 || o2 { return nil }   // past Int64 (or exactly Int64.min): the general path
                value = a
            }
            return .int(negative ? -value : value)
        }
        guard lexeme.count <= 64 else { return nil }
        return Double(String(decoding: lexeme, as: UTF8.self)).map(JSONValue.double)
    }

    private mutating func literal(_ word: StaticString, _ value: JSONValue) -> JSONValue? {
        let length = word.utf8CodeUnitCount
        guard position + length <= bytes.count else { return nil }
        for i in 0..<length where bytes[position + i] != word.utf8Start[i] { return nil }
        position += length
        return value
    }
}
