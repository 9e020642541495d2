import Testing
@testable import LLMOSJSON

@Suite("Parsing valid JSON")
struct ParserValidTests {
    @Test func scalars() throws {
        #expect(try JSON.parse("null") == .null)
        #expect(try JSON.parse("true") == .bool(true))
        #expect(try JSON.parse("false") == .bool(false))
        #expect(try JSON.parse("\"hi\"") == .string("hi"))
        #expect(try JSON.parse(" \t\r\n 42 \n") == .int(42))
    }

    @Test func containers() throws {
        let value = try JSON.parse(#"{"a":[1,2,{"b":null}],"c":{},"d":[],"e":"x"}"#)
        #expect(value == ["a": [1, 2, ["b": nil]], "c": [:], "d": [], "e": "x"])
        #expect(value.objectValue?.keys == ["a", "c", "d", "e"])
        #expect(try JSON.parse(" [ 1 , [ ] , { } ] ") == [1, [], [:]])
    }

    @Test func keysKeepDocumentOrder() throws {
        let value = try JSON.parse(#"{"z":1,"a":2,"m":3}"#)
        #expect(value.objectValue?.keys == ["z", "a", "m"])
        #expect(value.serialized() == #"{"z":1,"a":2,"m":3}"#)
    }

    @Test func integers() throws {
        #expect(try JSON.parse("0") == .int(0))
        #expect(try JSON.parse("-0") == .int(0))
        #expect(try JSON.parse("7") == .int(7))
        #expect(try JSON.parse("-12") == .int(-12))
        #expect(try JSON.parse("123456789012345678") == .int(123_456_789_012_345_678))
        #expect(try JSON.parse("9223372036854775807") == .int(.max))
        #expect(try JSON.parse("-9223372036854775808") == .int(.min))
        #expect(try JSON.parse("-9223372036854775807") == .int(-.max))
    }

    @Test func numbersBeyondInt64BecomeDoubles() throws {
        #expect(try JSON.parse("9223372036854775808") == .double(9_223_372_036_854_775_808.0))
        #expect(try JSON.parse("-9223372036854775809") == .double(-9_223_372_036_854_775_809.0))
        #expect(try JSON.parse("100000000000000000000") == .double(1e20))
        #expect(try JSON.parse("123456789012345678901234567890") == .double(1.2345678901234568e29))
    }

    @Test func doubles() throws {
        #expect(try JSON.parse("1.5") == .double(1.5))
        #expect(try JSON.parse("-0.25") == .double(-0.25))
        #expect(try JSON.parse("1e2") == .double(100))
        #expect(try JSON.parse("1E+2") == .double(100))
        #expect(try JSON.parse("1e-2") == .double(0.01))
        #expect(try JSON.parse("2.5E-3") == .double(0.0025))
        #expect(try JSON.parse("0.1") == .double(0.1))
        #expect(try JSON.parse("123.456") == .double(123.456))
        #expect(try JSON.parse("0.30000000000000004") == .double(0.1 + 0.2))
        #expect(try JSON.parse("3.141592653589793238462643383279") == .double(Double.pi))
        #expect(try JSON.parse("1.7976931348623157e308") == .double(.greatestFiniteMagnitude))
        #expect(try JSON.parse("2.2250738585072014e-308") == .double(.leastNormalMagnitude))
        #expect(try JSON.parse("4.9e-324") == .double(.leastNonzeroMagnitude))
        #expect(try JSON.parse("1e-400") == .double(0))
        #expect(try JSON.parse("0e999999999") == .double(0))
        #expect(try JSON.parse("0.000001") == .double(0.000001))
        #expect(try JSON.parse("1.0") == .double(1))
        // 2^53 + 1 is not a double: rounds to even.
        #expect(try JSON.parse("9007199254740993.0") == .double(9_007_199_254_740_992))
        #expect(try JSON.parse("1" + String(repeating: "0", count: 400) + "e-400") == .double(1))
    }

    @Test func negativeZero() throws {
        let value = try JSON.parse("-0.0")
        guard case .double(let d) = value else { Issue.record("expected a double"); return }
        #expect(d == 0 && d.sign == .minus)
        #expect(value.serialized() == "-0.0")
        guard case .double(let e) = try JSON.parse("-0e5") else { Issue.record("expected a double"); return }
        #expect(e.sign == .minus)
    }

    @Test func doublesRoundTripExactly() throws {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<5000 {
            let d = Double(bitPattern: rng.next())
            guard d.isFinite else { continue }
            let parsed = try JSON.parse(JSONValue.double(d).serialized())
            #expect(parsed.doubleValue?.bitPattern == d.bitPattern, "\(d)")
        }
    }

    @Test func escapes() throws {
        #expect(try JSON.parse(#""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{8}\u{C}\n\r\t"))
        #expect(try JSON.parse(#""\u0041\u00e9\u00E9\u4e2d\u0000""#) == .string("Aéé中\u{0}"))
        #expect(try JSON.parse(#""a\u0020b""#) == .string("a b"))
        #expect(try JSON.parse(#""\u2028\u2029""#) == .string("\u{2028}\u{2029}"))
    }

    @Test func surrogatePairs() throws {
        #expect(try JSON.parse(#""\uD83D\uDE00""#) == .string("😀"))
        #expect(try JSON.parse(#""\ud834\udd1e!""#) == .string("𝄞!"))
        #expect(try JSON.parse(#""\uDBFF\uDFFF""#) == .string("\u{10FFFF}"))
        #expect(try JSON.parse(#""x\uD800\uDC00y""#) == .string("x\u{10000}y"))
    }

    @Test func rawUTF8() throws {
        #expect(try JSON.parse("\"é中😀\u{10FFFF}\"") == .string("é中😀\u{10FFFF}"))
        #expect(try JSON.parse([0x22, 0xEF, 0xBF, 0xBF, 0x22] as [UInt8]) == .string("\u{FFFF}"))
        #expect(try JSON.parse("{\"ключ\":\"значение\"}") == ["ключ": "значение"])
    }

    @Test func entryPointsAgree() throws {
        let text = #"{"a":[1,2.5,"x"]}"#
        let bytes = Array(text.utf8)
        let fromString = try JSON.parse(text)
        let fromArray = try JSON.parse(bytes)
        let fromBuffer = try bytes.withUnsafeBytes { raw in
            Result { () throws(JSONParseError) in try JSON.parse(raw) }
        }.get()
        #expect(fromString == fromArray && fromArray == fromBuffer)
        #expect(syntaxError(bytes) == nil)
        #expect(JSON.syntaxError(in: text) == nil)
    }

    @Test func largeObjectsAndArrays() throws {
        let members = (0..<500).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        let value = try JSON.parse("{\(members)}")
        #expect(value.objectValue?.count == 500)
        #expect(value["k0"] == 0 && value["k499"] == 499 && value["k250"] == 250)
        #expect(value.objectValue?.keys.first == "k0")
        let array = try JSON.parse("[" + (0..<10_000).map(String.init).joined(separator: ",") + "]")
        #expect(array.arrayValue?.count == 10_000)
        #expect(array[9_999] == 9_999)
    }

    @Test func longStrings() throws {
        let long = String(repeating: "abcé\\n", count: 2000)
        let value = try JSON.parse("\"\(long)\"")
        #expect(value.stringValue == String(repeating: "abcé\n", count: 2000))
        // A key that is long and escaped, on both sides of the small-string boundary.
        #expect(try JSON.parse(#"{"0123456789abcdef\u0041":1}"#)["0123456789abcdefA"] == 1)
    }

    @Test func depthAtTheLimit() throws {
        let depth = JSON.defaultMaxDepth
        let nested = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        #expect(throws: Never.self) { try JSON.parse(nested) }
        let objects = String(repeating: "{\"a\":", count: depth) + "1" + String(repeating: "}", count: depth)
        #expect(throws: Never.self) { try JSON.parse(objects) }
        #expect(throws: Never.self) { try JSON.parse("[[[1]]]", maxDepth: 3) }
        #expect(throws: Never.self) { try JSON.parse("1", maxDepth: 0) }
    }
}

@Suite("Syntax errors")
struct ParserErrorTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let input: String
        let offset: Int
        let line: Int
        let column: Int
        let message: String
        var testDescription: String { input.debugDescription }
    }

