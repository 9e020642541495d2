import Testing
@testable import LLMOSJSON

@Suite("JSONValue and JSONObject")
struct ValueTests {
    @Test func literals() {
        let value: JSONValue = ["n": nil, "b": true, "i": 3, "d": 2.5, "s": "x", "a": [1, "two"], "o": ["k": false]]
        #expect(value["n"] == .null)
        #expect(value["b"] == .bool(true))
        #expect(value["i"] == .int(3))
        #expect(value["d"] == .double(2.5))
        #expect(value["s"] == .string("x"))
        #expect(value["a"] == .array([.int(1), .string("two")]))
        #expect(value["o"] == .object(JSONObject([("k", .bool(false))])))
        #expect(value.objectValue?.keys == ["n", "b", "i", "d", "s", "a", "o"])
    }

    @Test func accessors() {
        let s: JSONValue = "text"
        #expect(s.stringValue == "text" && s.boolValue == nil && s.doubleValue == nil && s.int64Value == nil)
        #expect(JSONValue.bool(false).boolValue == false)
        #expect(JSONValue.int(4).doubleValue == 4 && JSONValue.int(4).int64Value == 4)
        #expect(JSONValue.double(3.0).int64Value == 3)
        #expect(JSONValue.double(-2.0).int64Value == -2)
        #expect(JSONValue.double(3.5).int64Value == nil)
        #expect(JSONValue.double(1e19).int64Value == nil)
        #expect(JSONValue.double(-9_223_372_036_854_775_808.0).int64Value == .min)
        #expect(JSONValue.double(9_223_372_036_854_775_808.0).int64Value == nil)
        #expect(JSONValue.double(.nan).int64Value == nil)
        #expect(JSONValue.double(.infinity).int64Value == nil)
        #expect(JSONValue.array([1]).arrayValue == [1])
        #expect(JSONValue.object(["a": 1]).objectValue?["a"] == 1)
        #expect(JSONValue.null.isNull && !JSONValue.int(0).isNull)
        #expect(JSONValue.int(1)["a"] == nil)
        #expect(JSONValue.array([1, 2])[1] == 2 && JSONValue.array([1, 2])[2] == nil && JSONValue.array([1])[-1] == nil)
    }

    @Test func typeNames() {
        let names = ([nil, true, 1, 1.5, "s", [], [:]] as [JSONValue]).map(\.typeName)
        #expect(names == ["null", "boolean", "integer", "number", "string", "array", "object"])
    }

    @Test func objectPreservesInsertionOrder() {
        var object = JSONObject()
        object["z"] = 1
        object["a"] = 2
        object["m"] = 3
        #expect(object.keys == ["z", "a", "m"])
        object["a"] = 20  // replaced in place
        #expect(object.keys == ["z", "a", "m"] && object["a"] == 20)
        object["a"] = nil  // removed
        #expect(object.keys == ["z", "m"] && object.count == 2 && object["a"] == nil)
        object["a"] = 5  // appended again
        #expect(object.keys == ["z", "m", "a"])
        #expect(object.map(\.key) == ["z", "m", "a"])
        #expect(object.map(\.value) == [1, 3, 5])
    }

    @Test func duplicatePairsLastValueWinsAtFirstPosition() {
        let object = JSONObject([("a", 1), ("b", 2), ("a", 3)])
        #expect(object.keys == ["a", "b"])
        #expect(object["a"] == 3)
        let literal: JSONObject = ["x": 1, "y": 2, "x": 9]
        #expect(literal.keys == ["x", "y"] && literal["x"] == 9)
    }

    @Test func largeObjectsUseAnIndexCorrectly() {
        var object = JSONObject()
        for i in 0..<100 { object["k\(i)"] = .int(Int64(i)) }
        #expect(object.count == 100)
        for i in 0..<100 { #expect(object["k\(i)"] == .int(Int64(i))) }
        #expect(object.position(of: "k42") == 42)
        object["k10"] = nil
        #expect(object.count == 99 && object["k10"] == nil && object["k11"] == 11 && object.position(of: "k11") == 10)
        for i in 20..<100 { object["k\(i)"] = nil }
        #expect(object.count == 19 && object["k5"] == 5 && object["k19"] == 19)
        object["new"] = "v"
        #expect(object.keys.last == "new" && object["new"] == "v")
    }

    @Test func objectEqualityIgnoresOrder() {
        let a: JSONObject = ["x": 1, "y": [1, 2]]
        let b: JSONObject = ["y": [1, 2], "x": 1]
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        #expect(Set([JSONValue.object(a), .object(b)]).count == 1)
        #expect(a != ["x": 1])
        #expect(a != ["x": 1, "z": [1, 2]])
        #expect(JSONValue.array([1, 2]) != .array([2, 1]))
    }

    @Test func structuralEqualityKeepsIntAndDoubleApart() {
        #expect(JSONValue.int(1) != .double(1))
        #expect(JSONValue.int(1).isEquivalent(to: .double(1)))
        #expect(JSONValue.array([1, ["a": 2.0]]).isEquivalent(to: [1.0, ["a": 2]]))
        #expect(!JSONValue.int(1).isEquivalent(to: .double(1.5)))
        #expect(!JSONValue.int(9_007_199_254_740_993).isEquivalent(to: .double(9_007_199_254_740_992)))
        #expect(!JSONValue.string("1").isEquivalent(to: .int(1)))
        #expect(JSONValue.object(["a": 1, "b": 2]).isEquivalent(to: ["b": 2.0, "a": 1]))
    }

    @Test func numberComparisonIsExact() {
        #expect(NumberComparison.compare(9_007_199_254_740_993, 9_007_199_254_740_992.0) == 1)
        #expect(NumberComparison.compare(.max, 9_223_372_036_854_775_808.0) == -1)
        #expect(NumberComparison.compare(.min, -9_223_372_036_854_775_808.0) == 0)
        #expect(NumberComparison.compare(-3, -2.5) == -1)
        #expect(NumberComparison.compare(-2, -2.5) == 1)
        #expect(NumberComparison.compare(2, 2.5) == -1)
        #expect(NumberComparison.compare(3, 2.5) == 1)
        #expect(NumberComparison.compare(0, -0.0) == 0)
        #expect(NumberComparison.compare(0, .nan) == 2)
        #expect(NumberComparison.compare(5, .infinity) == -1)
        #expect(NumberComparison.compare(5, -.infinity) == 1)
    }

    @Test func descriptionIsCompactJSON() {
        let value: JSONValue = ["a": [1, 2.5, "x"], "b": nil]
        #expect(value.description == #"{"a":[1,2.5,"x"],"b":null}"#)
        #expect("\(value)" == value.serialized())
        let object: JSONObject = ["k": true]
        #expect(object.description == #"{"k":true}"#)
    }
}
