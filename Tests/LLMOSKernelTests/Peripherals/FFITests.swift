import Foundation
import LLMOSJSON
import Synchronization
import Testing
@testable import LLMOSKernel

/// Zero-code drivers (docs/FFI.md): manifests/libm.yaml and manifests/zlib.yaml over the
/// system's own libm.so.6 and libz.so.1, and Tests/Fixtures/ffi/ffitypes.c (built here with
/// cc) for every argument type. Every call goes through the kernel, as a model's would.
@Suite struct FFITests {
    let kernel: Kernel

    init() throws {
        kernel = makeKernel()
        try kernel.load(manifestAt: Paths.manifests + "/libm.yaml")
        try kernel.load(manifestAt: Paths.manifests + "/zlib.yaml")
        try kernel.load(manifestAt: try FFIFixture.install())
    }

    func result(_ tool: String, _ input: String, in kernel: Kernel? = nil) throws -> JSONValue {
        try JSON.parse(try (kernel ?? self.kernel).call(tool, input: input).output)
    }

    // MARK: libm and zlib

    @Test func libmPowAndFriends() throws {
        #expect(try result("libm.pow", #"{"x":2,"y":10}"#) == ["result": 1024.0])
        #expect(try result("libm.sqrt", #"{"x":2}"#)["result"]?.doubleValue == 2.0.squareRoot())
        #expect(try result("libm.atan2", #"{"y":1,"x":0}"#)["result"]?.doubleValue == Double.pi / 2)
        #expect(try result("libm.fmod", #"{"x":7.5,"y":2}"#)["result"]?.doubleValue == 1.5)
        #expect(try result("libm.hypot", #"{"x":3,"y":4}"#)["result"]?.doubleValue == 5)
        #expect(try result("libm.floor", #"{"x":-1.5}"#)["result"]?.doubleValue == -2)
        #expect(try result("libm.ldexp", #"{"x":3,"exp":4}"#)["result"]?.doubleValue == 48)
        #expect(try result("libm.cos", #"{"x":0}"#)["result"]?.doubleValue == 1)
    }

    @Test func libmSchemaIsDerivedFromThePrototype() throws {
        let pow = try #require(kernel.tool(named: "libm.pow"))
        #expect(pow.inputSchema["properties"]?.objectValue?.map(\.key) == ["x", "y"])
        #expect(pow.inputSchema["required"] == ["x", "y"])
        #expect(pow.inputSchema["additionalProperties"] == false)
        #expect(pow.inputSchema["properties"]?["x"]?["type"] == "number")
        let atan2 = try #require(kernel.tool(named: "libm.atan2"))
        #expect(atan2.inputSchema["properties"]?.objectValue?.map(\.key) == ["y", "x"])
        for name in ["sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "exp", "exp2", "log", "log2",
                     "log10", "pow", "sqrt", "cbrt", "hypot", "floor", "ceil", "round", "trunc", "fmod", "fabs", "atan2"] {
            #expect(kernel.hasTool("libm.\(name)"), "libm.\(name)")
        }
        let info = try #require(kernel.driver(named: "libm"))
        #expect(info.threading == .concurrent)
        #expect(info.libraryPath.hasSuffix("/libm.so.6"))
    }

