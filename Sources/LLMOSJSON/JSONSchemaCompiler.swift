// Compiling schema JSON into `SchemaNode`s: keyword checking, `$ref` resolution, and the
// compile-time guard against `$ref` loops that would make validation recurse forever.

/// A step in a schema location: an object key or an array index.
enum SchemaPathSegment {
    case key(String)
    case index(Int)
}

struct SchemaCompiler {
    let root: JSONValue
    /// Nodes by canonical JSON pointer, so that a location reached both through the schema
    /// tree and through `$ref`s compiles once, and recursive refs find their target.
    var byPointer: [String: NodeRef] = [:]
    /// Every node and rule object, for `JSONSchema.owned`.
    var owned: [any AnyObject & Sendable] = []
    var nodes: [NodeRef] = []
    /// Edges to subschemas applied to the same instance (applicators and `$ref`); a cycle of
    /// these never reaches a leaf, so it is rejected.
    var inPlaceEdges: [ObjectIdentifier: [Edge]] = [:]

    struct Edge {
        let target: NodeRef
        /// The `$ref` text when the edge is a reference, and where the referring schema is.
        let ref: String?
        let holder: String
    }

    init(root: JSONValue) {
        self.root = root
    }

    // MARK: Nodes

    /// Keeps `object` alive as long as the schema, and returns an uncounted reference to it.
    mutating func own<Object: AnyObject & Sendable>(_ object: Object) -> Unowned<Object> {
        owned.append(object)
        return Unowned(object)
    }

    mutating func compile(_ value: JSONValue, at path: [SchemaPathSegment]) throws(JSONSchemaError) -> NodeRef {
        let pointer = Self.pointer(path)
        if let existing = byPointer[pointer] { return existing }
        let node = own(SchemaNode())
        byPointer[pointer] = node
        nodes.append(node)
        switch value {
        case .bool(true):
            break
        case .bool(false):
            node.object.setChecks([.never])
        case .object(let keywords):
            node.object.setChecks(try compileKeywords(keywords, at: path, into: node))
        default:
            throw Self.error(path, "expected a schema (an object or a boolean), got \(value.typeName)")
        }
        return node
    }

    mutating func compileKeywords(
        _ o: JSONObject, at path: [SchemaPathSegment], into node: NodeRef
    ) throws(JSONSchemaError) -> [Check] {
        for keyword in ["unevaluatedProperties", "unevaluatedItems", "$dynamicRef", "$recursiveRef"] where o[keyword] != nil {
            throw Self.error(path + [.key(keyword)], "\"\(keyword)\" is not supported")
        }
        var checks: [Check] = []
        var edges: [Edge] = []
        let here = Self.display(path)

        if let type = o["type"] { checks.append(.type(try typeSet(type, at: path + [.key("type")]))) }
        if let value = o["const"] { checks.append(.constant(own(ConstantRule(value)))) }
        if let value = o["enum"] {
            guard case .array(let values) = value, !values.isEmpty else {
                throw Self.error(path + [.key("enum")], "expected a non-empty array")
            }
            checks.append(.enumeration(own(EnumRule(values))))
        }
        if let rule = try numberRule(o, at: path) { checks.append(.number(own(rule))) }
        if let rule = try stringRule(o, at: path) { checks.append(.string(own(rule))) }
        if let rule = try arrayRule(o, at: path) { checks.append(.array(own(rule))) }
        if let rule = try objectRule(o, at: path, edges: &edges, holder: here) { checks.append(.object(own(rule))) }

        if let schemas = try schemaList(o, "allOf", at: path) {
            checks.append(.allOf(own(NodeList(schemas))))
            edges += schemas.map { Edge(target: $0, ref: nil, holder: here) }
        }
        if let schemas = try schemaList(o, "anyOf", at: path) {
            checks.append(.anyOf(own(NodeList(schemas))))
            edges += schemas.map { Edge(target: $0, ref: nil, holder: here) }
        }
        if let schemas = try schemaList(o, "oneOf", at: path) {
            checks.append(.oneOf(own(NodeList(schemas))))
            edges += schemas.map { Edge(target: $0, ref: nil, holder: here) }
        }
        if let value = o["not"] {
            let schema = try compile(value, at: path + [.key("not")])
            checks.append(.not(schema))
            edges.append(Edge(target: schema, ref: nil, holder: here))
        }
        if let value = o["if"] {
            let condition = try compile(value, at: path + [.key("if")])
            let then = try o["then"].map { v throws(JSONSchemaError) in try compile(v, at: path + [.key("then")]) }
            let otherwise = try o["else"].map { v throws(JSONSchemaError) in try compile(v, at: path + [.key("else")]) }
            if then != nil || otherwise != nil {
                checks.append(.conditional(own(ConditionalRule(condition: condition, then: then, otherwise: otherwise))))
                edges += [condition, then, otherwise].compactMap { $0 }.map { Edge(target: $0, ref: nil, holder: here) }
            }
        }
        for definitions in ["$defs", "definitions"] {
            guard let value = o[definitions] else { continue }
            guard case .object(let defs) = value else {
                throw Self.error(path + [.key(definitions)], "expected an object of schemas")
            }
            for (name, schema) in defs { _ = try compile(schema, at: path + [.key(definitions), .key(name)]) }
        }
        if let value = o["$ref"] {
            guard case .string(let ref) = value else { throw Self.error(path + [.key("$ref")], "expected a string") }
            let target = try resolve(ref, from: path)
            checks.append(.ref(target))
            edges.append(Edge(target: target, ref: ref, holder: here))
        }
        if !edges.isEmpty { inPlaceEdges[ObjectIdentifier(node.object)] = edges }
        return checks
    }

