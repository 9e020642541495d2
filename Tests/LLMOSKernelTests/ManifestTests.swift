import Foundation
import LLMOSJSON
import Testing
@testable import LLMOSKernel
import LLMOSDigest

@Suite struct ManifestTests {
    static let minimal = """
    manifest_version: 1
    name: demo
    version: 0.1.0
    class: tool
    abi: {major: 1, minor: 0}
    library: {path: libdemo.so}
    tools:
      - name: hello
        description: Say hello.
        input_schema: {type: object, properties: {name: {type: string}}, required: [name]}
    """

    func parse(_ text: String) throws -> DriverManifest {
        try ManifestParser.parse(text: text, file: "/m/demo.yaml")
    }

    func errorText(_ text: String) -> String {
        expectError { try parse(text) }.message
    }

    @Test func shippedManifestsParse() throws {
        for file in DriverSearchPath.manifests(in: Paths.manifests) {
            let manifest = try ManifestParser.parse(file: file)
            #expect(!manifest.operations.isEmpty, "\(file)")
            #expect(manifest.warnings.isEmpty, "\(file): \(manifest.warnings)")
        }
        let calc = try ManifestParser.parse(file: Paths.manifests + "/calc.yaml")
        #expect(calc.name == "calc")
        #expect(calc.threading == .concurrent)
        #expect(calc.operations.map(\.name) == ["add", "sub", "mul", "div", "eval"])
        #expect(calc.limits.timeoutMs == 1000)
        #expect(calc.operations[0].hints.readOnly)
    }

    @Test func minimalManifestGetsDefaults() throws {
        let m = try parse(Self.minimal)
        #expect(m.threading == .serialized)
        #expect(m.isolation == .inProcess)
        #expect(m.library.entry == "llmos_driver_entry_v1")
        #expect(m.limits == Limits())
        #expect(m.capabilities.isEmpty)
    }

    @Test func jsonManifestIsAccepted() throws {
        let json = """
        {"manifest_version": 1, "name": "demo", "version": "1", "class": "tool", "abi": {"major": 1, "minor": 0},
         "library": {"path": "libdemo.so"}, "capabilities": {"kv": true, "tool.call": ["calc.*"]},
         "tools": [{"name": "hello", "description": "d", "input_schema": {"type": "object"}}]}
        """
        let m = try parse(json)
        #expect(m.capabilities["tool.call"] == .patterns(["calc.*"]))
        #expect(m.capabilities["kv"] == .any)
        #expect(m.capabilities["fs.read"] == nil)
    }

    @Test func errorsNameFileLineAndField() {
        let text = Self.minimal.replacingOccurrences(of: "class: tool", with: "class: gpu")
        let message = errorText(text)
        #expect(message.contains("/m/demo.yaml:4: class: unknown device class \"gpu\"; expected one of tool, cpu, memory, storage"), "\(message)")
    }

    @Test func unknownCapabilityIsAnError() {
        let text = Self.minimal + "\ncapabilities: {fs.reed: [\"~/notes/**\"]}\n"
        let message = errorText(text)
        #expect(message.contains("capabilities.fs.reed: unknown capability (did you mean fs.read?)"), "\(message)")
        #expect(message.contains("a dropped restriction would be a hole"))
    }

    @Test func unknownTopLevelKeyWarns() throws {
        let m = try parse(Self.minimal + "\ncolour: blue\nx-vendor: fine\n")
        #expect(m.warnings.count == 1)
        #expect(m.warnings[0].field == "colour")
        #expect(m.warnings[0].message.contains("unknown top-level key"))
    }

    @Test func unknownLimitIsAnError() {
        #expect(errorText(Self.minimal + "\nlimits: {timeout_ms: 5, max_cpu: 3}\n").contains("limits.max_cpu: unknown limit"))
    }