    @Test func libmBadInputIsRefusedBeforeTheCall() {
        let missing = expectError { try kernel.call("libm.pow", input: #"{"x":2}"#) }
        #expect(missing.code == .invalidArgument)
        #expect(missing.message.contains("missing required field \"y\""), "\(missing.message)")
        let wrongType = expectError { try kernel.call("libm.pow", input: #"{"x":"two","y":1}"#) }
        #expect(wrongType.code == .invalidArgument && wrongType.message.contains("\"x\""), "\(wrongType.message)")
        let extra = expectError { try kernel.call("libm.sqrt", input: #"{"x":2,"z":1}"#) }
        #expect(extra.message.contains("unexpected field \"z\""), "\(extra.message)")
    }

    @Test func nonFiniteResultsAreErrorsNotInventedValues() {
        let nan = expectError { try kernel.call("libm.sqrt", input: #"{"x":-1}"#) }
        #expect(nan.code == .invalidArgument)
        #expect(nan.message == "libm.sqrt: sqrt returned NaN (not a number): an argument is probably outside the function's domain; JSON cannot represent it")
        let infinity = expectError { try kernel.call("libm.exp", input: #"{"x":1000}"#) }
        #expect(infinity.message.contains("exp returned infinity"), "\(infinity.message)")
        let pole = expectError { try kernel.call("libm.log", input: #"{"x":0}"#) }
        #expect(pole.message.contains("log returned -infinity"), "\(pole.message)")
    }

    @Test func zlibChecksums() throws {
        #expect(try result("zlib.crc32", #"{"data":"hello"}"#) == ["result": 907060870])
        #expect(try result("zlib.adler32", #"{"data":"hello"}"#) == ["result": 103547413])   // 0x062C0215
        #expect(try result("zlib.crc32", #"{"data":""}"#) == ["result": 0])
        #expect(try result("zlib.adler32", #"{"data":""}"#) == ["result": 1])
        // The initial value continues a running checksum, as zlib documents.
        let first = try #require(try result("zlib.crc32", #"{"data":"hel"}"#)["result"]?.int64Value)
        #expect(try result("zlib.crc32", #"{"crc":\#(first),"data":"lo"}"#) == ["result": 907060870])
        let adler = try #require(try result("zlib.adler32", #"{"data":"hel"}"#)["result"]?.int64Value)
        #expect(try result("zlib.adler32", #"{"adler":\#(adler),"data":"lo"}"#) == ["result": 103547413])
        // Non-ASCII text is checksummed as its UTF-8 bytes.
        #expect(try result("zlib.crc32", #"{"data":"é"}"#)["result"]?.int64Value == Int64(crc32Reference(Array("é".utf8))))
        let version = try #require(try result("zlib.version", "{}")["result"]?.stringValue)
        #expect(version.hasPrefix("1."))
        let schema = try #require(kernel.tool(named: "zlib.crc32")).inputSchema
        #expect(schema["required"] == ["data"])
        #expect(schema["properties"]?["crc"]?["default"] == 0)
        #expect(try #require(kernel.tool(named: "zlib.adler32")).inputSchema["properties"]?["adler"]?["default"] == 1)
    }

    @Test func zlibRefusesAnInitialValueOutOfRange() {
        let negative = expectError { try kernel.call("zlib.crc32", input: #"{"crc":-1,"data":"x"}"#) }
        #expect(negative.code == .invalidArgument)
        #expect(negative.message.contains("argument crc: a C uint64 is an integer from 0 to"), "\(negative.message)")
    }

    // MARK: Every type, through the fixture library

    @Test func integersOfEveryWidth() throws {
        #expect(try result("ffitypes.add_i8", #"{"a":100,"b":27}"#) == ["result": 127])
        #expect(try result("ffitypes.add_i8", #"{"a":100,"b":28}"#) == ["result": -128])   // C wraps; the kernel reports what C returned
        #expect(try result("ffitypes.add_i16", #"{"a":-32768,"b":1}"#) == ["result": -32767])
        #expect(try result("ffitypes.add_i32", #"{"a":2147483647,"b":-1}"#) == ["result": 2147483646])
        #expect(try result("ffitypes.add_i64", #"{"a":9007199254740993,"b":1}"#) == ["result": 9007199254740994])
        #expect(try result("ffitypes.add_u8", #"{"a":255,"b":0}"#) == ["result": 255])
        #expect(try result("ffitypes.add_u16", #"{"a":65535,"b":0}"#) == ["result": 65535])
        #expect(try result("ffitypes.add_u32", #"{"a":4294967295,"b":0}"#) == ["result": 4294967295])
        #expect(try result("ffitypes.add_u64", #"{"a":9223372036854775807,"b":0}"#) == ["result": 9223372036854775807])
        // A uint64 result above Int64.max is written exactly.
        let big = try kernel.call("ffitypes.add_u64", input: #"{"a":9223372036854775807,"b":9223372036854775807}"#).output
        #expect(big == #"{"result":18446744073709551614}"#)
        // 3.0 is an integer in JSON Schema's sense, and so here.
        #expect(try result("ffitypes.add_i32", #"{"a":3.0,"b":1}"#) == ["result": 4])
    }

    @Test(arguments: [
        ("add_i8", #"{"a":300,"b":0}"#, "argument a: a C int8 is an integer from -128 to 127, got 300"),
        ("add_i8", #"{"a":0,"b":-129}"#, "argument b: a C int8 is an integer from -128 to 127, got -129"),
        ("add_i16", #"{"a":32768,"b":0}"#, "argument a: a C int16 is an integer from -32768 to 32767, got 32768"),
        ("add_i32", #"{"a":2147483648,"b":0}"#, "argument a: a C int32 is an integer from -2147483648 to 2147483647, got 2147483648"),
        ("add_u8", #"{"a":-1,"b":0}"#, "argument a: a C uint8 is an integer from 0 to 255, got -1"),
        ("add_u16", #"{"a":65536,"b":0}"#, "argument a: a C uint16 is an integer from 0 to 65535, got 65536"),
        ("add_u32", #"{"a":4294967296,"b":0}"#, "argument a: a C uint32 is an integer from 0 to 4294967295, got 4294967296"),
        ("add_u64", #"{"a":18446744073709551615,"b":0}"#, "argument a: a C uint64 is an integer from 0 to 9223372036854775807"),
        ("add_i64", #"{"a":1e19,"b":0}"#, "argument a: a C int64 is an integer from"),
        ("scale_f", #"{"x":1e39}"#, "argument x: a C float holds at most"),
    ])
    func rangeChecksNameTheArgumentAndItsRange(tool: String, input: String, expected: String) {
        let error = expectError { try kernel.call("ffitypes.\(tool)", input: input) }
        #expect(error.code == .invalidArgument)
        #expect(error.message.hasPrefix("ffitypes.\(tool): " + expected), "\(error.message)")
    }

    /// Scalar functions read their input with a fast scanner, and fall back to the full
    /// parser for anything unusual; both must give the same answers.
    @Test func fastAndGeneralInputReadingAgree() throws {
        #expect(try result("libm.pow", #"{"x":2,"y":10}"#) == ["result": 1024.0])
        #expect(try result("libm.pow", " {\n \"y\" : 10 ,\t\"x\" : 2.0e0 } ") == ["result": 1024.0])
        #expect(try result("libm.pow", #"{"\u0078":2,"y":10}"#) == ["result": 1024.0])   // an escaped key: the full parser
        #expect(try result("libm.fabs", #"{"x":-0}"#) == ["result": 0.0])
        #expect(try kernel.call("libm.copysign", input: #"{"x":1,"y":-0.0}"#).output == #"{"result":-1.0}"#)
        #expect(try kernel.call("libm.trunc", input: #"{"x":-0.5}"#).output == #"{"result":-0.0}"#)
        #expect(try kernel.call("libm.pow", input: #"{"x":10,"y":20}"#).output == #"{"result":1e+20}"#)
        #expect(try kernel.call("libm.pow", input: #"{"x":2,"y":-2}"#).output == #"{"result":0.25}"#)
        #expect(try result("ffitypes.add_i64", #"{"a":-9223372036854775808,"b":1}"#) == ["result": -9223372036854775807])
        #expect(try result("ffitypes.add_i64", #"{"a":-9223372036854775807,"b":-1}"#) == ["result": .int(Int64.min)])
        #expect(try result("ffitypes.negate", #"{ "b" : true }"#) == ["result": false])
        #expect(try result("ffitypes.scale_f", #"{"x":0.1}"#) == ["result": 0.2])   // float's own shortest form
        #expect(try result("ffitypes.mix", #"{"e":true,"d":0.25,"c":10,"b":0.5,"a":-1}"#) == ["result": 1009.75])
    }

    @Test func fractionsAreNotIntegers() {
        let error = expectError { try kernel.call("ffitypes.add_i32", input: #"{"a":1.5,"b":0}"#) }
        #expect(error.code == .invalidArgument)
        #expect(error.message.contains("\"a\""), "\(error.message)")   // the schema's type: integer says so first
    }

    @Test func floatsDoublesAndBools() throws {
        #expect(try result("ffitypes.scale_f", #"{"x":1.5,"k":3}"#) == ["result": 4.5])
        #expect(try result("ffitypes.scale_f", #"{"x":1.25}"#) == ["result": 2.5])   // k defaults to 2
        #expect(try result("ffitypes.mix", #"{"a":-1,"b":0.5,"c":10,"d":0.25}"#) == ["result": 9.75])
        #expect(try result("ffitypes.mix", #"{"a":-1,"b":0.5,"c":10,"d":0.25,"e":true}"#) == ["result": 1009.75])
        #expect(try result("ffitypes.negate", #"{"b":true}"#) == ["result": false])
        #expect(try result("ffitypes.negate", #"{"b":false}"#) == ["result": true])
        let notBool = expectError { try kernel.call("ffitypes.negate", input: #"{"b":1}"#) }
        #expect(notBool.code == .invalidArgument && notBool.message.contains("\"b\""), "\(notBool.message)")
    }

    @Test func stringsAreNULTerminatedAndBounded() throws {
        #expect(try result("ffitypes.count_bytes", #"{"s":"héllo"}"#) == ["result": 6])
        #expect(try result("ffitypes.count_bytes", #"{"s":""}"#) == ["result": 0])
        let nul = expectError { try kernel.call("ffitypes.count_bytes", input: #"{"s":"a\u0000b"}"#) }
        #expect(nul.code == .invalidArgument)
        #expect(nul.message.contains("argument s: a C string cannot contain a NUL character"), "\(nul.message)")
        let long = expectError { try kernel.call("ffitypes.count_bytes", input: JSONValue.object(["s": .string(String(repeating: "x", count: 65))]).serialized()) }
        #expect(long.code == .invalidArgument)
        #expect(long.message.contains("argument s: it is 65 bytes, over the limit of 64 (max_bytes)"), "\(long.message)")
    }

    @Test func buffersCarryTheirLength() throws {
        // base64 "AQID/w==" is the bytes 1, 2, 3, 255.
        #expect(try result("ffitypes.sum_bytes", #"{"data":"AQID/w=="}"#) == ["result": 261])
        #expect(try result("ffitypes.sum_bytes", #"{"data":""}"#) == ["result": 0])
        let bad = expectError { try kernel.call("ffitypes.sum_bytes", input: #"{"data":"not base64!"}"#) }
        #expect(bad.code == .invalidArgument)
        #expect(bad.message.contains("argument data: expected base64 text"), "\(bad.message)")
    }

    @Test func outBuffersComeBackByName() throws {
        #expect(try result("ffitypes.greet", #"{"name":"Ada"}"#) == ["result": 11, "greeting": "Hello, Ada!"])
        // The function is told the buffer's size and truncates; the output is what it wrote.
        let long = try result("ffitypes.greet", #"{"name":"a very long name indeed, longer than the buffer"}"#)
        #expect(long["greeting"]?.stringValue == "Hello, a very long name indeed,")
        #expect(long["result"]?.int64Value == 55)
        // Bytes as hex: "ab" xor 1 = 0x60 0x63, and the rest of the 4-byte buffer stays zero.
        #expect(try result("ffitypes.xor_bytes", #"{"data":"ab","key":1}"#) == ["out": "60630000"])
    }

    @Test func returnedStrings() throws {
        #expect(try result("ffitypes.library_version", "{}") == ["result": "ffitypes 1.0"])
        #expect(try result("ffitypes.maybe_text", #"{"give":true}"#) == ["result": "here"])
        #expect(try result("ffitypes.maybe_text", #"{"give":false}"#) == ["result": nil])
    }

    @Test func outputOverTheLimitIsRefused() throws {
        let dir = Paths.temporaryDirectory("ffi-limit")
        let manifest = try FFIFixture.install(into: dir) {
            $0.replacingOccurrences(of: "max_output_bytes: 4096", with: "max_output_bytes: 16")
        }
        let small = makeKernel()
        try small.load(manifestAt: manifest)
        let error = expectError { try small.call("ffitypes.greet", input: #"{"name":"Ada"}"#) }
        #expect(error.code == .outputTooLarge)
        #expect(error.message.contains("over the driver's limit of 16 (limits.max_output_bytes)"), "\(error.message)")
    }

    @Test func concurrentCallsOnAConcurrentDriver() throws {
        let kernel = self.kernel
        let failures = Atomic<Int>(0)
        onThreads(4) { t in
            for i in 0..<500 {
                let output = try? kernel.call("libm.pow", input: #"{"x":2,"y":\#(i % 20)}"#).output
                let expected = #"{"result":\#(Double(1 << (i % 20)))}"#
                if output != expected { failures.wrappingAdd(1, ordering: .relaxed) }
                let crc = try? kernel.call("zlib.crc32", input: #"{"data":"hello \#(t)"}"#).output
                if crc == nil { failures.wrappingAdd(1, ordering: .relaxed) }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
    }

    // MARK: The capability layer, the audit log and unloading apply as to any driver

    @Test func aDeniedToolIsRefusedByPolicy() throws {
        let audit = MemoryAuditLog()
        let policy = Policy.builtInDefault.adding([try PolicyParser.rule(fromFlag: "tool.call=libm.pow", action: .deny)])
        let guarded = makeKernel { c in
            c.broker = CapabilityBroker(policy: policy)
            c.audit = audit
        }
        try guarded.load(manifestAt: Paths.manifests + "/libm.yaml")
        let denied = expectError { try guarded.call("libm.pow", input: #"{"x":2,"y":10}"#) }
        #expect(denied.code == .permissionDenied)
        #expect(denied.message == "libm.pow: denied by --deny tool.call=libm.pow")
        #expect(try result("libm.sqrt", #"{"x":16}"#, in: guarded) == ["result": 4.0])
        let records = audit.records
        #expect(records.count >= 2, "\(records)")
        // A top-level call is recorded with the tool as its resource (the caller is the operator).
        #expect(records.contains { $0.capability == "tool.call" && $0.resource == "libm.pow" && $0.decision == .deny && $0.outcome == "permission_denied" })
        #expect(records.contains { $0.capability == "tool.call" && $0.resource == "libm.sqrt" && $0.decision == .allow && $0.outcome == "ok" })
    }

    @Test func unloadAndReload() throws {
        let local = makeKernel()
        try local.load(manifestAt: try FFIFixture.install())
        #expect(try result("ffitypes.add_i32", #"{"a":1,"b":2}"#, in: local) == ["result": 3])
        try local.reload("ffitypes")
        #expect(try result("ffitypes.add_i32", #"{"a":1,"b":2}"#, in: local) == ["result": 3])
        try local.unload("ffitypes")
        #expect(!local.hasTool("ffitypes.add_i32"))
    }

    /// sdk/schemas/manifest.schema.json describes ffi sections as the parser reads them.
    @Test func theFixtureManifestMatchesTheManifestSchema() throws {
        let schema = try JSONSchema(try JSON.parse(try String(contentsOfFile: Paths.repoRoot + "/sdk/schemas/manifest.schema.json", encoding: .utf8)))
        let document = try ManifestParser.document(file: Paths.repoRoot + "/Tests/Fixtures/ffi/ffitypes.yaml")
        #expect(schema.validate(document).isEmpty, "\(schema.validate(document))")
        let variadic = try JSON.parse(#"{"manifest_version": 1, "name": "x", "version": "1", "class": "tool", "abi": {"major": 1}, "library": {"path": "l.so"}, "tools": [{"name": "t", "description": "d", "ffi": {"symbol": "f", "returns": "void", "args": [], "variadic": true}}]}"#)
        #expect(!schema.validate(variadic).isEmpty)
    }

    // MARK: Refusals while reading the manifest

    static func manifest(_ tools: String, extra: String = "") -> String {
        """
        manifest_version: 1
        name: broken
        version: 1.0.0
        class: tool
        abi: {major: 1}
        library: {path: libm.so.6}
        \(extra)
        tools:
        \(tools)
        """
    }

    static func parseError(_ text: String) -> String {
        do {
            _ = try ManifestParser.parse(text: text, file: "/tmp/broken.yaml")
            return "<parsed>"
        } catch {
            return error.message
        }
    }

    @Test(arguments: [
        // An unknown type name, with the nearest known one.
        ("  - {name: f, description: d, ffi: {symbol: sqrt, returns: double, args: [{name: x, type: doubel}]}}",
         "/tmp/broken.yaml:9: tools[0].ffi.args[0].type: unknown type \"doubel\" (did you mean double?); known: int8"),
        ("  - {name: f, description: d, ffi: {symbol: sqrt, returns: dbl, args: [{name: x, type: double}]}}",
         "tools[0].ffi.returns: unknown type \"dbl\""),
        ("  - {name: f, description: d, ffi: {symbol: strlen, returns: size_t, args: [{name: s, type: char *}]}}",
         "tools[0].ffi.args[0].type: pointer types are not supported: use string for a const char * argument"),
        // Variadic functions, declared or known.
        ("  - {name: f, description: d, ffi: {symbol: myprintf, variadic: true, returns: int, args: [{name: s, type: string}]}}",
         "tools[0].ffi.variadic: variadic functions cannot be tools"),
        ("  - {name: f, description: d, ffi: {symbol: printf, returns: int, args: [{name: format, type: string}]}}",
         "tools[0].ffi.symbol: printf is variadic"),
        ("  - {name: f, description: d, ffi: {symbol: system, returns: int, args: [{name: command, type: string}]}}",
         "tools[0].ffi.symbol: system runs programs"),
        ("  - {name: f, description: d, ffi: {symbol: exit, returns: void, args: [{name: status, type: int}]}}",
         "tools[0].ffi.symbol: exit does not return normally"),
        // A signature that does not fit the explicit schema.
        ("""
          - name: f
            description: d
            ffi: {symbol: pow, returns: double, args: [{name: x, type: double}, {name: y, type: double}]}
            input_schema: {type: object, properties: {x: {type: number}, y: {type: string}}, required: [x, y], additionalProperties: false}
        """, "tools[0].input_schema.properties.y.type: does not fit the ffi signature of pow: the C argument y is a C double, so its property must have type: number, not string"),
        ("""
          - name: f
            description: d
            ffi: {symbol: pow, returns: double, args: [{name: x, type: double}, {name: y, type: double}]}
            input_schema: {type: object, properties: {x: {type: number}, z: {type: number}}, required: [x], additionalProperties: false}
        """, "tools[0].input_schema.properties.z: does not fit the ffi signature of pow: the C function has no argument \"z\""),
        ("""
          - name: f
            description: d
            ffi: {symbol: pow, returns: double, args: [{name: x, type: double}, {name: y, type: double}]}
            input_schema: {type: object, properties: {x: {type: number}, y: {type: number}}, required: [x], additionalProperties: false}
        """, "tools[0].input_schema.required: does not fit the ffi signature of pow: the C argument y has no default, so it must be listed in required"),
        ("""
          - name: f
            description: d
            ffi: {symbol: pow, returns: double, args: [{name: x, type: double}, {name: y, type: double}]}
            input_schema: {type: object, properties: {x: {type: number}, y: {type: number}}, required: [x, y]}
        """, "tools[0].input_schema.additionalProperties: does not fit the ffi signature of pow: must be false"),
        // Buffers, lengths, out buffers, defaults.
        ("  - {name: f, description: d, ffi: {symbol: crc32, returns: ulong, args: [{name: data, type: buffer}]}}",
         "tools[0].ffi.args[0]: the buffer data has no length argument: add {type: size_t, length_of: data}"),
        ("  - {name: f, description: d, ffi: {symbol: crc32, returns: ulong, args: [{name: data, type: buffer}, {type: double, length_of: data}]}}",
         "tools[0].ffi.args[1].type: a length_of argument is filled in by the kernel with a byte count, so its type must be an integer type"),
        ("  - {name: f, description: d, ffi: {symbol: crc32, returns: ulong, args: [{name: data, type: buffer}, {type: uint32, length_of: dta}]}}",
         "tools[0].ffi.args[1].length_of: names no argument \"dta\" — did you mean data?"),
        ("  - {name: f, description: d, ffi: {symbol: f, returns: void, args: [{name: out, type: out_buffer}]}}",
         "tools[0].ffi.args[0].size: missing; an out_buffer needs its size in bytes"),
        ("  - {name: f, description: d, ffi: {symbol: f, returns: void, args: [{name: a, type: int8, default: 300}]}}",
         "tools[0].ffi.args[0].default: the default 300 does not fit: a C int8 is an integer from -128 to 127, got 300"),
        ("  - {name: f, description: d, ffi: {symbol: f, returns: void, args: [{name: a, type: int8}, {name: a, type: int8}]}}",
         "tools[0].ffi.args[1].name: \"a\" is declared twice"),
        ("  - {name: f, description: d, ffi: {symbol: f, returns: void, args: [{name: a, type: int8, sise: 3}]}}",
         "tools[0].ffi.args[0].sise: unknown key (did you mean size?)"),
        ("  - {name: f, description: d, ffi: {symbol: f, returns: void}}",
         "tools[0].ffi.args: missing; expected the C function's parameters in order (args: [] for a function of no arguments)"),
        ("  - {name: f, description: d, ffi: {symbol: f, args: []}}",
         "tools[0].ffi.returns: missing; expected the C return type"),
        // Driver-wide rules.
        ("""
          - {name: f, description: d, ffi: {symbol: sqrt, returns: double, args: [{name: x, type: double}]}}
          - {name: g, description: d, input_schema: {type: object}}
        """, "tools[1]: every tool of an ffi driver needs an ffi section"),
    ])
    func manifestRefusalsNameTheFileToolAndField(tools: String, expected: String) {
        let message = Self.parseError(Self.manifest(tools))
        #expect(message.contains(expected), "\(message)")
        #expect(message.hasPrefix("/tmp/broken.yaml:"), "\(message)")
    }

    @Test func driverWideRefusals() {
        let tool = "  - {name: f, description: d, ffi: {symbol: sqrt, returns: double, args: [{name: x, type: double}]}}"
        let isolated = Self.parseError(Self.manifest(tool, extra: "isolation: process"))
        #expect(isolated.contains("isolation: an ffi driver cannot run isolated"), "\(isolated)")
        let entry = Self.parseError(Self.manifest(tool).replacingOccurrences(of: "library: {path: libm.so.6}", with: "library: {path: libm.so.6, entry: llmos_driver_entry_v1}"))
        #expect(entry.contains("library.entry: an ffi driver has no entry point"), "\(entry)")
        let config = Self.parseError(Self.manifest(tool, extra: "config: {type: object}"))
        #expect(config.contains("config: an ffi driver takes no configuration"), "\(config)")
        let cpu = Self.parseError(Self.manifest(tool).replacingOccurrences(of: "class: tool", with: "class: cpu").replacingOccurrences(of: "tools:", with: "operations:"))
        #expect(cpu.contains("class: an ffi driver is a set of tools"), "\(cpu)")
    }

    // MARK: Refusals while loading

    func loadError(_ tools: String, library: String = "libm.so.6") -> LLMOSError {
        let dir = Paths.temporaryDirectory("ffi-refusal")
        let file = dir + "/broken.yaml"
        try? Self.manifest(tools).replacingOccurrences(of: "libm.so.6", with: library).write(toFile: file, atomically: true, encoding: .utf8)
        return expectError { try makeKernel().load(manifestAt: file) }
    }

    @Test func aSymbolThatIsNotThereIsRefusedAtLoad() {
        let error = loadError("  - {name: f, description: d, ffi: {symbol: sqroot, returns: double, args: [{name: x, type: double}]}}")
        #expect(error.code == .notFound)
        #expect(error.message.contains("/broken.yaml: tools[0].ffi.symbol:") && error.message.contains("libm.so.6 does not export sqroot (tool f)"), "\(error.message)")
    }

    @Test func aSymbolOfALinkedLibraryIsRefused() {
        // libz links libc; dlsym would find strlen there, but libz does not define it.
        let error = loadError("  - {name: f, description: d, ffi: {symbol: strlen, returns: size_t, args: [{name: s, type: string}]}}", library: "libz.so.1")
        #expect(error.code == .notFound)
        #expect(error.message.contains("strlen is not defined in") && error.message.contains("libz.so.1"), "\(error.message)")
    }

    @Test func aDataSymbolIsRefused() throws {
        let dir = Paths.temporaryDirectory("ffi-data")
        let manifest = try FFIFixture.install(into: dir) {
            $0 + "  - {name: counter, description: data, ffi: {symbol: ffitypes_counter, returns: int, args: []}}\n"
        }
        let error = expectError { try makeKernel().load(manifestAt: manifest) }
        #expect(error.code == .loadFailed, "\(error.message)")
        #expect(error.message.contains("tools[17].ffi.symbol: ffitypes_counter in") && error.message.contains("is not a function"), "\(error.message)")
    }

    @Test func aMissingLibraryListsWhereItLooked() {
        let error = loadError("  - {name: f, description: d, ffi: {symbol: f, returns: void, args: []}}", library: "libnothere.so.9")
        #expect(error.code == .notFound)
        #expect(error.message.contains("library libnothere.so.9 not found; looked in") && error.message.contains("/usr/lib/x86_64-linux-gnu/libnothere.so.9"), "\(error.message)")
    }

    @Test func forcedIsolationIsRefusedNotIgnored() {
        let kernel = makeKernel { $0.isolation.forced = ["libm"] }
        let error = expectError { try kernel.load(manifestAt: Paths.manifests + "/libm.yaml") }
        #expect(error.code == .unsupported)
        #expect(error.message.contains("libm is an ffi driver") && error.message.contains("cannot run isolated"), "\(error.message)")
    }

    @Test func sha256IsCheckedBeforeMapping() throws {
        let dir = Paths.temporaryDirectory("ffi-sha")
        let manifest = try FFIFixture.install(into: dir) {
            $0.replacingOccurrences(of: "library: {path: libffitypes.so}", with: "library: {path: libffitypes.so, sha256: \(String(repeating: "0", count: 64))}")
        }
        let error = expectError { try makeKernel().load(manifestAt: manifest) }
        #expect(error.code == .loadFailed)
        #expect(error.message.contains("library.sha256:"), "\(error.message)")
    }
}

/// Builds Tests/Fixtures/ffi/ffitypes.c with plain cc (a library with no llmos header).
private enum FFIFixture {
    private static let built = Mutex<String?>(nil)

    static func library() throws -> String {
        try built.withLock { path in
            if let path { return path }
            let output = Paths.temporaryDirectory("ffi-lib") + "/libffitypes.so"
            let result = try run("/usr/bin/cc", ["-std=c11", "-Wall", "-Wextra", "-shared", "-fPIC", "-O1", "-o", output,
                                                 Paths.repoRoot + "/Tests/Fixtures/ffi/ffitypes.c"])
            guard result.status == 0 else { throw Fixtures.FixtureError(message: "cc failed for ffitypes.c: \(result.output)") }
            path = output
            return output
        }
    }

    /// A folder with ffitypes.yaml (optionally edited) and its library.
    static func install(into directory: String? = nil, edit: ((String) -> String)? = nil) throws -> String {
        let dir = directory ?? Paths.temporaryDirectory("ffitypes")
        try? FileManager.default.removeItem(atPath: dir + "/libffitypes.so")
        try FileManager.default.copyItem(atPath: try library(), toPath: dir + "/libffitypes.so")
        var text = try String(contentsOfFile: Paths.repoRoot + "/Tests/Fixtures/ffi/ffitypes.yaml", encoding: .utf8)
        if let edit { text = edit(text) }
        try text.write(toFile: dir + "/ffitypes.yaml", atomically: true, encoding: .utf8)
        return dir + "/ffitypes.yaml"
    }
}

/// CRC-32 (IEEE, as zlib computes it), to check zlib.crc32 on any bytes.
private func crc32Reference(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
    }
    return ~crc
}