    // MARK: Keywords

    func typeSet(_ value: JSONValue, at path: [SchemaPathSegment]) throws(JSONSchemaError) -> TypeSet {
        func named(_ name: String) throws(JSONSchemaError) -> TypeSet {
            guard let entry = TypeSet.named.first(where: { $0.0.utf8Equals(name) }) else {
                throw Self.error(path, "unknown type \"\(name)\" (expected one of \(TypeSet.named.map(\.0).joined(separator: ", ")))")
            }
            return entry.1
        }
        switch value {
        case .string(let name):
            return try named(name)
        case .array(let names) where !names.isEmpty:
            var set: TypeSet = []
            for name in names {
                guard case .string(let s) = name else { break }
                set.formUnion(try named(s))
            }
            if names.allSatisfy({ $0.stringValue != nil }) { return set }
        default:
            break
        }
        throw Self.error(path, "expected a type name or a non-empty array of type names")
    }

    func numberRule(_ o: JSONObject, at path: [SchemaPathSegment]) throws(JSONSchemaError) -> NumberRule? {
        func number(_ key: String) throws(JSONSchemaError) -> JSONValue? {
            guard let value = o[key] else { return nil }
            switch value {
            case .int, .double: return value
            default: throw Self.error(path + [.key(key)], "expected a number")
            }
        }
        var minimum = try number("minimum")
        var maximum = try number("maximum")
        var exclusiveMinimum: JSONValue? = nil
        var exclusiveMaximum: JSONValue? = nil
        // Draft 4 spelled exclusive bounds as booleans modifying minimum and maximum.
        if case .bool(let exclusive) = o["exclusiveMinimum"] {
            if exclusive { (exclusiveMinimum, minimum) = (minimum, nil) }
        } else {
            exclusiveMinimum = try number("exclusiveMinimum")
        }
        if case .bool(let exclusive) = o["exclusiveMaximum"] {
            if exclusive { (exclusiveMaximum, maximum) = (maximum, nil) }
        } else {
            exclusiveMaximum = try number("exclusiveMaximum")
        }
        let multipleOf = try number("multipleOf")
        if let multipleOf, NumberComparison.compare(multipleOf, .int(0)) != 1 {
            throw Self.error(path + [.key("multipleOf")], "expected a number greater than 0")
        }
        if minimum == nil && maximum == nil && exclusiveMinimum == nil && exclusiveMaximum == nil && multipleOf == nil {
            return nil
        }
        return NumberRule(minimum: minimum, exclusiveMinimum: exclusiveMinimum, maximum: maximum,
                          exclusiveMaximum: exclusiveMaximum, multipleOf: multipleOf)
    }

