import Testing
@testable import LLMOSJSON

@Suite("Serialization")
struct SerializerTests {
    @Test func compact() {
        let value: JSONValue = ["a": 1, "b": [true, false, nil], "c": ["d": "e"], "f": [], "g": [:]]
        #expect(value.serialized() == #"{"a":1,"b":[true,false,null],"c":{"d":"e"},"f":[],"g":{}}"#)
    }

    @Test func pretty() {
        let value: JSONValue = ["a": 1, "b": [true, nil], "c": [:], "d": [], "e": ["f": "g"]]
        let expected = """
            {
              "a": 1,
              "b": [
                true,
                null
              ],
              "c": {},
              "d": [],
              "e": {
                "f": "g"
              }
            }
            """
        #expect(value.serialized(pretty: true) == expected)
        #expect(JSONValue.int(5).serialized(pretty: true) == "5")
        #expect(JSONValue.array([]).serialized(pretty: true) == "[]")
        #expect(JSONValue.array([[1]]).serialized(pretty: true) == "[\n  [\n    1\n  ]\n]")
    }

    @Test func integers() {
        let cases: [(Int64, String)] = [(0, "0"), (7, "7"), (-7, "-7"), (10, "10"), (1234567890, "1234567890"),
                                        (.max, "9223372036854775807"), (.min, "-9223372036854775808")]
        for (i, text) in cases { #expect(JSONValue.int(i).serialized() == text) }
    }

    @Test func doubles() throws {
        let cases: [(Double, String)] = [(3, "3.0"), (-0.0, "-0.0"), (0.1, "0.1"), (1.5, "1.5"), (1e16, "1e+16"),
                                         (1e-7, "1e-07"), (0.1 + 0.2, "0.30000000000000004"), (-2.5e-300, "-2.5e-300"),
                                         (.greatestFiniteMagnitude, "1.7976931348623157e+308"), (5e-324, "5e-324")]
        for (d, text) in cases {
            #expect(JSONValue.double(d).serialized() == text)
            #expect(identical(try JSON.parse(text), .double(d)))
        }
        #expect(JSONValue.double(.nan).serialized() == "null")
        #expect(JSONValue.double(.infinity).serialized() == "null")
        #expect(JSONValue.array([.double(-.infinity)]).serialized() == "[null]")
    }

    @Test func stringEscapes() {
        let value = JSONValue.string("\"\\/\n\r\t\u{8}\u{C}\u{0}\u{1F}\u{7F}é😀\u{2028}")
        #expect(value.serialized() == #""\"\\/\n\r\t\b\f\u0000\u001f"# + "\u{7F}é😀\u{2028}\"")
        #expect(JSONValue.object(["k\"ey\n": 1]).serialized() == #"{"k\"ey\n":1}"#)
        #expect(JSONValue.string("").serialized() == #""""#)
        let long = String(repeating: "ab\"c", count: 300)
        #expect(JSONValue.string(long).serialized() == "\"" + String(repeating: "ab\\\"c", count: 300) + "\"")
    }

    @Test func serializeIntoAppends() {
        var bytes = Array("prefix:".utf8)
        JSONValue.array([1, "x"]).serialize(into: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == #"prefix:[1,"x"]"#)
    }

    @Test func largeOutputGrowsPastTheStackBuffer() throws {
        let value = JSONValue.array((0..<5000).map { .string("item \($0)") })
        let text = value.serialized()
        #expect(text.utf8.count > 40_000)
        #expect(try JSON.parse(text) == value)
        #expect(try JSON.parse(value.serialized(pretty: true)) == value)
    }

    @Test func roundTripOfParsedDocuments() throws {
        let documents = [
            #"{"a":[1,2.5,-0.0,1e+300,"x\u0000y"],"b":{"c":null,"d":true},"é":"😀"}"#,
            #"[[],{},[[]],{"":""}]"#,
            #""\ud83d\ude00\n""#,
            #"-9223372036854775808"#,
        ]
        for text in documents {
            let value = try JSON.parse(text)
            #expect(identical(try JSON.parse(value.serialized()), value))
            #expect(identical(try JSON.parse(value.serialized(pretty: true)), value))
            #expect(try JSON.parse(value.serialized()).serialized() == value.serialized())
        }
    }

    @Test func roundTripOfRandomValues() throws {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<2000 {
            let value = rng.value()
            let compact = value.serialized()
            #expect(identical(try JSON.parse(compact), value), "\(compact)")
            #expect(identical(try JSON.parse(value.serialized(pretty: true)), value))
            #expect(JSON.syntaxError(in: compact) == nil)
        }
    }
}