    @Test(arguments: [
        ("manifest_version: 1", "manifest_version: 2", "manifest_version: this host reads manifest_version 1, got 2"),
        ("name: demo", "name: Demo-Driver", "name: \"Demo-Driver\" is not a valid driver name"),
        ("name: demo", "name: [a]", "name: expected a string, got a list"),
        ("library: {path: libdemo.so}", "library: {path: libdemo.so, sha256: abc}", "library.sha256: expected 64 hexadecimal digits"),
        ("library: {path: libdemo.so}", "library: {path: libdemo.so, entry: \"bad name\"}", "library.entry: \"bad name\" is not a C symbol name"),
        ("library: {path: libdemo.so}", "library: {entry: x}", "library.path: missing"),
        ("abi: {major: 1, minor: 0}", "abi: {major: one}", "abi.major: expected an integer, got a string"),
        ("abi: {major: 1, minor: 0}", "abi: {major: 1, patch: 2}", "abi.patch: unknown key"),
        ("version: 0.1.0\n", "version: 0.1.0\nthreading: parallel\n", "threading: must be one of \"serialized\", \"concurrent\", got \"parallel\""),
        ("version: 0.1.0\n", "version: 0.1.0\nisolation: vm\n", "isolation: must be one of \"in-process\", \"process\""),
        ("input_schema: {type: object, properties: {name: {type: string}}, required: [name]}", "input_schema: {type: objekt}", "tools[0].input_schema"),
        ("input_schema: {type: object, properties: {name: {type: string}}, required: [name]}", "input_schema: 42", "tools[0].input_schema: expected a JSON Schema object, got integer"),
        ("input_schema: {type: object, properties: {name: {type: string}}, required: [name]}", "x-note: none", "tools[0].input_schema: missing"),
        ("description: Say hello.", "description: [1]", "tools[0].description: expected a string"),
        ("- name: hello", "- name: Hello", "tools[0].name: \"Hello\" is not a valid name"),
        ("class: tool", "class: cpu", "operations: missing"),
    ])
    func eachFieldErrorIsReported(original: String, replacement: String, expected: String) {
        let text = Self.minimal.replacingOccurrences(of: original, with: replacement)
        #expect(text != Self.minimal)
        let message = errorText(text)
        #expect(message.contains(expected), "\(message)")
        #expect(message.hasPrefix("/m/demo.yaml"), "\(message)")
    }

    @Test func duplicateToolsAndKeys() {
        let twice = Self.minimal + "\n  - name: hello\n    description: again\n    input_schema: {type: object}\n"
        #expect(errorText(twice).contains("tools[1].name: \"hello\" is declared twice"))
        let dupKey = Self.minimal.replacingOccurrences(of: "version: 0.1.0", with: "version: 0.1.0\nversion: 0.2.0")
        #expect(errorText(dupKey).contains("duplicated key(s): 'version'"))
    }

    @Test func classRequirements() {
        let cpu = Self.minimal.replacingOccurrences(of: "class: tool", with: "class: cpu").replacingOccurrences(of: "tools:", with: "operations:")
        #expect(errorText(cpu).contains("a cpu driver must offer the operation \"complete\""))
    }

    @Test func allErrorsAreCollected() {
        let text = Self.minimal.replacingOccurrences(of: "class: tool", with: "class: gpu").replacingOccurrences(of: "name: demo", with: "name: 9")
        let error = expectError { try parse(text) }
        let diagnostics = (error.cause as? ManifestErrors)?.diagnostics ?? []
        #expect(diagnostics.count >= 2)
        #expect(error.code == .invalidManifest)
    }

    @Test func notYAMLOrEmpty() {
        #expect(errorText("").contains("the manifest is empty"))
        #expect(errorText("name: [unclosed").contains("not valid YAML or JSON"))
        #expect(errorText("- just\n- a list\n").contains("expected a mapping"))
        #expect(errorText("a: &x 1\nb: *x\n").contains("manifest_version: missing"))
    }

    @Test func missingFileAndHugeFile() throws {
        #expect(expectError { try ManifestParser.parse(file: "/nonexistent/x.yaml") }.message.contains("no such manifest file"))
        let dir = Paths.temporaryDirectory("huge")
        let path = dir + "/huge.yaml"
        try String(repeating: "# padding\n", count: 200_000).write(toFile: path, atomically: true, encoding: .utf8)
        #expect(expectError { try ManifestParser.parse(file: path) }.message.contains("the limit is"))
    }