    func stringRule(_ o: JSONObject, at path: [SchemaPathSegment]) throws(JSONSchemaError) -> StringRule? {
        let minLength = try Self.count(o, "minLength", at: path)
        let maxLength = try Self.count(o, "maxLength", at: path)
        var pattern: CompiledPattern? = nil
        if let value = o["pattern"] {
            guard case .string(let source) = value else { throw Self.error(path + [.key("pattern")], "expected a string") }
            pattern = try Self.regex(source, at: path + [.key("pattern")])
        }
        if minLength == nil && maxLength == nil && pattern == nil { return nil }
        return StringRule(minLength: minLength, maxLength: maxLength, pattern: pattern)
    }

    mutating func arrayRule(_ o: JSONObject, at path: [SchemaPathSegment]) throws(JSONSchemaError) -> ArrayRule? {
        var prefix: [NodeRef] = []
        var items: NodeRef? = nil
        if let value = o["prefixItems"] {
            guard case .array(let schemas) = value else {
                throw Self.error(path + [.key("prefixItems")], "expected an array of schemas")
            }
            for (i, schema) in schemas.enumerated() { prefix.append(try compile(schema, at: path + [.key("prefixItems"), .index(i)])) }
        }
        switch o["items"] {
        case nil:
            break
        case .array(let schemas)?:
            // The pre-2020 tuple form: `items` as an array, the rest governed by `additionalItems`.
            guard o["prefixItems"] == nil else {
                throw Self.error(path + [.key("items")], "expected a schema (an array here is the old form of prefixItems)")
            }
            for (i, schema) in schemas.enumerated() { prefix.append(try compile(schema, at: path + [.key("items"), .index(i)])) }
            if let rest = o["additionalItems"] { items = try compile(rest, at: path + [.key("additionalItems")]) }
        case let schema?:
            items = try compile(schema, at: path + [.key("items")])
        }
        let minItems = try Self.count(o, "minItems", at: path)
        let maxItems = try Self.count(o, "maxItems", at: path)
        var unique = false
        if let value = o["uniqueItems"] {
            guard case .bool(let b) = value else { throw Self.error(path + [.key("uniqueItems")], "expected a boolean") }
            unique = b
        }
        let contains = try o["contains"].map { v throws(JSONSchemaError) in try compile(v, at: path + [.key("contains")]) }
        let minContains = try Self.count(o, "minContains", at: path)
        let maxContains = try Self.count(o, "maxContains", at: path)
        if prefix.isEmpty && items == nil && minItems == nil && maxItems == nil && !unique && contains == nil { return nil }
        return ArrayRule(prefixItems: prefix, items: items, minItems: minItems, maxItems: maxItems, uniqueItems: unique,
                         contains: contains, minContains: contains == nil ? 0 : (minContains ?? 1),
                         maxContains: contains == nil ? nil : maxContains)
    }

