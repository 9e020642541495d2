import Testing
@testable import LLMOSJSON

func compile(_ schema: String) throws -> JSONSchema {
    try JSONSchema(try JSON.parse(schema))
}

/// Violations of `instance`, checking that `isValid` agrees with `validate`.
func violations(_ schema: JSONSchema, _ instance: String) throws -> [JSONSchemaViolation] {
    let value = try JSON.parse(instance)
    let found = schema.validate(value)
    #expect(schema.isValid(value) == found.isEmpty, "isValid disagrees for \(instance)")
    return found
}

func messages(_ schema: String, _ instance: String) throws -> [String] {
    try violations(try compile(schema), instance).map(\.message)
}

func compileError(_ schema: String) throws -> JSONSchemaError? {
    let value = try JSON.parse(schema)
    do throws(JSONSchemaError) {
        _ = try JSONSchema(value)
        return nil
    } catch {
        return error
    }
}

@Suite("JSON Schema keywords")
struct SchemaKeywordTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let schema: String
        let valid: [String]
        let invalid: String
        let message: String
        let path: String
        let keyword: String
        var testDescription: String { "\(schema) / \(invalid)" }
    }

    static let cases: [Case] = [
        // type
        Case(schema: #"{"type":"string"}"#, valid: [#""x""#], invalid: "5", message: "expected string, got integer 5", path: "", keyword: "type"),
        Case(schema: #"{"type":"number"}"#, valid: ["1", "1.5", "-0", "1e300"], invalid: #""x""#, message: #"expected number, got string "x""#, path: "", keyword: "type"),
        Case(schema: #"{"type":"integer"}"#, valid: ["1", "1.0", "-3", "1e3", "9223372036854775808"], invalid: "1.5", message: "expected integer, got number 1.5", path: "", keyword: "type"),
        Case(schema: #"{"type":"boolean"}"#, valid: ["true", "false"], invalid: "null", message: "expected boolean, got null", path: "", keyword: "type"),
        Case(schema: #"{"type":"null"}"#, valid: ["null"], invalid: "false", message: "expected null, got boolean false", path: "", keyword: "type"),
        Case(schema: #"{"type":"array"}"#, valid: ["[]", "[1]"], invalid: "{}", message: "expected array, got object", path: "", keyword: "type"),
        Case(schema: #"{"type":"object"}"#, valid: ["{}"], invalid: "[1]", message: "expected object, got array", path: "", keyword: "type"),
        Case(schema: #"{"type":["string","null"]}"#, valid: [#""a""#, "null"], invalid: "1", message: "expected string or null, got integer 1", path: "", keyword: "type"),
        Case(schema: #"{"type":["integer","boolean","array"]}"#, valid: ["1", "true", "[]"], invalid: "0.5", message: "expected one of integer, boolean, array, got number 0.5", path: "", keyword: "type"),
        // properties and friends
        Case(schema: #"{"properties":{"b":{"type":"number"}}}"#, valid: [#"{"b":1}"#, "{}", #"{"c":"x"}"#, "7"], invalid: #"{"b":"x"}"#, message: #"field "b": expected number, got string "x""#, path: "b", keyword: "type"),
        Case(schema: #"{"required":["a","b"]}"#, valid: [#"{"a":1,"b":null}"#, "[]"], invalid: #"{"a":1}"#, message: #"missing required field "b""#, path: "", keyword: "required"),
        Case(schema: #"{"properties":{"a":{},"b":{}},"additionalProperties":false}"#, valid: [#"{"a":1}"#, "{}"], invalid: #"{"a":1,"c":2}"#, message: #"unexpected field "c" (allowed: a, b)"#, path: "", keyword: "additionalProperties"),
        Case(schema: #"{"additionalProperties":false}"#, valid: ["{}", "3"], invalid: #"{"x":1}"#, message: #"unexpected field "x" (no fields are allowed)"#, path: "", keyword: "additionalProperties"),
        Case(schema: #"{"properties":{"a":{}},"additionalProperties":{"type":"string"}}"#, valid: [#"{"a":1,"z":"s"}"#], invalid: #"{"a":1,"z":2}"#, message: #"field "z": expected string, got integer 2"#, path: "z", keyword: "type"),
        Case(schema: #"{"patternProperties":{"^x-":{"type":"string"}},"additionalProperties":false}"#, valid: [#"{"x-a":"s"}"#, "{}"], invalid: #"{"x-a":1}"#, message: #"field "x-a": expected string, got integer 1"#, path: "x-a", keyword: "type"),
        Case(schema: #"{"properties":{"id":{}},"patternProperties":{"^x-":{}},"additionalProperties":false}"#, valid: [#"{"id":1,"x-b":2}"#], invalid: #"{"y":1}"#, message: #"unexpected field "y" (allowed: id, or names matching ^x-)"#, path: "", keyword: "additionalProperties"),
        Case(schema: #"{"minProperties":1}"#, valid: [#"{"a":1}"#], invalid: "{}", message: "must have at least 1 field, got 0", path: "", keyword: "minProperties"),
        Case(schema: #"{"maxProperties":1}"#, valid: ["{}", #"{"a":1}"#], invalid: #"{"a":1,"b":2}"#, message: "must have at most 1 field, got 2", path: "", keyword: "maxProperties"),
        Case(schema: #"{"propertyNames":{"pattern":"^[a-z]+$"}}"#, valid: [#"{"ab":1}"#], invalid: #"{"aB":1}"#, message: #"invalid field name "aB": does not match pattern ^[a-z]+$"#, path: "", keyword: "propertyNames"),
        Case(schema: #"{"dependentRequired":{"card":["cvv"]}}"#, valid: ["{}", #"{"card":1,"cvv":2}"#, #"{"cvv":2}"#], invalid: #"{"card":1}"#, message: #"field "card" requires field "cvv""#, path: "", keyword: "dependentRequired"),
        Case(schema: #"{"dependentSchemas":{"a":{"required":["b"]}}}"#, valid: [#"{"a":1,"b":2}"#, #"{"c":1}"#], invalid: #"{"a":1}"#, message: #"missing required field "b""#, path: "", keyword: "required"),
        Case(schema: #"{"dependencies":{"a":["b"],"c":{"properties":{"d":{"type":"string"}}}}}"#, valid: [#"{"a":1,"b":2}"#, #"{"c":1,"d":"x"}"#], invalid: #"{"c":1,"d":2}"#, message: #"field "d": expected string, got integer 2"#, path: "d", keyword: "type"),
        // enum and const
        Case(schema: #"{"properties":{"op":{"enum":["add","sub"]}}}"#, valid: [#"{"op":"add"}"#, #"{"op":"sub"}"#], invalid: #"{"op":"mul"}"#, message: #"field "op": must be one of "add", "sub", got "mul""#, path: "op", keyword: "enum"),
        Case(schema: #"{"enum":[1,"1",null,[1],{"a":1}]}"#, valid: ["1", "1.0", #""1""#, "null", "[1.0]", #"{"a":1}"#], invalid: "2", message: #"must be one of 1, "1", null, [1], {"a":1}, got 2"#, path: "", keyword: "enum"),
        Case(schema: #"{"enum":["a","b","c","d","e","f","g","h","i","j","k","l"]}"#, valid: [#""l""#], invalid: #""m""#, message: #"must be one of "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", and 2 more, got "m""#, path: "", keyword: "enum"),
        Case(schema: #"{"const":5}"#, valid: ["5", "5.0"], invalid: "4", message: "must be 5, got 4", path: "", keyword: "const"),
        Case(schema: #"{"const":{"a":[1,2]}}"#, valid: [#"{"a":[1,2.0]}"#], invalid: #"{"a":[2,1]}"#, message: #"must be {"a":[1,2]}, got {"a":[2,1]}"#, path: "", keyword: "const"),
        // numbers
        Case(schema: #"{"properties":{"n":{"minimum":0}}}"#, valid: [#"{"n":0}"#, #"{"n":0.5}"#, #"{"n":"x"}"#], invalid: #"{"n":-3}"#, message: #"field "n": must be >= 0, got -3"#, path: "n", keyword: "minimum"),
        Case(schema: #"{"maximum":10}"#, valid: ["10", "-1", "9.99"], invalid: "10.5", message: "must be <= 10, got 10.5", path: "", keyword: "maximum"),
        Case(schema: #"{"exclusiveMinimum":0}"#, valid: ["0.001", "1"], invalid: "0", message: "must be > 0, got 0", path: "", keyword: "exclusiveMinimum"),
        Case(schema: #"{"exclusiveMaximum":1.5}"#, valid: ["1", "1.49"], invalid: "1.5", message: "must be < 1.5, got 1.5", path: "", keyword: "exclusiveMaximum"),
        Case(schema: #"{"minimum":5,"exclusiveMinimum":true}"#, valid: ["6"], invalid: "5", message: "must be > 5, got 5", path: "", keyword: "exclusiveMinimum"),
        Case(schema: #"{"maximum":5,"exclusiveMaximum":false}"#, valid: ["5"], invalid: "6", message: "must be <= 5, got 6", path: "", keyword: "maximum"),
        Case(schema: #"{"minimum":9007199254740993}"#, valid: ["9007199254740993"], invalid: "9007199254740992", message: "must be >= 9007199254740993, got 9007199254740992", path: "", keyword: "minimum"),
        Case(schema: #"{"multipleOf":3}"#, valid: ["9", "0", "-3", "6.0"], invalid: "10", message: "must be a multiple of 3, got 10", path: "", keyword: "multipleOf"),
        Case(schema: #"{"multipleOf":0.01}"#, valid: ["19.99", "0.07", "5"], invalid: "0.005", message: "must be a multiple of 0.01, got 0.005", path: "", keyword: "multipleOf"),
        Case(schema: #"{"multipleOf":0.0001}"#, valid: ["0.0075", "12391239123"], invalid: "0.00751", message: "must be a multiple of 0.0001, got 0.00751", path: "", keyword: "multipleOf"),
        Case(schema: #"{"multipleOf":0.123456789}"#, valid: [], invalid: "1e308", message: "must be a multiple of 0.123456789, got 1e+308", path: "", keyword: "multipleOf"),
        // strings
        Case(schema: #"{"properties":{"s":{"minLength":1}}}"#, valid: [#"{"s":"a"}"#, #"{"s":5}"#], invalid: #"{"s":""}"#, message: #"field "s": must be at least 1 character long"#, path: "s", keyword: "minLength"),
        Case(schema: #"{"minLength":2}"#, valid: [#""ab""#, #""😀😀""#], invalid: #""😀""#, message: "must be at least 2 characters long", path: "", keyword: "minLength"),
        Case(schema: #"{"maxLength":2}"#, valid: [#""ab""#, #""éé""#, #""😀😀""#, #""""#], invalid: #""abc""#, message: "must be at most 2 characters long, got 3", path: "", keyword: "maxLength"),
        Case(schema: #"{"maxLength":1}"#, valid: [#""e""#, #""\u00e9""#], invalid: #""e\u0301""#, message: "must be at most 1 character long, got 2", path: "", keyword: "maxLength"),
        Case(schema: #"{"properties":{"s":{"pattern":"^[a-z]+$"}}}"#, valid: [#"{"s":"abc"}"#, #"{"s":1}"#], invalid: #"{"s":"abC"}"#, message: #"field "s": does not match pattern ^[a-z]+$"#, path: "s", keyword: "pattern"),
        Case(schema: #"{"pattern":"b+"}"#, valid: [#""abbc""#, #""b""#], invalid: #""ac""#, message: "does not match pattern b+", path: "", keyword: "pattern"),
        Case(schema: #"{"pattern":"^\\d{3}$"}"#, valid: [#""123""#], invalid: #""١٢٣""#, message: "does not match pattern ^\\d{3}$", path: "", keyword: "pattern"),
        Case(schema: #"{"pattern":"^.$"}"#, valid: [#""😀""#, #""é""#], invalid: #""e\u0301""#, message: "does not match pattern ^.$", path: "", keyword: "pattern"),
        // arrays
        Case(schema: #"{"items":{"type":"integer"}}"#, valid: ["[]", "[1,2,3]", "{}"], invalid: #"[1,"x",3]"#, message: #"field "[1]": expected integer, got string "x""#, path: "[1]", keyword: "type"),
        Case(schema: #"{"properties":{"items":{"items":{"properties":{"name":{"type":"string"}}}}}}"#, valid: [#"{"items":[{"name":"a"}]}"#], invalid: #"{"items":[{},{},{"name":1}]}"#, message: #"field "items[2].name": expected string, got integer 1"#, path: "items[2].name", keyword: "type"),
        Case(schema: #"{"prefixItems":[{"type":"string"},{"type":"number"}]}"#, valid: [#"["a",1]"#, #"["a"]"#, #"["a",1,null]"#], invalid: #"[1]"#, message: "field \"[0]\": expected string, got integer 1", path: "[0]", keyword: "type"),
        Case(schema: #"{"prefixItems":[{"type":"string"}],"items":false}"#, valid: [#"["a"]"#, "[]"], invalid: #"["a",2]"#, message: "field \"[1]\": not allowed by the schema", path: "[1]", keyword: "false"),
        Case(schema: #"{"items":[{"type":"string"}],"additionalItems":{"type":"boolean"}}"#, valid: [#"["a",true,false]"#], invalid: #"["a",1]"#, message: "field \"[1]\": expected boolean, got integer 1", path: "[1]", keyword: "type"),
        Case(schema: #"{"minItems":1}"#, valid: ["[1]"], invalid: "[]", message: "must have at least 1 item, got 0", path: "", keyword: "minItems"),
        Case(schema: #"{"maxItems":2}"#, valid: ["[]", "[1,2]"], invalid: "[1,2,3]", message: "must have at most 2 items, got 3", path: "", keyword: "maxItems"),
        Case(schema: #"{"uniqueItems":true}"#, valid: ["[]", "[1,2]", #"[1,"1"]"#, #"[{"a":1},{"a":2}]"#, "[[1],[1,1]]"], invalid: "[1,2,1.0]", message: "items must be unique, but items 0 and 2 are equal", path: "", keyword: "uniqueItems"),
        Case(schema: #"{"uniqueItems":true}"#, valid: [], invalid: #"[{"a":1,"b":2},{"b":2,"a":1}]"#, message: "items must be unique, but items 0 and 1 are equal", path: "", keyword: "uniqueItems"),
        Case(schema: #"{"uniqueItems":false}"#, valid: ["[1,1]"], invalid: "", message: "", path: "", keyword: ""),
        Case(schema: #"{"contains":{"type":"string"}}"#, valid: [#"[1,"a"]"#, "{}"], invalid: "[1,2]", message: #"must contain at least 1 item matching the "contains" schema, found 0"#, path: "", keyword: "contains"),
        Case(schema: #"{"contains":{"type":"string"},"minContains":2,"maxContains":3}"#, valid: [#"["a","b"]"#, #"["a","b","c",1]"#], invalid: #"["a","b","c","d"]"#, message: #"must contain at most 3 items matching the "contains" schema, found 4"#, path: "", keyword: "maxContains"),
        // combinators
        Case(schema: #"{"allOf":[{"minimum":1},{"maximum":3}]}"#, valid: ["1", "3"], invalid: "4", message: "must be <= 3, got 4", path: "", keyword: "maximum"),
        Case(schema: #"{"anyOf":[{"type":"string"},{"minimum":10}]}"#, valid: [#""x""#, "10", "null"], invalid: "5", message: "must match at least one of the 2 alternatives: (1) expected string, got integer 5; (2) must be >= 10, got 5", path: "", keyword: "anyOf"),
        Case(schema: #"{"oneOf":[{"type":"number"},{"type":"boolean"}]}"#, valid: ["1", "true"], invalid: #""x""#, message: #"must match exactly one of the 2 alternatives, matched 0: (1) expected number, got string "x"; (2) expected boolean, got string "x""#, path: "", keyword: "oneOf"),
        Case(schema: #"{"oneOf":[{"type":"integer"},{"minimum":0},{"type":"string"}]}"#, valid: ["-1", "0.5"], invalid: "3", message: "must match exactly one of the 3 alternatives, matched 2 (alternatives 1 and 2)", path: "", keyword: "oneOf"),
        Case(schema: #"{"properties":{"v":{"oneOf":[{"required":["a"]},{"required":["b"]}]}}}"#, valid: [#"{"v":{"a":1}}"#], invalid: #"{"v":{}}"#, message: #"field "v": must match exactly one of the 2 alternatives, matched 0: (1) missing required field "a"; (2) missing required field "b""#, path: "v", keyword: "oneOf"),
        Case(schema: #"{"not":{"type":"null"}}"#, valid: ["1", "{}"], invalid: "null", message: #"must not match the schema in "not""#, path: "", keyword: "not"),
        Case(schema: #"{"if":{"properties":{"kind":{"const":"a"}}},"then":{"required":["x"]},"else":{"required":["y"]}}"#, valid: [#"{"kind":"a","x":1}"#, #"{"kind":"b","y":1}"#], invalid: #"{"kind":"a","y":1}"#, message: #"missing required field "x""#, path: "", keyword: "required"),
        // boolean schemas
        Case(schema: "true", valid: ["1", "null", "{}"], invalid: "", message: "", path: "", keyword: ""),
        Case(schema: "false", valid: [], invalid: "1", message: "not allowed by the schema", path: "", keyword: "false"),
        Case(schema: #"{"properties":{"x":false}}"#, valid: ["{}"], invalid: #"{"x":1}"#, message: #"field "x": not allowed by the schema"#, path: "x", keyword: "false"),
        Case(schema: "{}", valid: ["1", "[]"], invalid: "", message: "", path: "", keyword: ""),
        // ignored keywords
        Case(schema: #"{"type":"string","format":"email","title":"T","description":"D","default":"x","examples":["a"],"x-llmos":{"k":1},"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"urn:x","nubmer":3}"#, valid: [#""not an email""#], invalid: "1", message: "expected string, got integer 1", path: "", keyword: "type"),
    ]

    @Test(arguments: cases)
    func keyword(_ c: Case) throws {
        let schema = try compile(c.schema)
        for instance in c.valid {
            let found = try violations(schema, instance)
            #expect(found.isEmpty, "\(instance) should be valid, got \(found)")
        }
        guard !c.invalid.isEmpty else { return }
        let found = try violations(schema, c.invalid)
        #expect(found == [JSONSchemaViolation(path: c.path, keyword: c.keyword, message: c.message)])
        #expect(found.first?.description == c.message)
    }

    @Test func patternsFollowECMAConventions() throws {
        let anchored = try compile(#"{"pattern":"^[a-z]+$"}"#)
        #expect(try violations(anchored, #""abc\n""#).count == 1)  // "$" is the very end, not before a final newline
        #expect(try violations(try compile(#"{"pattern":"^\\w+$"}"#), #""é""#).count == 1)  // \w is ASCII
        #expect(try violations(try compile(#"{"pattern":"^.$"}"#), #""\n""#).count == 1)
        #expect(try violations(try compile(#"{"pattern":"^(?=a)\\w\\d$"}"#), #""a1""#).isEmpty)
        #expect(try violations(try compile(#"{"pattern":"a/b"}"#), #""xa/by""#).isEmpty)
    }

    @Test func theToolInputExample() throws {
        let schema = try compile(#"{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"],"additionalProperties":false}"#)
        #expect(try violations(schema, #"{"a":1,"b":2}"#).isEmpty)
        #expect(try violations(schema, #"{"a":1.5,"b":-2e3}"#).isEmpty)
        #expect(try violations(schema, #"{"a":"x","c":true}"#).map(\.message) == [
            #"field "a": expected number, got string "x""#,
            #"unexpected field "c" (allowed: a, b)"#,
            #"missing required field "b""#,
        ])
        #expect(try violations(schema, "[]").map(\.message) == ["expected object, got array"])
    }

    @Test func nestedAlternativesAreExplainedOneLevelDeep() throws {
        let schema = try compile(#"{"anyOf":[{"type":"string"},{"oneOf":[{"type":"boolean"},{"type":"null"}]}]}"#)
        #expect(try violations(schema, "1").map(\.message) == [
            "must match at least one of the 2 alternatives: (1) expected string, got integer 1; "
                + "(2) must match exactly one of the 2 alternatives, matched 0",
        ])
    }

    @Test func deepFailuresUnderRecursiveAlternativesKeepMessagesShort() throws {
        let schema = try compile(##"{"anyOf":[{"type":"integer"},{"type":"array","items":{"$ref":"#"}}]}"##)
        let deep = String(repeating: "[", count: 200) + "\"x\"" + String(repeating: "]", count: 200)
        let found = try violations(schema, deep)
        #expect(found.count == 1 && found[0].keyword == "anyOf")
        #expect(found[0].message == "must match at least one of the 2 alternatives: (1) expected integer, got array; "
            + "(2) field \"[0]\": must match at least one of the 2 alternatives")
    }

    @Test func violationsAreCapped() throws {
        let schema = try compile(#"{"items":{"type":"string"}}"#)
        let found = try violations(schema, "[" + (0..<100).map(String.init).joined(separator: ",") + "]")
        #expect(found.count == JSONSchema.maxViolations)
        #expect(found.first?.path == "[0]" && found.last?.path == "[15]")
    }

    @Test func requiredNamesNotInProperties() throws {
        let schema = try compile(#"{"properties":{"a":{}},"required":["a","z"]}"#)
        #expect(try messages(#"{"properties":{"a":{}},"required":["a","z"]}"#, "{}") == [#"missing required field "a""#, #"missing required field "z""#])
        #expect(try violations(schema, #"{"a":1}"#).map(\.message) == [#"missing required field "z""#])
        #expect(try violations(schema, #"{"z":1}"#).map(\.message) == [#"missing required field "a""#])
        #expect(try violations(schema, #"{"z":1,"a":2}"#).isEmpty)
    }

    @Test func manyPropertiesUseTheIndex() throws {
        let names = (0..<30).map { "p\($0)" }
        let properties = names.map { "\"\($0)\":{\"type\":\"integer\"}" }.joined(separator: ",")
        let required = names.map { "\"\($0)\"" }.joined(separator: ",")
        let schema = try compile("{\"properties\":{\(properties)},\"required\":[\(required)],\"additionalProperties\":false}")
        let full = "{" + names.reversed().map { "\"\($0)\":1" }.joined(separator: ",") + "}"
        #expect(try violations(schema, full).isEmpty)
        let missing = "{" + names.dropFirst().map { "\"\($0)\":1" }.joined(separator: ",") + ",\"q\":1}"
        let found = try violations(schema, missing).map(\.message)
        #expect(found.count == 2)
        #expect(found.first?.hasPrefix(#"unexpected field "q" (allowed: p0, p1, "#) == true)
        #expect(found.first?.hasSuffix(", and 10 more)") == true)
        #expect(found.last == #"missing required field "p0""#)
    }

    @Test func longValuesAreShortenedInMessages() throws {
        let long = String(repeating: "x", count: 100)
        let found = try messages(#"{"type":"number"}"#, "\"\(long)\"")
        #expect(found == ["expected number, got string \"" + String(repeating: "x", count: 56) + "..."])
    }

    @Test func messagesUseFullPaths() throws {
        let schema = try compile(#"{"properties":{"a":{"properties":{"b":{"items":{"enum":[1]}}}}}}"#)
        let found = try violations(schema, #"{"a":{"b":[1,2]}}"#)
        #expect(found == [JSONSchemaViolation(path: "a.b[1]", keyword: "enum", message: #"field "a.b[1]": must be one of 1, got 2"#)])
    }

    @Test func annotationsStayReadable() throws {
        let schema = try compile(#"{"title":"Adder","x-llmos":{"cost":1},"type":"object"}"#)
        #expect(schema.annotation("title") == "Adder")
        #expect(schema.annotation("x-llmos") == ["cost": 1])
        #expect(schema.source["type"] == "object")
    }
}

@Suite("JSON Schema references")
struct SchemaRefTests {
    @Test func definitions() throws {
        let schema = try compile(##"{"$defs":{"pos":{"type":"integer","minimum":1}},"properties":{"n":{"$ref":"#/$defs/pos"}}}"##)
        #expect(try violations(schema, #"{"n":3}"#).isEmpty)
        #expect(try violations(schema, #"{"n":0}"#).map(\.message) == [#"field "n": must be >= 1, got 0"#])
        let legacy = try compile(##"{"definitions":{"s":{"type":"string"}},"items":{"$ref":"#/definitions/s"}}"##)
        #expect(try violations(legacy, #"["a",1]"#).map(\.path) == ["[1]"])
    }

    @Test func recursiveTree() throws {
        let schema = try compile(#"""
            {"$defs":{"node":{"type":"object","properties":{"value":{"type":"number"},
              "children":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["value"],"additionalProperties":false}},
             "$ref":"#/$defs/node"}
            """#)
        #expect(try violations(schema, #"{"value":1,"children":[{"value":2,"children":[{"value":3}]},{"value":4}]}"#).isEmpty)
        let found = try violations(schema, #"{"value":1,"children":[{"value":2,"children":[{"value":"x"}]},{}]}"#)
        #expect(found.map(\.message) == [
            #"field "children[0].children[0].value": expected number, got string "x""#,
            #"field "children[1]": missing required field "value""#,
        ])
    }

    @Test func rootRecursion() throws {
        let schema = try compile(##"{"type":["integer","array"],"items":{"$ref":"#"}}"##)
        #expect(try violations(schema, "[1,[2,[3,[]]]]").isEmpty)
        #expect(try violations(schema, #"[1,[2,["x"]]]"#).map(\.path) == ["[1][1][0]"])
    }

    @Test func pointersIntoTheSchema() throws {
        let schema = try compile(##"{"properties":{"a":{"type":"string"},"b":{"$ref":"#/properties/a"},"c":{"anyOf":[{"minimum":5}]},"d":{"$ref":"#/properties/c/anyOf/0"}}}"##)
        #expect(try violations(schema, #"{"b":"x","d":6}"#).isEmpty)
        #expect(try violations(schema, #"{"b":1}"#).map(\.message) == [#"field "b": expected string, got integer 1"#])
        #expect(try violations(schema, #"{"d":1}"#).map(\.message) == [#"field "d": must be >= 5, got 1"#])
    }

    @Test func escapedPointerTokens() throws {
        let schema = try compile(##"{"$defs":{"a/b":{"type":"string"},"c~d":{"type":"number"},"e f":{"type":"null"},"%":{"type":"boolean"}},"properties":{"x":{"$ref":"#/$defs/a~1b"},"y":{"$ref":"#/$defs/c~0d"},"z":{"$ref":"#/$defs/e%20f"},"w":{"$ref":"#/$defs/%25"}}}"##)
        #expect(try violations(schema, #"{"x":"s","y":1,"z":null,"w":true}"#).isEmpty)
        #expect(try violations(schema, #"{"x":1,"y":"s","z":1,"w":1}"#).count == 4)
    }

    @Test func refWithSiblingKeywords() throws {
        let schema = try compile(##"{"$defs":{"s":{"type":"string"}},"properties":{"a":{"$ref":"#/$defs/s","maxLength":2}}}"##)
        #expect(try violations(schema, #"{"a":"ab"}"#).isEmpty)
        #expect(try violations(schema, #"{"a":"abc"}"#).map(\.keyword) == ["maxLength"])
        #expect(try violations(schema, #"{"a":1}"#).map(\.keyword) == ["type"])
    }

    @Test func mutualRecursionThroughProperties() throws {
        let schema = try compile(##"{"$defs":{"a":{"properties":{"b":{"$ref":"#/$defs/b"}}},"b":{"properties":{"a":{"$ref":"#/$defs/a"}},"required":["a"]}},"$ref":"#/$defs/a"}"##)
        #expect(try violations(schema, #"{"b":{"a":{"b":{"a":{}}}}}"#).isEmpty)
        #expect(try violations(schema, #"{"b":{"a":{"b":{}}}}"#).map(\.message) == [#"field "b.a.b": missing required field "a""#])
    }

    @Test func refLoopsAreCompileErrors() throws {
        let direct = try #require(try compileError(##"{"$ref":"#"}"##))
        #expect(direct.description == ##"$ref "#": circular reference that never descends into a property or item"##)
        let mutual = try #require(try compileError(##"{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"allOf":[{"$ref":"#/$defs/a"}]}},"properties":{"x":{"$ref":"#/$defs/a"}}}"##))
        #expect(mutual.message == ##"$ref "#/$defs/b": circular reference that never descends into a property or item"##)
        #expect(mutual.path == "$defs.a")
        let viaNot = try compileError(##"{"$defs":{"a":{"not":{"$ref":"#/$defs/a"}}}}"##)
        #expect(viaNot?.path == "$defs.a.not")
        // Recursion through a property or item is fine.
        #expect(try compileError(##"{"properties":{"next":{"$ref":"#"}}}"##) == nil)
    }
}

@Suite("JSON Schema compile errors")
struct SchemaCompileErrorTests {
    static let cases: [(schema: String, description: String)] = [
        (#"{"properties":{"a":{"type":"nubmer"}}}"#, #"properties.a.type: unknown type "nubmer" (expected one of string, number, integer, boolean, object, array, null)"#),
        (#"{"type":["string",3]}"#, "type: expected a type name or a non-empty array of type names"),
        (#"{"type":[]}"#, "type: expected a type name or a non-empty array of type names"),
        (#"{"required":"a"}"#, "required: expected an array of strings"),
        (#"{"required":["a",1]}"#, "required: expected an array of strings"),
        (##"{"properties":{"a":{"$ref":"#/$defs/x"}}}"##, ##"properties.a: $ref "#/$defs/x": no such definition"##),
        (##"{"$ref":"#/$defs/x"}"##, ##"$ref "#/$defs/x": no such definition"##),
        (##"{"$ref":"#/nowhere/deep"}"##, ##"$ref "#/nowhere/deep": no such location in the schema"##),
        (##"{"$ref":"other.json#/a"}"##, ##"$ref "other.json#/a": only local references (starting with "#") are supported"##),
        (##"{"$ref":"#anchor"}"##, ##"$ref "#anchor": only JSON-pointer fragments ("#/...") are supported"##),
        (#"{"$ref":5}"#, "$ref: expected a string"),
        (#"{"properties":[]}"#, "properties: expected an object of schemas"),
        (#"{"properties":{"a":3}}"#, "properties.a: expected a schema (an object or a boolean), got integer"),
        (#""string""#, "expected a schema (an object or a boolean), got string"),
        (#"{"items":{"minLength":-1}}"#, "items.minLength: expected a non-negative integer"),
        (#"{"maxItems":1.5}"#, "maxItems: expected a non-negative integer"),
        (#"{"minimum":"0"}"#, "minimum: expected a number"),
        (#"{"multipleOf":0}"#, "multipleOf: expected a number greater than 0"),
        (#"{"multipleOf":-2}"#, "multipleOf: expected a number greater than 0"),
        (#"{"enum":[]}"#, "enum: expected a non-empty array"),
        (#"{"enum":"a"}"#, "enum: expected a non-empty array"),
        (#"{"anyOf":[]}"#, "anyOf: expected a non-empty array of schemas"),
        (#"{"oneOf":{}}"#, "oneOf: expected a non-empty array of schemas"),
        (#"{"allOf":[{"type":"x"}]}"#, #"allOf[0].type: unknown type "x" (expected one of string, number, integer, boolean, object, array, null)"#),
        (#"{"anyOf":[true,{"not":5}]}"#, "anyOf[1].not: expected a schema (an object or a boolean), got integer"),
        (#"{"uniqueItems":"yes"}"#, "uniqueItems: expected a boolean"),
        (#"{"pattern":5}"#, "pattern: expected a string"),
        (#"{"$defs":[]}"#, "$defs: expected an object of schemas"),
        (#"{"$defs":{"d":{"type":1}}}"#, "$defs.d.type: expected a type name or a non-empty array of type names"),
        (#"{"prefixItems":{}}"#, "prefixItems: expected an array of schemas"),
        (#"{"prefixItems":[{}],"items":[{}]}"#, "items: expected a schema (an array here is the old form of prefixItems)"),
        (#"{"dependentRequired":{"a":[1]}}"#, "dependentRequired.a: expected an array of strings"),
        (#"{"unevaluatedProperties":false}"#, #"unevaluatedProperties: "unevaluatedProperties" is not supported"#),
        (##"{"properties":{"a":{"$dynamicRef":"#x"}}}"##, #"properties.a.$dynamicRef: "$dynamicRef" is not supported"#),
    ]

    @Test(arguments: cases)
    func reportsTheLocation(_ schema: String, _ description: String) throws {
        let error = try #require(try compileError(schema), "\(schema) compiled")
        #expect(error.description == description)
    }

    @Test func lookbehindIsAnUnsupportedPattern() throws {
        let error = try #require(try compileError(#"{"pattern":"(?<=a)b"}"#))
        #expect(error.description == #"pattern: invalid regular expression "(?<=a)b": lookbehind is not currently supported"#)
    }

    @Test func invalidPatterns() throws {
        let error = try #require(try compileError(#"{"properties":{"s":{"pattern":"a(b"}}}"#))
        #expect(error.path == "properties.s.pattern")
        #expect(error.message.hasPrefix(#"invalid regular expression "a(b": "#))
        let keyError = try #require(try compileError(#"{"patternProperties":{"[":{}}}"#))
        #expect(keyError.path == "patternProperties")
        #expect(keyError.message.hasPrefix(#"invalid regular expression "[": "#))
    }
}

@Suite("JSON Schema concurrency")
struct SchemaConcurrencyTests {
    @Test func validatesFromManyTasksAtOnce() async throws {
        let schema = try compile(#"{"type":"object","properties":{"s":{"type":"string","pattern":"^[a-z]+[0-9]*$"},"n":{"type":"integer","minimum":0}},"required":["s","n"]}"#)
        let good = try JSON.parse(#"{"s":"abc123","n":5}"#)
        let bad = try JSON.parse(#"{"s":"ABC","n":-1}"#)
        let results = await withTaskGroup(of: (Bool, Int).self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var ok = true
                    var count = 0
                    for _ in 0..<200 {
                        ok = ok && schema.isValid(good) && !schema.isValid(bad)
                        count = schema.validate(bad).count
                    }
                    return (ok, count)
                }
            }
            var all: [(Bool, Int)] = []
            for await result in group { all.append(result) }
            return all
        }
        #expect(results.count == 8)
        #expect(results.allSatisfy { $0.0 && $0.1 == 2 })
    }
}