    static let cases: [Case] = [
        Case(input: "", offset: 0, line: 1, column: 1, message: "unexpected end of input, expected a JSON value"),
        Case(input: "   ", offset: 3, line: 1, column: 4, message: "unexpected end of input, expected a JSON value"),
        Case(input: #"{"a":1 x}"#, offset: 7, line: 1, column: 8, message: "expected ',' or '}' after object member"),
        Case(input: #"{"a":1"#, offset: 6, line: 1, column: 7, message: "unexpected end of input, expected ',' or '}' after object member"),
        Case(input: #"{"a" 1}"#, offset: 5, line: 1, column: 6, message: "expected ':' after object key"),
        Case(input: #"{"a""#, offset: 4, line: 1, column: 5, message: "unexpected end of input, expected ':' after object key"),
        Case(input: #"{"a":}"#, offset: 5, line: 1, column: 6, message: "unexpected '}', expected a JSON value"),
        Case(input: "{1:2}", offset: 1, line: 1, column: 2, message: "expected a string key or '}'"),
        Case(input: "{", offset: 1, line: 1, column: 2, message: "unexpected end of input, expected a string key or '}'"),
        Case(input: "{'a':1}", offset: 1, line: 1, column: 2, message: "object keys must be strings in double quotes"),
        Case(input: #"{"a":1,}"#, offset: 7, line: 1, column: 8, message: "trailing comma in object"),
        Case(input: #"{"a":1,2}"#, offset: 7, line: 1, column: 8, message: "expected a string key after ','"),
        Case(input: "[1,]", offset: 3, line: 1, column: 4, message: "trailing comma in array"),
        Case(input: "[1 2]", offset: 3, line: 1, column: 4, message: "expected ',' or ']' after array element"),
        Case(input: "[1", offset: 2, line: 1, column: 3, message: "unexpected end of input, expected ',' or ']' after array element"),
        Case(input: "[,1]", offset: 1, line: 1, column: 2, message: "unexpected ',', expected a JSON value"),
        Case(input: "]", offset: 0, line: 1, column: 1, message: "unexpected ']', expected a JSON value"),
        Case(input: "[1] x", offset: 4, line: 1, column: 5, message: "trailing characters after the JSON value"),
        Case(input: "1 2", offset: 2, line: 1, column: 3, message: "trailing characters after the JSON value"),
        Case(input: "{}}", offset: 2, line: 1, column: 3, message: "trailing characters after the JSON value"),
        Case(input: #""abc"#, offset: 0, line: 1, column: 1, message: "unterminated string"),
        Case(input: #"["abc\"#, offset: 5, line: 1, column: 6, message: "unterminated string"),
        Case(input: #""a\qb""#, offset: 2, line: 1, column: 3, message: "invalid escape \\q"),
        Case(input: #""\x41""#, offset: 1, line: 1, column: 2, message: "invalid escape \\x"),
        Case(input: "\"\\\u{1}\"", offset: 1, line: 1, column: 2, message: "invalid escape: backslash followed by character U+0001"),
        Case(input: #""\u12""#, offset: 1, line: 1, column: 2, message: "invalid \\u escape, expected 4 hex digits"),
        Case(input: #""\u12G4""#, offset: 1, line: 1, column: 2, message: "invalid \\u escape, expected 4 hex digits"),
        Case(input: #""\uD800""#, offset: 1, line: 1, column: 2, message: "unpaired high surrogate \\uD800 in string"),
        Case(input: #""\uD83Dx""#, offset: 1, line: 1, column: 2, message: "unpaired high surrogate \\uD83D in string"),
        Case(input: #""\uD800\u0041""#, offset: 1, line: 1, column: 2, message: "unpaired high surrogate \\uD800 in string"),
        Case(input: #""\uD800\uD800""#, offset: 1, line: 1, column: 2, message: "unpaired high surrogate \\uD800 in string"),
        Case(input: #""\uDE00""#, offset: 1, line: 1, column: 2, message: "unpaired low surrogate \\uDE00 in string"),
        Case(input: #""ab\udfff""#, offset: 3, line: 1, column: 4, message: "unpaired low surrogate \\uDFFF in string"),
        Case(input: "\"a\tb\"", offset: 2, line: 1, column: 3, message: "unescaped control character U+0009 in string"),
        Case(input: "\"a\nb\"", offset: 2, line: 1, column: 3, message: "unescaped control character U+000A in string"),
        Case(input: "\"\u{0}\"", offset: 1, line: 1, column: 2, message: "unescaped control character U+0000 in string"),
        Case(input: "01", offset: 0, line: 1, column: 1, message: "leading zeros are not allowed in numbers"),
        Case(input: "-012", offset: 0, line: 1, column: 1, message: "leading zeros are not allowed in numbers"),
        Case(input: "00.5", offset: 0, line: 1, column: 1, message: "leading zeros are not allowed in numbers"),
        Case(input: "1.", offset: 2, line: 1, column: 3, message: "expected a digit after the decimal point"),
        Case(input: "1.e5", offset: 2, line: 1, column: 3, message: "expected a digit after the decimal point"),
        Case(input: "1e", offset: 2, line: 1, column: 3, message: "expected a digit in the exponent"),
        Case(input: "1e+", offset: 3, line: 1, column: 4, message: "expected a digit in the exponent"),
        Case(input: "-", offset: 1, line: 1, column: 2, message: "unexpected end of input, expected a digit after '-'"),
        Case(input: "-a", offset: 1, line: 1, column: 2, message: "expected a digit after '-'"),
        Case(input: "- 1", offset: 1, line: 1, column: 2, message: "expected a digit after '-'"),
        Case(input: "+1", offset: 0, line: 1, column: 1, message: "numbers may not start with '+'"),
        Case(input: ".5", offset: 0, line: 1, column: 1, message: "numbers must have a digit before the decimal point"),
        Case(input: "1e400", offset: 0, line: 1, column: 1, message: "number out of range: 1e400"),
        Case(input: "[-1.5e99999]", offset: 1, line: 1, column: 2, message: "number out of range: -1.5e99999"),
        Case(input: "NaN", offset: 0, line: 1, column: 1, message: "NaN and Infinity are not valid JSON, expected a JSON value"),
        Case(input: "[Infinity]", offset: 1, line: 1, column: 2, message: "NaN and Infinity are not valid JSON, expected a JSON value"),
        Case(input: "-Infinity", offset: 1, line: 1, column: 2, message: "expected a digit after '-'"),
        Case(input: "tru", offset: 0, line: 1, column: 1, message: "invalid literal, expected 'true'"),
        Case(input: "[truex]", offset: 5, line: 1, column: 6, message: "expected ',' or ']' after array element"),
        Case(input: "nul", offset: 0, line: 1, column: 1, message: "invalid literal, expected 'null'"),
        Case(input: "False", offset: 0, line: 1, column: 1, message: "unexpected character 'F', expected a JSON value"),
        Case(input: "'a'", offset: 0, line: 1, column: 1, message: "strings must use double quotes"),
        Case(input: "[1] // c", offset: 4, line: 1, column: 5, message: "trailing characters after the JSON value"),
        Case(input: "/* c */ 1", offset: 0, line: 1, column: 1, message: "comments are not allowed in JSON"),
        Case(input: #"{"a":1,"a":2}"#, offset: 7, line: 1, column: 8, message: "duplicate key \"a\" in object"),
        Case(input: #"{"a":1,"\u0061":2}"#, offset: 7, line: 1, column: 8, message: "duplicate key \"a\" in object"),
        Case(input: "\u{FEFF}{}", offset: 0, line: 1, column: 1, message: "unexpected byte 0xEF, expected a JSON value"),
        Case(input: "\u{0}", offset: 0, line: 1, column: 1, message: "unexpected character U+0000, expected a JSON value"),
        Case(input: "{\n  \"a\": 1,\n  \"b\" 2\n}", offset: 18, line: 3, column: 7, message: "expected ':' after object key"),
        Case(input: "[\r\n1,\r\n]", offset: 7, line: 3, column: 1, message: "trailing comma in array"),
        Case(input: "[\r1,\r]", offset: 5, line: 3, column: 1, message: "trailing comma in array"),
        Case(input: "[\"é\", x]", offset: 7, line: 1, column: 7, message: "unexpected character 'x', expected a JSON value"),
    ]

    @Test(arguments: cases)
    func reportsPositionAndMessage(_ c: Case) throws {
        let error = try #require(parseError(c.input))
        #expect(error.message == c.message)
        #expect(error.offset == c.offset)
        #expect(error.line == c.line)
        #expect(error.column == c.column)
        #expect(error.description == "line \(c.line), column \(c.column): \(c.message)")
        // The syntax-only check agrees exactly.
        #expect(syntaxError(Array(c.input.utf8)) == error)
    }

    @Test func nestingTooDeep() throws {
        let error = try #require(parseError(String(repeating: "[", count: 257) + String(repeating: "]", count: 257)))
        #expect(error.message == "nesting deeper than 256")
        #expect(error.offset == 256)
        let small = try #require(parseError(#"{"a":[[1]]}"#, maxDepth: 2))
        #expect(small.message == "nesting deeper than 2")
        #expect(small.offset == 6)
        #expect(parseError("[]", maxDepth: 0)?.message == "nesting deeper than 0")
    }

    @Test func hugeNestingDoesNotOverflowTheStack() throws {
        for opener in ["[", "{\"a\":", "[{\"a\":"] {
            let bytes = Array(String(repeating: opener, count: 100_000).utf8)
            guard case .failure(let error) = parseResult(bytes) else { Issue.record("parsed"); continue }
            #expect(error.message == "nesting deeper than 256")
            #expect(syntaxError(bytes) == error)
        }
    }

    @Test(arguments: [
        ("lone continuation byte", [0x80] as [UInt8]),
        ("invalid lead byte", [0xFF]),
        ("0xC0 overlong", [0xC0, 0x80]),
        ("0xC1 overlong", [0xC1, 0xBF]),
        ("3-byte overlong", [0xE0, 0x80, 0xAF]),
        ("4-byte overlong", [0xF0, 0x80, 0x80, 0xAF]),
        ("encoded surrogate", [0xED, 0xA0, 0x80]),
        ("beyond U+10FFFF", [0xF4, 0x90, 0x80, 0x80]),
        ("0xF5 lead", [0xF5, 0x80, 0x80, 0x80]),
        ("truncated 2-byte", [0xC3]),
        ("truncated 3-byte", [0xE2, 0x82]),
        ("truncated 4-byte", [0xF0, 0x9F, 0x98]),
        ("bad continuation", [0xE2, 0x28, 0xA1]),
    ])
    func invalidUTF8(_ name: String, _ sequence: [UInt8]) throws {
        let bytes = Array("[\"ab".utf8) + sequence + Array("\"]".utf8)
        guard case .failure(let error) = parseResult(bytes) else { Issue.record("accepted \(name)"); return }
        #expect(error.message == "invalid UTF-8")
        #expect(error.offset == 4)
        #expect(syntaxError(bytes) == error)
    }

    @Test func invalidUTF8InKey() throws {
        let bytes = Array("{\"".utf8) + [0xC3, 0x28] + Array("\":1}".utf8)
        guard case .failure(let error) = parseResult(bytes) else { Issue.record("accepted"); return }
        #expect(error.message == "invalid UTF-8" && error.offset == 2)
    }

    @Test func duplicateKeysInLargeAndNestedObjects() throws {
        let members = (0..<40).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        let large = try #require(parseError("{\(members),\"k3\":0}"))
        #expect(large.message == "duplicate key \"k3\" in object")
        #expect(syntaxError(Array("{\(members),\"k3\":0}".utf8)) == large)
        // The same key in different objects is fine, at any depth.
        #expect(parseError(#"{"a":{"a":{"a":1}},"b":{"a":2},"c":[{"a":1},{"a":2}]}"#) == nil)
        #expect(parseError(#"{"a":{"b":1,"b":2}}"#)?.message == "duplicate key \"b\" in object")
        // Keys equal after unescaping are duplicates; different non-ASCII keys are not.
        #expect(parseError(#"{"é":1,"\u00e9":2}"#)?.message == "duplicate key \"é\" in object")
        #expect(parseError(#"{"é":1,"è":2}"#) == nil)
    }
}

/// Cases in the style of JSONTestSuite (y_: must accept, n_: must reject).
@Suite("JSONTestSuite-style cases")
struct JSONTestSuiteTests {
    static let accepted: [String] = [
        "[[]   ]", "[\"\"]", "[]", "[\"a\"]", "[false]", "[null, 1, \"1\", {}]", "[null]", "[1\n]", " [1]", "[1,null,null,null,2]",
        "[2] ", "[123e65]", "[0e+1]", "[0e1]", "[ 4]", "[-0.000000000000000000000000000000000000000000000000000000000000000000000000000001]\n",
        "[20e1]", "[-0]", "[-123]", "[-1]", "[1E22]", "[1E-2]", "[1E+2]", "[123e45]", "[123.456e78]", "[1e-2]", "[1e+2]",
        "[123]", "[123.456789]", "{\"asd\":\"sdf\", \"dfg\":\"fgh\"}", "{\"asd\":\"sdf\"}", "{\"a\":\"b\",\"b\":\"c\"}",
        "{}", "{\"\":0}", "{\"foo\\u0000bar\": 42}", "{ \"min\": -1.0e+28, \"max\": 1.0e+28 }",
        "{\"x\":[{\"id\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}], \"id\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
        "{\"a\":[]}", "{\"title\":\"\\u041f\\u043e\\u043b\\u0442\\u043e\\u0440\\u0430 \\u0417\\u0435\\u043c\\u043b\\u0435\\u043a\\u043e\\u043f\\u0430\" }",
        "{\n\"a\": \"b\"\n}", "[\"\\u0060\\u012a\\u12AB\"]", "[\"\\uD801\\udc37\"]", "[\"\\ud83d\\ude39\\ud83d\\udc8d\"]",
        "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]", "[\"\\\\u0000\"]", "[\"\\\"\"]", "[\"a/*b*/c/*d//e\"]", "[\"\\\\a\"]", "[\"\\\\n\"]",
        "[\"\\u0012\"]", "[\"\\uFFFF\"]", "[\"asd\"]", "[ \"asd\"]", "[\"\\uDBFF\\uDFFF\"]", "[\"new\\u00A0line\"]", "[\"\u{10FFFF}\"]",
        "[\"\u{FFFF}\"]", "[\"\\u0000\"]", "[\"\\u002c\"]", "[\"π\"]", "[\"\u{1BFFF}\"]", "[\"asd \"]", "\" \"", "[\"\\uD834\\uDd1e\"]",
        "[\"\\u0821\"]", "[\"\\u0123\"]", "[\"\u{2028}\"]", "[\"\u{2029}\"]", "[\"\\u0061\\u30af\\u30EA\\u30b9\"]", "[\"new\\u000Aline\"]",
        "[\"\u{7F}\"]", "[\"\\uA66D\"]", "[\"\\u005C\"]", "[\"⍂㈴⍂\"]", "[\"\\uDBFF\\uDFFE\"]", "[\"\\uD83F\\uDFFE\"]", "[\"\\u200B\"]",
        "[\"\\u2064\"]", "[\"\\uFDD0\"]", "[\"\\uFFFE\"]", "[\"\\u0022\"]", "[\"€𝄞\"]", "[\"aa\"]", "false", "42", "-0.1", "null",
        "\"asd\"", "true", "\"\"", "[\"a\"]\n", "[true]", " [] ", "[1e1]", "[0.5]", "[1.5e-300]",
    ]

    static let rejected: [String] = [
        "[1 true]", "[a\u{E5}]", "[\"\": 1]", "[\"\"],", "[,1]", "[1,,2]", "[\"x\",,]", "[\"x\"]]", "[\"\",]", "[\"x\"", "[x", "[3[4]]",
        "[\u{FF}]", "[1:2]", "[,]", "[-]", "[   , \"\"]", "[\"a\",\n4\n,1,", "[1,]", "[1,,]", "[\"\u{0B}\"a\"\\f\"]", "[*]", "[\"\"", "[1,",
        "[1,\n1\n,1", "[{}", "[fals]", "[nul]", "[tru]", "[++1234]", "[+1]", "[+Inf]", "[-01]", "[-1.0.]", "[-2.]", "[-NaN]",
        "[.-1]", "[.2e-3]", "[0.1.2]", "[0.3e+]", "[0.3e]", "[0.e1]", "[0E+]", "[0E]", "[0e+]", "[0e]", "[1.0e+]", "[1.0e-]",
        "[1.0e]", "[1 000.0]", "[1eE2]", "[2.e+3]", "[2.e-3]", "[2.e3]", "[9.e+]", "[Inf]", "[NaN]", "[\u{FF11}]", "[1+2]", "[0x1]",
        "[0x42]", "[Infinity]", "[0e+-1]", "[-123.123foo]", "[123\u{E5}]", "[1e1\u{E5}]", "[0\u{E5}]", "[-Infinity]", "[-foo]", "[- 1]",
        "[-012]", "[-.123]", "[-1x]", "[1ea]", "[1.]", "[.123]", "[1.2a-3]", "[1.8011670033376514H-308]", "[012]",
        "[\"x\", truth]", "{[: \"x\"}\n", "{\"x\", null}", "{\"x\"::\"b\"}", "{🇨🇭}", "{\"a\":\"a\" 123}", "{key: 'value'}",
        "{\"\u{B9}\":\"0\",}", "{\"a\" b}", "{:\"b\"}", "{\"a\" \"b\"}", "{\"a\":", "{\"a\"", "{1:1}", "{9999E9999:1}",
        "{null:null,null:null}", "{\"id\":0,,,,,}", "{'a':0}", "{\"id\":0,}", "{\"a\":\"b\"}/**/", "{\"a\":\"b\"}/**//",
        "{\"a\":\"b\"}//", "{\"a\":\"b\"}/", "{\"a\":\"b\",,\"c\":\"d\"}", "{a: \"b\"}", "{\"a\":\"a", "{ \"foo\" : \"bar\", \"a\" }",
        "{\"a\":\"b\"}#", " ", "[\"\\uD800\\\"]", "[\"\\uD800\\u\"]", "[\"\\uD800\\u1\"]", "[\"\\uD800\\u1x\"]", "[é]", "[\"\\\u{0}\"]",
        "[\"\\\\\\\"]", "[\"\\\t\"]", "[\"\\🌀\"]", "[\"\\\"]", "[\"\\u00A\"]", "[\"\\uD834\\uDd\"]", "[\"\\uD800\\uD800\\x\"]",
        "[\"\\u\u{E5}\"]", "[\"\\a\"]", "[\"\\uqqqq\"]", "[\\u0020\"asd\"]", "[\\n]", "\"", "['single quote']", "abc", "[\"\\",
        "[\"new\nline\"]", "[\"\t\"]", "\"\\UA66D\"", "\"\"x", "[\u{2060}]", "[\u{0}]", "[\"a\u{0}a\"]", "<.>", "[<null>]", "[1]x",
        "[1]]", "[\"asd]", "a\u{E5}", "[True]", "1]", "{\"x\": true,", "[][]", "]", "\u{EF}\u{BB}{}", "[\u{1}]", "[\"a\"\u{0C}]", "[⁠]",
        "{}}", "{\"a\":1}a", "\u{FEFF}", "[\u{C}]", "2@", "{}\u{0}", "[\"a\"]x", "{\"\":", "[{", "{\"a\":true} \"x\"",
        "[\"\\u{41}\"]", "[\"\\uDFAA\"]", "[\"\\uDADA\"]", "[\"\\uD888\\u1234\"]", "{\"a\":1,\"a\":1}",
    ]

    @Test(arguments: accepted)
    func accepts(_ input: String) {
        #expect(parseError(input) == nil, "\(input.debugDescription)")
        #expect(syntaxError(Array(input.utf8)) == nil, "\(input.debugDescription)")
    }

    @Test(arguments: rejected)
    func rejects(_ input: String) {
        let error = parseError(input)
        #expect(error != nil, "\(input.debugDescription)")
        #expect(syntaxError(Array(input.utf8)) == error, "\(input.debugDescription)")
    }

    @Test func rejectsRawInvalidBytes() {
        for bytes: [UInt8] in [[0x5B, 0xFF, 0x5D], [0x22, 0xE0, 0xFF, 0x22], [0x22, 0xED, 0xBF, 0xBF, 0x22], [0x5B, 0x22, 0x81, 0x22, 0x5D],
                               [0xEF, 0xBB, 0xBF, 0x7B, 0x7D], [0x22, 0xF4, 0xBF, 0xBF, 0xBF, 0x22], [0x22, 0xFC, 0x80, 0x80, 0x80, 0x80, 0x80, 0x22]] {
            guard case .failure = parseResult(bytes) else { Issue.record("accepted \(bytes)"); continue }
            #expect(syntaxError(bytes) != nil)
        }
    }
}