    mutating func objectRule(
        _ o: JSONObject, at path: [SchemaPathSegment], edges: inout [Edge], holder: String
    ) throws(JSONSchemaError) -> ObjectRule? {
        var properties: [(String, NodeRef)] = []
        if let value = o["properties"] {
            guard case .object(let members) = value else {
                throw Self.error(path + [.key("properties")], "expected an object of schemas")
            }
            for (name, schema) in members {
                properties.append((name, try compile(schema, at: path + [.key("properties"), .key(name)])))
            }
        }
        let required = try Self.strings(o, "required", at: path) ?? []
        var patterns: [(CompiledPattern, NodeRef)] = []
        if let value = o["patternProperties"] {
            guard case .object(let members) = value else {
                throw Self.error(path + [.key("patternProperties")], "expected an object of schemas")
            }
            for (source, schema) in members {
                let pattern = try Self.regex(source, at: path + [.key("patternProperties")])
                patterns.append((pattern, try compile(schema, at: path + [.key("patternProperties"), .key(source)])))
            }
        }
        var additional = ObjectRule.Additional.allowed
        switch o["additionalProperties"] {
        case nil, .bool(true)?: break
        case .bool(false)?: additional = .forbidden
        case let schema?: additional = .schema(try compile(schema, at: path + [.key("additionalProperties")]))
        }
        let minProperties = try Self.count(o, "minProperties", at: path)
        let maxProperties = try Self.count(o, "maxProperties", at: path)
        let nameSchema = try o["propertyNames"].map { v throws(JSONSchemaError) in try compile(v, at: path + [.key("propertyNames")]) }

        var dependentRequired: [(String, [String])] = []
        var dependentSchemas: [(String, NodeRef)] = []
        if let value = o["dependentRequired"] {
            guard case .object(let members) = value else {
                throw Self.error(path + [.key("dependentRequired")], "expected an object of string arrays")
            }
            for (name, list) in members {
                guard let names = Self.stringList(list) else {
                    throw Self.error(path + [.key("dependentRequired"), .key(name)], "expected an array of strings")
                }
                dependentRequired.append((name, names))
            }
        }
        for keyword in ["dependentSchemas", "dependencies"] {
            guard let value = o[keyword] else { continue }
            guard case .object(let members) = value else {
                throw Self.error(path + [.key(keyword)], "expected an object of schemas")
            }
            for (name, schema) in members {
                // draft-07 `dependencies` mixes both forms.
                if keyword == "dependencies", case .array = schema {
                    guard let names = Self.stringList(schema) else {
                        throw Self.error(path + [.key(keyword), .key(name)], "expected an array of strings or a schema")
                    }
                    dependentRequired.append((name, names))
                    continue
                }
                let node = try compile(schema, at: path + [.key(keyword), .key(name)])
                dependentSchemas.append((name, node))
                edges.append(Edge(target: node, ref: nil, holder: holder))
            }
        }
        if properties.isEmpty && required.isEmpty && patterns.isEmpty && minProperties == nil && maxProperties == nil
            && nameSchema == nil && dependentRequired.isEmpty && dependentSchemas.isEmpty
        {
            if case .allowed = additional { return nil }
        }
        return ObjectRule(properties: properties, required: required, patterns: patterns, additional: additional,
                          minProperties: minProperties, maxProperties: maxProperties, nameSchema: nameSchema,
                          dependentRequired: dependentRequired, dependentSchemas: dependentSchemas)
    }

    mutating func schemaList(_ o: JSONObject, _ key: String, at path: [SchemaPathSegment]) throws(JSONSchemaError) -> [NodeRef]? {
        guard let value = o[key] else { return nil }
        guard case .array(let schemas) = value, !schemas.isEmpty else {
            throw Self.error(path + [.key(key)], "expected a non-empty array of schemas")
        }
        var nodes: [NodeRef] = []
        for (i, schema) in schemas.enumerated() { nodes.append(try compile(schema, at: path + [.key(key), .index(i)])) }
        return nodes
    }

    static func count(_ o: JSONObject, _ key: String, at path: [SchemaPathSegment]) throws(JSONSchemaError) -> Int? {
        guard let value = o[key] else { return nil }
        guard let n = value.int64Value, n >= 0 else {
            throw error(path + [.key(key)], "expected a non-negative integer")
        }
        return Int(n)
    }

    static func stringList(_ value: JSONValue) -> [String]? {
        guard case .array(let items) = value else { return nil }
        var strings: [String] = []
        for item in items {
            guard case .string(let s) = item else { return nil }
            strings.append(s)
        }
        return strings
    }

    static func strings(_ o: JSONObject, _ key: String, at path: [SchemaPathSegment]) throws(JSONSchemaError) -> [String]? {
        guard let value = o[key] else { return nil }
        guard let list = stringList(value) else { throw error(path + [.key(key)], "expected an array of strings") }
        return list
    }

    static func regex(_ source: String, at path: [SchemaPathSegment]) throws(JSONSchemaError) -> CompiledPattern {
        do {
            return try CompiledPattern(source)
        } catch {
            throw Self.error(path, "invalid regular expression \"\(source)\": \(error)")
        }
    }

    // MARK: References