    @Test func globMatching() {
        #expect(Glob.matches("calc.*", "calc.add"))
        #expect(!Glob.matches("calc.*", "text.count"))
        #expect(Glob.matches("*", "anything"))
        #expect(Glob.matches("c?lc.add", "calc.add"))
        #expect(Glob.matches("/home/*/notes", "/home/a/notes", pathMode: true))
        #expect(!Glob.matches("/home/*", "/home/a/b", pathMode: true))
        #expect(Glob.matches("/home/**", "/home/a/b", pathMode: true))
    }

    @Test func sha256KnownAnswers() {
        #expect(SHA256.hex(of: []) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(of: Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Array(String(repeating: "a", count: 1_000_000).utf8)
        #expect(SHA256.hex(of: long) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        let twoBlocks = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(SHA256.hex(of: twoBlocks) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func nearestNames() {
        #expect(NearestNames.suggestion(for: "calc.addd", in: ["calc.add", "calc.sub", "text.count"]) == " — did you mean calc.add?")
        #expect(NearestNames.suggestion(for: "calc.dvi", in: ["calc.add", "calc.div"]) == " — did you mean calc.div?")
        #expect(NearestNames.suggestion(for: "zzzzzz", in: ["calc.add"]) == "")
    }
}

@Suite struct ManifestRuleTests {
    func errorText(_ text: String) -> String {
        expectError { try ManifestParser.parse(text: text, file: "/m/demo.yaml") }.message
    }

    @Test func toolInputMustBeAnObjectSchema() {
        let text = ManifestTests.minimal.replacingOccurrences(of: "input_schema: {type: object, properties: {name: {type: string}}, required: [name]}", with: "input_schema: {type: array}")
        #expect(errorText(text).contains("tools[0].input_schema.type: a tool's input schema must be an object schema with type: object"))
        let boolean = ManifestTests.minimal.replacingOccurrences(of: "input_schema: {type: object, properties: {name: {type: string}}, required: [name]}", with: "input_schema: true")
        #expect(errorText(boolean).contains("must be an object schema"))
        // A schema that does not compile gets its own error, not a second misleading one.
        let broken = ManifestTests.minimal.replacingOccurrences(of: "input_schema: {type: object, properties: {name: {type: string}}, required: [name]}", with: "input_schema: {type: object, required: 3}")
        let message = errorText(broken)
        #expect(message.contains("tools[0].input_schema") && !message.contains("must be an object schema"), "\(message)")
    }

    @Test func anchorsAndAliasesAreRefusedQuickly() {
        // The "billion laughs": nine levels of aliases would expand to 10^9 values.
        var text = ManifestTests.minimal + "\nx-a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for level in 1..<9 { text += "x-a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n" }
        text += "config: {type: object, properties: {p: {enum: *a8}}}\n"
        let message = errorText(text)
        #expect(message.contains("too many values (over 200000): are YAML aliases (*name) expanding?"), "\(message.prefix(300))")
    }

    @Test func warningsAreShownAlongsideErrors() {
        let message = errorText(ManifestTests.minimal.replacingOccurrences(of: "class: tool", with: "class: gpu") + "\ncolour: blue\n")
        #expect(message.contains("unknown device class") && message.contains("colour: (warning) unknown top-level key"), "\(message)")
    }

    @Test func yamlErrorsAreOneLine() {
        let message = errorText(ManifestTests.minimal.replacingOccurrences(of: "version: 0.1.0", with: "version: 0.1.0\nversion: 0.2.0"))
        #expect(!message.contains("\n"), "\(message)")
    }

    @Test func emptyNamesDescriptionsAndPatterns() {
        #expect(errorText(ManifestTests.minimal.replacingOccurrences(of: "name: demo", with: "name: \"\"")).contains("name: \"\" is not a valid driver name"))
        #expect(errorText(ManifestTests.minimal.replacingOccurrences(of: "description: Say hello.", with: "description: \" \"")).contains("must not be empty: a model chooses tools by their descriptions"))
        #expect(errorText(ManifestTests.minimal + "\ncapabilities: {kv: \"\"}\n").contains("capabilities.kv: an empty pattern matches nothing"))
        #expect(errorText(ManifestTests.minimal.replacingOccurrences(of: "library: {path: libdemo.so}", with: "library: {path: libdemo.so, entry: 1abc}")).contains("is not a C symbol name"))
    }

