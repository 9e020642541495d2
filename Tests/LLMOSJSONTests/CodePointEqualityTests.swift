import Testing
@testable import LLMOSJSON

/// Swift's `String ==` treats canonically equivalent strings as equal ("K" U+212A KELVIN SIGN
/// equals "K"; "é" equals "e" + U+0301). JSON compares code points, and so must the kernel,
/// or a key could pass validation as one name and reach a byte-comparing driver as another.
@Suite("Strings compare by code points")
struct CodePointEqualityTests {
    let kelvin = "\u{212A}ey"  // looks like "Key", canonically equivalent to it

    @Test func swiftItselfConflatesThem() {
        #expect("K" == "\u{212A}")  // the reason for this suite
    }

    @Test func valuesAndKeys() throws {
        #expect(JSONValue.string("Key") != .string(kelvin))
        #expect(!JSONValue.string("Key").isEquivalent(to: .string(kelvin)))
        #expect(JSONValue.string("é") != .string("e\u{301}"))
        #expect(Set<JSONValue>([.string("Key"), .string(kelvin)]).count == 2)
        var object = JSONObject()
        object["Key"] = 1
        object[kelvin] = 2
        #expect(object.count == 2 && object["Key"] == 1 && object[kelvin] == 2)
        var large = JSONObject()
        for i in 0..<40 { large["k\(i)"] = .int(Int64(i)) }
        large["Key"] = 1
        #expect(large[kelvin] == nil)
        large[kelvin] = 2
        #expect(large["Key"] == 1 && large[kelvin] == 2 && large.count == 42)
    }

    @Test func parserDoesNotTreatThemAsDuplicates() throws {
        let value = try JSON.parse(#"{"Key":1,"\u212Aey":2,"é":3,"e\u0301":4}"#)
        #expect(value.objectValue?.count == 4)
        #expect(value["Key"] == 1 && value[kelvin] == 2 && value["é"] == 3 && value["e\u{301}"] == 4)
        #expect(JSON.syntaxError(in: #"{"Key":1,"\u212Aey":2}"#) == nil)
        let members = (0..<20).map { "\"m\($0)\":0" }.joined(separator: ",")
        #expect(try JSON.parse("{\(members),\"Key\":1,\"\u{212A}ey\":2}").objectValue?.count == 22)
        #expect(JSON.syntaxError(in: "{\(members),\"Key\":1,\"\u{212A}ey\":2}") == nil)
    }

    @Test func schemaPropertiesAndRequired() throws {
        let schema = try compile(#"{"properties":{"Key":{"type":"string"}},"required":["Key"],"additionalProperties":false}"#)
        #expect(try violations(schema, #"{"Key":"x"}"#).isEmpty)
        #expect(try violations(schema, #"{"\u212Aey":"x"}"#).map(\.message) == [
            "unexpected field \"\(kelvin)\" (allowed: Key)",
            #"missing required field "Key""#,
        ])
    }

    @Test func schemaEnumConstAndUniqueItems() throws {
        #expect(try messages(#"{"enum":["Key","other"]}"#, #""\u212Aey""#).count == 1)
        #expect(try messages(#"{"const":"é"}"#, #""e\u0301""#).count == 1)
        #expect(try messages(#"{"uniqueItems":true}"#, #"["é","e\u0301"]"#).isEmpty)
        let many = (0..<20).map { "\"v\($0)\"" }.joined(separator: ",")
        #expect(try messages("{\"enum\":[\(many),\"Key\"]}", #""\u212Aey""#).count == 1)
        #expect(try messages("{\"enum\":[\(many),\"Key\"]}", #""Key""#).isEmpty)
    }
}