    /// The node a local `$ref` designates, compiling it if the tree walk has not reached it yet.
    mutating func resolve(_ ref: String, from path: [SchemaPathSegment]) throws(JSONSchemaError) -> NodeRef {
        guard ref.hasPrefix("#") else {
            throw Self.error(path, "$ref \"\(ref)\": only local references (starting with \"#\") are supported")
        }
        guard let fragment = Self.percentDecoded(ref.dropFirst()) else {
            throw Self.error(path, "$ref \"\(ref)\": invalid percent-encoding")
        }
        if fragment.isEmpty { return try compile(root, at: []) }
        guard fragment.hasPrefix("/") else {
            throw Self.error(path, "$ref \"\(ref)\": only JSON-pointer fragments (\"#/...\") are supported")
        }
        let tokens = fragment.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
        var current = root
        var target: [SchemaPathSegment] = []
        for token in tokens {
            switch current {
            case .object(let members):
                if let next = members[token] {
                    current = next
                    target.append(.key(token))
                    continue
                }
            case .array(let items):
                if let i = Int(token), i >= 0, i < items.count, String(i) == token {
                    current = items[i]
                    target.append(.index(i))
                    continue
                }
            default:
                break
            }
            let isDefinition = tokens.count == 2 && (tokens[0] == "$defs" || tokens[0] == "definitions")
            throw Self.error(path, "$ref \"\(ref)\": \(isDefinition ? "no such definition" : "no such location in the schema")")
        }
        return try compile(current, at: target)
    }

    /// Rejects cycles of in-place edges (a `$ref` that leads back to itself without descending
    /// into a property or item), which would recurse forever on any instance.
    func checkForRefLoops() throws(JSONSchemaError) {
        var state: [ObjectIdentifier: Bool] = [:]  // false: on the current path; true: finished
        var path: [NodeRef] = []
        var taken: [Edge] = []
        for node in nodes where state[ObjectIdentifier(node.object)] == nil {
            try visit(node, &state, &path, &taken)
        }
    }

    private func visit(
        _ node: NodeRef, _ state: inout [ObjectIdentifier: Bool], _ path: inout [NodeRef], _ taken: inout [Edge]
    ) throws(JSONSchemaError) {
        state[ObjectIdentifier(node.object)] = false
        path.append(node)
        for edge in inPlaceEdges[ObjectIdentifier(node.object)] ?? [] {
            switch state[ObjectIdentifier(edge.target.object)] {
            case nil:
                taken.append(edge)
                try visit(edge.target, &state, &path, &taken)
                taken.removeLast()
            case false?:
                let start = path.lastIndex { $0.object === edge.target.object }!
                let loop = Array(taken[start...]) + [edge]
                let culprit = loop.first { $0.ref != nil } ?? edge
                throw JSONSchemaError(
                    path: culprit.holder,
                    message: "$ref \"\(culprit.ref ?? "")\": circular reference that never descends into a property or item")
            case true?:
                break
            }
        }
        path.removeLast()
        state[ObjectIdentifier(node.object)] = true
    }

    // MARK: Paths

    static func error(_ path: [SchemaPathSegment], _ message: String) -> JSONSchemaError {
        JSONSchemaError(path: display(path), message: message)
    }

    /// "properties.a.type", "anyOf[1]".
    static func display(_ path: [SchemaPathSegment]) -> String {
        var out = ""
        for segment in path {
            switch segment {
            case .key(let k): out += out.isEmpty ? k : "." + k
            case .index(let i): out += "[\(i)]"
            }
        }
        return out
    }

    /// The canonical JSON pointer ("" for the root).
    static func pointer(_ path: [SchemaPathSegment]) -> String {
        var out = ""
        for segment in path {
            switch segment {
            case .key(let k): out += "/" + k.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
            case .index(let i): out += "/\(i)"
            }
        }
        return out
    }

    static func percentDecoded(_ s: Substring) -> String? {
        guard s.contains("%") else { return String(s) }
        var bytes: [UInt8] = []
        var utf8 = s.utf8.makeIterator()
        while let c = utf8.next() {
            guard c == UInt8(ascii: "%") else {
                bytes.append(c)
                continue
            }
            guard let h = utf8.next(), let l = utf8.next(), let hi = hexDigit(h), let lo = hexDigit(l) else { return nil }
            bytes.append(hi << 4 | lo)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    static func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

private extension StringProtocol {
    /// Literal substring replacement without Foundation.
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        guard contains(target) else { return String(self) }
        var out = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            out += rest[..<range.lowerBound]
            out += replacement
            rest = rest[range.upperBound...]
        }
        return out + rest
    }
}