    @Test func resourceArgumentsAreMarkedWithKnownCapabilities() throws {
        let marked = ManifestTests.minimal.replacingOccurrences(of: "name: {type: string}", with: "name: {type: string, x-llmos-capability: fs.read}, opts: {type: object, properties: {out: {type: string, x-llmos-capability: fs.write}}}")
        let m = try ManifestParser.parse(text: marked, file: "/m/demo.yaml")
        let found = try ArgumentCapability.find(in: m.operations[0].inputSchema)
        #expect(found == [ArgumentCapability(path: ["name"], kind: .fsRead), ArgumentCapability(path: ["opts", "out"], kind: .fsWrite)])
        let input: JSONValue = ["name": "../x", "opts": ["out": "y"]]
        #expect(found[1].value(in: input) == "y")
        #expect(found[1].replacing(in: input, with: "/abs/y") == ["name": "../x", "opts": ["out": "/abs/y"]])

        let typo = ManifestTests.minimal.replacingOccurrences(of: "name: {type: string}", with: "name: {type: string, x-llmos-capability: fs.reed}")
        #expect(errorText(typo).contains("tools[0].input_schema.properties.name: x-llmos-capability must name a capability"), "\(errorText(typo))")
    }

    @Test func nullOptionalSectionsMeanAbsent() throws {
        let m = try ManifestParser.parse(text: ManifestTests.minimal + "\nlimits:\ncapabilities:\n$schema: ../sdk/schemas/manifest.schema.json\n", file: "/m/demo.yaml")
        #expect(m.limits == Limits())
        #expect(m.warnings.isEmpty)
    }

    @Test func unknownClassOperationsWarn() throws {
        let text = ManifestTests.minimal.replacingOccurrences(of: "class: tool", with: "class: cpu")
            .replacingOccurrences(of: "tools:", with: "operations:")
            .replacingOccurrences(of: "- name: hello", with: "- name: complete\n    description: Complete.\n  - name: cont_tokens")
        let m = try ManifestParser.parse(text: text, file: "/m/demo.yaml")
        #expect(m.warnings.contains { $0.message.contains("\"cont_tokens\" is not an operation of the cpu class") })
    }

    /// The schema editors use and the parser must agree on the manifests we ship.
    @Test func shippedManifestsMatchTheManifestSchema() throws {
        let schemaText = try String(contentsOfFile: Paths.repoRoot + "/sdk/schemas/manifest.schema.json", encoding: .utf8)
        let schema = try JSONSchema(try JSON.parse(schemaText))
        var files = DriverSearchPath.manifests(in: Paths.manifests)
        files += try FileManager.default.contentsOfDirectory(atPath: Paths.fixtures).filter { $0.hasSuffix(".yaml") }.map { Paths.fixtures + "/" + $0 }
        for file in files {
            let document = try ManifestParser.document(file: file)
            let violations = schema.validate(document)
            #expect(violations.isEmpty, "\(file): \(violations)")
        }
        // And a manifest the parser refuses is refused by the schema too.
        let bad = try JSON.parse(#"{"manifest_version": 1, "name": "x", "version": "1", "class": "tool", "abi": {"major": 1}, "library": {"path": "l.so"}, "capabilities": {"fs.reed": true}, "tools": [{"name": "t", "description": "d", "input_schema": {"type": "object"}}]}"#)
        #expect(!schema.validate(bad).isEmpty)
    }
}

@Suite struct FilePathTests {
    /// "\u{600}/" is one Swift Character; the kernel still sees the "/".
    @Test func pathsSplitOnBytesNotCharacters() {
        #expect(FilePath.absolute("/a/stuff\u{600}/../x") == "/a/x")
        #expect(FilePath.directory(of: "/a/b\u{600}/c") == "/a/b\u{600}")
        #expect(FilePath.fileName(of: "/a/\u{301}b") == "\u{301}b")
        #expect(FilePath.absolute("/a/./b//../c") == "/a/c")
    }
}
