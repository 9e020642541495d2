// JSON Schema validation (the draft 2020-12 subset that tool schemas use).
//
// A schema is compiled once into a graph of `SchemaNode`s, each a flat list of checks with
// their operands precomputed (property lookup tables, required flags, compiled patterns),
// so validating walks the instance and the graph without reinterpreting the schema JSON.
// Validation runs in one of two modes sharing the same code: a fast yes/no pass that stops
// at the first failure and builds no messages, and a collecting pass, run only on failure,
// that produces every violation with its instance path and a specific message.

/// A schema that could not be compiled.
public struct JSONSchemaError: Error, Sendable, CustomStringConvertible {
    /// Where in the schema: dotted keys and [n] indexes, such as "properties.a.type"; "" for the root.
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// One way an instance fails its schema.
public struct JSONSchemaViolation: Sendable, Equatable, CustomStringConvertible {
    /// Where in the instance: "" for the root, else like "a" or "items[2].name".
    public var path: String
    /// The schema keyword that failed, such as "type", "required" or "additionalProperties".
    public var keyword: String
    /// A specific, human- and model-readable explanation, naming the field when not at the root.
    public var message: String

    public init(path: String, keyword: String, message: String) {
        self.path = path
        self.keyword = keyword
        self.message = message
    }

    public var description: String { message }
}

/// A compiled JSON Schema. Compile once, validate many times, from any thread.
///
/// Supported: `type`, `enum`, `const`, `properties`, `required`, `additionalProperties`,
/// `patternProperties`, `propertyNames`, `minProperties`/`maxProperties`,
/// `dependentRequired`/`dependentSchemas` (and draft-07 `dependencies`), `items`,
/// `prefixItems` (and the older array form of `items` with `additionalItems`),
/// `minItems`/`maxItems`, `uniqueItems`, `contains`/`minContains`/`maxContains`,
/// `minimum`/`maximum`/`exclusiveMinimum`/`exclusiveMaximum` (also the draft-04 boolean
/// forms), `multipleOf`, `minLength`/`maxLength` (in Unicode scalars), `pattern`,
/// `allOf`/`anyOf`/`oneOf`/`not`, `if`/`then`/`else`, local `$ref` ("#", "#/$defs/name",
/// "#/definitions/name" or any JSON pointer into the schema, recursion included), and
/// boolean schemas. `format` and unknown keywords (annotations such as `title`,
/// `description`, `default`, `examples`, `$schema`, `$id`, `x-` extensions) are ignored
/// and remain readable through `source`. Keywords whose meaning cannot be honoured here
/// (`unevaluatedProperties`, `unevaluatedItems`, `$dynamicRef`, `$recursiveRef`) are
/// compile errors rather than being silently ignored.
///
/// Patterns use Swift `Regex` syntax (close to ECMA-262 for the common subset) with
/// Unicode-scalar semantics and ASCII-only `\d` and `\w`, and are searched for anywhere in
/// the string, as JSON Schema requires.
public struct JSONSchema: Sendable {
    /// The schema as given.
    public let source: JSONValue
    let root: Unowned<SchemaNode>
    /// Every compiled node and rule: the graph refers to them unowned (see `Unowned`).
    let owned: [any AnyObject & Sendable]

    /// At most this many violations are reported by `validate`.
    public static let maxViolations = 16

    public init(_ schema: JSONValue) throws(JSONSchemaError) {
        var compiler = SchemaCompiler(root: schema)
        let root = try compiler.compile(schema, at: [])
        try compiler.checkForRefLoops()
        self.source = schema
        self.root = root
        self.owned = compiler.owned
    }

    /// The value of a keyword at the schema's root, such as "title" or "x-llmos".
    public func annotation(_ keyword: String) -> JSONValue? { source[keyword] }

    /// All violations (at most `maxViolations`), in instance order; empty when valid.
    public func validate(_ instance: JSONValue) -> [JSONSchemaViolation] {
        if isValid(instance) { return [] }
        var sink = CollectingSink(limit: Self.maxViolations)
        withExtendedLifetime(owned) { _ = Evaluator.evaluate(root, instance, &sink) }
        return sink.items.map { $0.violation() }
    }

    /// Whether the instance is valid; stops at the first violation.
    public func isValid(_ instance: JSONValue) -> Bool {
        var sink = FastSink()
        return withExtendedLifetime(owned) { Evaluator.evaluate(root, instance, &sink) }
    }
}

// MARK: - Compiled form

/// A reference that is neither retained nor released when copied.
///
/// The compiled graph is immutable and wholly owned by its `JSONSchema` (through `owned`),
/// so edges inside it need no reference counting: this keeps atomic retain/release pairs
/// out of validation, where they otherwise dominate the cost, and lets recursive `$ref`s
/// form cycles without leaking.
struct Unowned<Object: AnyObject & Sendable>: Sendable {
    unowned(unsafe) let object: Object
    @inline(__always) init(_ object: Object) { self.object = object }
}

/// A compiled (sub)schema: its checks, run in order.
///
/// `@unchecked Sendable`: `checks` is set once while `JSONSchema.init` runs (it cannot be a
/// `let`, as recursive `$ref`s point at nodes still being compiled) and never changes after.
/// It is a raw buffer of trivial values so that reading it costs no reference counting.
final class SchemaNode: @unchecked Sendable {
    private(set) var checks = UnsafeMutableBufferPointer<Check>(start: nil, count: 0)

    func setChecks(_ list: [Check]) {
        precondition(checks.baseAddress == nil, "a schema node is compiled once")
        guard !list.isEmpty else { return }
        checks = .allocate(capacity: list.count)
        _ = checks.initialize(from: list)
    }

    deinit {
        checks.deallocate()  // Check is trivial: nothing to deinitialize
    }
}

/// A check's operands live in final classes reached through `Unowned`, which makes `Check`
/// a trivial type that can be copied freely.
enum Check {
    case never  // the `false` schema
    case type(TypeSet)
    case constant(Unowned<ConstantRule>)
    case enumeration(Unowned<EnumRule>)
    case number(Unowned<NumberRule>)
    case string(Unowned<StringRule>)
    case array(Unowned<ArrayRule>)
    case object(Unowned<ObjectRule>)
    case allOf(Unowned<NodeList>)
    case anyOf(Unowned<NodeList>)
    case oneOf(Unowned<NodeList>)
    case not(Unowned<SchemaNode>)
    case conditional(Unowned<ConditionalRule>)
    case ref(Unowned<SchemaNode>)
}

typealias NodeRef = Unowned<SchemaNode>

final class NodeList: Sendable {
    let nodes: [NodeRef]
    init(_ nodes: [NodeRef]) { self.nodes = nodes }
}

final class ConstantRule: Sendable {
    let value: JSONValue
    init(_ value: JSONValue) { self.value = value }
}

final class ConditionalRule: Sendable {
    let condition: NodeRef
    let then: NodeRef?
    let otherwise: NodeRef?
    init(condition: NodeRef, then: NodeRef?, otherwise: NodeRef?) {
        self.condition = condition
        self.then = then
        self.otherwise = otherwise
    }
}

struct TypeSet: OptionSet, Sendable {
    let rawValue: UInt8
    static let null = TypeSet(rawValue: 1)
    static let boolean = TypeSet(rawValue: 2)
    static let integer = TypeSet(rawValue: 4)
    static let number = TypeSet(rawValue: 8)
    static let string = TypeSet(rawValue: 16)
    static let array = TypeSet(rawValue: 32)
    static let object = TypeSet(rawValue: 64)

    static let named: [(String, TypeSet)] = [
        ("string", .string), ("number", .number), ("integer", .integer), ("boolean", .boolean),
        ("object", .object), ("array", .array), ("null", .null),
    ]

    /// The types a value satisfies: an integral number is also an "integer", and every
    /// integer a "number".
    @inline(__always)
    static func of(_ value: JSONValue) -> TypeSet {
        switch value {
        case .null: return .null
        case .bool: return .boolean
        case .int: return [.integer, .number]
        case .double(let d): return NumberComparison.isIntegral(d) ? [.integer, .number] : .number
        case .string: return .string
        case .array: return .array
        case .object: return .object
        }
    }

    var names: [String] { Self.named.filter { contains($0.1) }.map(\.0) }
}

final class EnumRule: Sendable {
    let values: [JSONValue]
    /// When every value is a string and there are many, a set answers membership.
    let strings: Set<JSONKey>?

    init(_ values: [JSONValue]) {
        self.values = values
        if values.count > 8, values.allSatisfy({ $0.stringValue != nil }) {
            strings = Set(values.compactMap { $0.stringValue.map(JSONKey.init) })
        } else {
            strings = nil
        }
    }

    func contains(_ value: JSONValue) -> Bool {
        if let strings {
            guard case .string(let s) = value else { return false }
            return strings.contains(JSONKey(s))
        }
        if case .string(let s) = value {
            for candidate in values { if case .string(let c) = candidate, c.utf8Equals(s) { return true } }
            return false
        }
        return values.contains { $0.isEquivalent(to: value) }
    }
}

final class NumberRule: Sendable {
    let minimum: JSONValue?
    let exclusiveMinimum: JSONValue?
    let maximum: JSONValue?
    let exclusiveMaximum: JSONValue?
    let multipleOf: JSONValue?

    init(minimum: JSONValue?, exclusiveMinimum: JSONValue?, maximum: JSONValue?, exclusiveMaximum: JSONValue?, multipleOf: JSONValue?) {
        self.minimum = minimum
        self.exclusiveMinimum = exclusiveMinimum
        self.maximum = maximum
        self.exclusiveMaximum = exclusiveMaximum
        self.multipleOf = multipleOf
    }

    static func isMultiple(_ value: JSONValue, of divisor: JSONValue) -> Bool {
        if case .int(let x) = value, case .int(let m) = divisor { return x % m == 0 }
        guard let x = value.doubleValue, let m = divisor.doubleValue else { return false }
        let q = x / m
        guard q.isFinite else { return false }
        // Decimal divisors are inexact in binary; accept quotients within a few ulps of an integer.
        return NumberComparison.distanceToInteger(q) <= 4 * q.magnitude.ulp
    }
}

final class StringRule: Sendable {
    let minLength: Int?
    let maxLength: Int?
    let pattern: CompiledPattern?

    init(minLength: Int?, maxLength: Int?, pattern: CompiledPattern?) {
        self.minLength = minLength
        self.maxLength = maxLength
        self.pattern = pattern
    }

    /// Length in Unicode scalars, computed only when the UTF-8 length cannot decide.
    @inline(__always)
    static func length(_ s: String, atLeast n: Int) -> Bool {
        let bytes = s.utf8.count
        if bytes < n { return false }
        if bytes / 4 >= n { return true }
        return s.unicodeScalars.count >= n
    }

    @inline(__always)
    static func length(_ s: String, atMost n: Int) -> Bool {
        s.utf8.count <= n || s.unicodeScalars.count <= n
    }
}

final class ArrayRule: Sendable {
    let prefixItems: [NodeRef]
    /// Applies to every item after the prefix.
    let items: NodeRef?
    let minItems: Int?
    let maxItems: Int?
    let uniqueItems: Bool
    let contains: NodeRef?
    let minContains: Int
    let maxContains: Int?

    init(prefixItems: [NodeRef], items: NodeRef?, minItems: Int?, maxItems: Int?, uniqueItems: Bool,
         contains: NodeRef?, minContains: Int, maxContains: Int?) {
        self.prefixItems = prefixItems
        self.items = items
        self.minItems = minItems
        self.maxItems = maxItems
        self.uniqueItems = uniqueItems
        self.contains = contains
        self.minContains = minContains
        self.maxContains = maxContains
    }
}

/// `@unchecked Sendable` only because `properties` is a raw buffer; it is immutable.
final class ObjectRule: @unchecked Sendable {
    enum Additional: Sendable {
        case allowed
        case forbidden
        case schema(NodeRef)
    }

    struct Property {
        let name: String
        /// The UTF-8 length and first 8 bytes: two integer compares decide names of up to
        /// 8 bytes (most field names) without comparing strings.
        let length: Int
        let prefix: UInt64
        let schema: NodeRef
        let required: Bool
    }

    /// Declared properties in schema order; a raw buffer, so the per-member lookup does no
    /// reference counting.
    let properties: UnsafeMutableBufferPointer<Property>
    /// Name -> position in `properties`, only when there are too many names to scan.
    let propertyIndex: [JSONKey: Int]?
    let requiredInProperties: Int
    /// `required`, in the schema's order, without repeats.
    let required: [String]
    let requiredElsewhere: [String]
    let patterns: [(CompiledPattern, NodeRef)]
    let additional: Additional
    let minProperties: Int?
    let maxProperties: Int?
    let nameSchema: NodeRef?
    let dependentRequired: [(String, [String])]
    let dependentSchemas: [(String, NodeRef)]
    /// Whether any keyword past properties, required and additionalProperties is present:
    /// the common case skips them all with one test.
    let hasPatterns: Bool
    let hasRequiredElsewhere: Bool
    let hasMore: Bool

    init(properties: [(String, NodeRef)], required: [String], patterns: [(CompiledPattern, NodeRef)],
         additional: Additional, minProperties: Int?, maxProperties: Int?, nameSchema: NodeRef?,
         dependentRequired: [(String, [String])], dependentSchemas: [(String, NodeRef)]) {
        var unique = Set<JSONKey>()
        self.required = required.filter { unique.insert(JSONKey($0)).inserted }
        let entries = properties.map {
            Property(name: $0.0, length: $0.0.utf8.count, prefix: Self.packedPrefix($0.0), schema: $0.1,
                     required: unique.contains(JSONKey($0.0)))
        }
        self.properties = .allocate(capacity: entries.count)
        _ = self.properties.initialize(from: entries)
        requiredInProperties = entries.count(where: \.required)
        propertyIndex = entries.count > 8
            ? Dictionary(entries.enumerated().map { (JSONKey($1.name), $0) }, uniquingKeysWith: { first, _ in first })
            : nil
        let declared = Set(entries.map { JSONKey($0.name) })
        requiredElsewhere = self.required.filter { !declared.contains(JSONKey($0)) }
        self.patterns = patterns
        self.additional = additional
        self.minProperties = minProperties
        self.maxProperties = maxProperties
        self.nameSchema = nameSchema
        self.dependentRequired = dependentRequired
        self.dependentSchemas = dependentSchemas
        hasPatterns = !patterns.isEmpty
        hasRequiredElsewhere = !requiredElsewhere.isEmpty
        hasMore = minProperties != nil || maxProperties != nil || nameSchema != nil
            || !dependentRequired.isEmpty || !dependentSchemas.isEmpty
    }

    deinit {
        _ = properties.deinitialize()
        properties.deallocate()
    }

    @inline(__always)
    func lookup(_ key: String) -> Int? {
        if let propertyIndex { return propertyIndex[JSONKey(key)] }
        let length = key.utf8.count
        let prefix = Self.packedPrefix(key)
        for i in 0..<properties.count where properties[i].length == length && properties[i].prefix == prefix {
            if length <= 8 || properties[i].name.utf8Equals(key) { return i }
        }
        return nil
    }

    @inline(__always)
    static func packedPrefix(_ s: String) -> UInt64 {
        let fast = s.utf8.withContiguousStorageIfAvailable { bytes in
            var packed: UInt64 = 0
            for i in 0..<min(8, bytes.count) { packed |= UInt64(bytes[i]) << UInt64(8 * i) }
            return packed
        }
        if let fast { return fast }
        var packed: UInt64 = 0
        for (i, byte) in s.utf8.prefix(8).enumerated() { packed |= UInt64(byte) << UInt64(8 * i) }
        return packed
    }

    /// "(allowed: a, b)" for unexpected-field messages.
    var allowedDescription: String {
        var parts: [String] = []
        let names = properties.map(\.name)
        if !names.isEmpty {
            let shown = names.prefix(20).joined(separator: ", ")
            parts.append(names.count > 20 ? "\(shown), and \(names.count - 20) more" : shown)
        }
        if !patterns.isEmpty {
            parts.append("names matching " + patterns.map(\.0.source).joined(separator: " or "))
        }
        return parts.isEmpty ? "(no fields are allowed)" : "(allowed: \(parts.joined(separator: ", or ")))"
    }
}

/// A compiled `pattern`.
///
/// `@unchecked Sendable` because `Regex` is not declared Sendable, though a `Regex` built
/// from a string is safe to share once compiled: it lowers its program lazily (through an
/// atomic store) and keeps all matching state per call. The initializer forces that lowering
/// so nothing in the regex changes after the schema is compiled.
final class CompiledPattern: @unchecked Sendable {
    let source: String
    private let regex: Regex<AnyRegexOutput>

    /// Throws the regex parser's explanation.
    init(_ source: String) throws {
        self.source = source
        regex = try Regex(source)
            .matchingSemantics(.unicodeScalar)
            .asciiOnlyDigits()
            .asciiOnlyWordCharacters()
        _ = matches("")  // force lowering now, while still confined to one thread
    }

    func matches(_ s: String) -> Bool {
        (try? regex.firstMatch(in: s)) != nil
    }
}

// MARK: - Violation sinks

enum PathComponent {
    case key(String)
    case index(Int)
}

/// Receives violations; the fast sink ignores them (and the evaluator stops at the first).
protocol ViolationSink {
    static var collects: Bool { get }
    /// Whether a failed anyOf/oneOf explains each alternative's failure. Explanations are
    /// built with sinks that do not, so their cost stays linear on recursive schemas.
    var explains: Bool { get }
    var count: Int { get }
    var isFull: Bool { get }
    mutating func add(_ keyword: String, _ detail: @autoclosure () -> String)
    /// Prepends a path component to the violations recorded since `mark`.
    mutating func prefix(from mark: Int, _ component: @autoclosure () -> PathComponent)
}

struct FastSink: ViolationSink {
    static var collects: Bool { false }
    var explains: Bool { false }
    var count: Int { 0 }
    var isFull: Bool { true }
    @inline(__always) mutating func add(_ keyword: String, _ detail: @autoclosure () -> String) {}
    @inline(__always) mutating func prefix(from mark: Int, _ component: @autoclosure () -> PathComponent) {}
}

struct PendingViolation {
    /// Innermost component first, as they are added while unwinding.
    var reversedPath: [PathComponent]
    var keyword: String
    var detail: String

    var path: String {
        var out = ""
        for component in reversedPath.reversed() {
            switch component {
            case .key(let k): out += out.isEmpty ? k : "." + k
            case .index(let i): out += "[\(i)]"
            }
        }
        return out
    }

    func violation() -> JSONSchemaViolation {
        let path = self.path
        return JSONSchemaViolation(path: path, keyword: keyword, message: path.isEmpty ? detail : "field \"\(path)\": \(detail)")
    }
}

struct CollectingSink: ViolationSink {
    static var collects: Bool { true }
    var items: [PendingViolation] = []
    let limit: Int
    let explains: Bool

    init(limit: Int, explains: Bool = true) {
        self.limit = limit
        self.explains = explains
    }

    var count: Int { items.count }
    var isFull: Bool { items.count >= limit }

    mutating func add(_ keyword: String, _ detail: @autoclosure () -> String) {
        if items.count < limit { items.append(PendingViolation(reversedPath: [], keyword: keyword, detail: detail())) }
    }

    mutating func prefix(from mark: Int, _ component: @autoclosure () -> PathComponent) {
        guard mark < items.count else { return }
        let c = component()
        for i in mark..<items.count { items[i].reversedPath.append(c) }
    }
}

// MARK: - Evaluation

enum Evaluator {
    /// Whether `value` satisfies `node`; in collecting mode keeps going to record every violation.
    static func evaluate<S: ViolationSink>(_ node: NodeRef, _ value: JSONValue, _ sink: inout S) -> Bool {
        var valid = true
        for check in node.object.checks {
            if !evaluate(check, value, &sink) {
                if !S.collects || sink.isFull { return false }
                valid = false
            }
        }
        return valid
    }

    @inline(__always)
    static func fastCheck(_ node: NodeRef, _ value: JSONValue) -> Bool {
        var fast = FastSink()
        return evaluate(node, value, &fast)
    }

    static func evaluate<S: ViolationSink>(_ check: Check, _ value: JSONValue, _ sink: inout S) -> Bool {
        switch check {
        case .type(let types):
            if TypeSet.of(value).isDisjoint(with: types) {
                sink.add("type", "expected \(orList(types.names)), got \(describe(value))")
                return false
            }
            return true
        case .object(let rule):
            guard case .object(let object) = value else { return true }
            return evaluateObject(rule.object, object, &sink)
        case .number(let rule):
            switch value {
            case .int, .double: return evaluateNumber(rule.object, value, &sink)
            default: return true
            }
        case .string(let rule):
            guard case .string(let s) = value else { return true }
            return evaluateString(rule.object, s, &sink)
        case .array(let rule):
            guard case .array(let items) = value else { return true }
            return evaluateArray(rule.object, items, &sink)
        case .enumeration(let rule):
            if rule.object.contains(value) { return true }
            sink.add("enum", "must be one of \(listValues(rule.object.values)), got \(brief(value))")
            return false
        case .constant(let rule):
            if rule.object.value.isEquivalent(to: value) { return true }
            sink.add("const", "must be \(brief(rule.object.value)), got \(brief(value))")
            return false
        case .never:
            sink.add("false", "not allowed by the schema")
            return false
        case .ref(let target):
            return evaluate(target, value, &sink)
        case .allOf(let list):
            var valid = true
            for schema in list.object.nodes where !evaluate(schema, value, &sink) {
                if !S.collects || sink.isFull { return false }
                valid = false
            }
            return valid
        case .anyOf(let list):
            let schemas = list.object.nodes
            for schema in schemas where fastCheck(schema, value) { return true }
            if S.collects {
                let why = sink.explains ? ": \(explainFailures(schemas, value))" : ""
                sink.add("anyOf", "must match at least one of the \(schemas.count) alternatives\(why)")
            }
            return false
        case .oneOf(let list):
            let schemas = list.object.nodes
            var matches = 0
            for schema in schemas where fastCheck(schema, value) {
                matches += 1
                if matches > 1 && !S.collects { return false }
            }
            if matches == 1 { return true }
            if S.collects {
                let detail: String
                if matches == 0 {
                    detail = sink.explains ? "matched 0: \(explainFailures(schemas, value))" : "matched 0"
                } else {
                    let which = schemas.indices.filter { fastCheck(schemas[$0], value) }.map { String($0 + 1) }
                    detail = "matched \(matches) (alternatives \(andList(which)))"
                }
                sink.add("oneOf", "must match exactly one of the \(schemas.count) alternatives, \(detail)")
            }
            return false
        case .not(let schema):
            if !fastCheck(schema, value) { return true }
            sink.add("not", "must not match the schema in \"not\"")
            return false
        case .conditional(let rule):
            let rule = rule.object
            if fastCheck(rule.condition, value) {
                return rule.then.map { evaluate($0, value, &sink) } ?? true
            }
            return rule.otherwise.map { evaluate($0, value, &sink) } ?? true
        }
    }

    /// Evaluates a subschema on a member or item, putting `component` in front of its violations' paths.
    @inline(__always)
    static func evaluateChild<S: ViolationSink>(
        _ node: NodeRef, _ value: JSONValue, _ component: @autoclosure () -> PathComponent, _ sink: inout S
    ) -> Bool {
        let mark = sink.count
        if evaluate(node, value, &sink) { return true }
        sink.prefix(from: mark, component())
        return false
    }

    static func evaluateObject<S: ViolationSink>(_ rule: ObjectRule, _ object: JSONObject, _ sink: inout S) -> Bool {
        // Borrow the members as a buffer: iterating the array itself costs reference counting.
        let membersValid = object.pairs.withUnsafeBufferPointer { members in
            evaluateMembers(rule, object, members, &sink)
        }
        if !membersValid && (!S.collects || sink.isFull) { return false }
        var valid = membersValid
        if rule.hasMore && !evaluateObjectCounts(rule, object, &sink) {
            if !S.collects || sink.isFull { return false }
            valid = false
        }
        return valid
    }

    /// properties, patternProperties, additionalProperties and required.
    @inline(__always)
    static func evaluateMembers<S: ViolationSink>(
        _ rule: ObjectRule, _ object: JSONObject, _ members: UnsafeBufferPointer<JSONObject.Member>, _ sink: inout S
    ) -> Bool {
        var valid = true
        var requiredSeen = 0
        for m in 0..<members.count {
            let key = members[m].key
            var declared = false
            if let i = rule.lookup(key) {
                declared = true
                let property = rule.properties[i]
                if property.required { requiredSeen += 1 }
                if !evaluateChild(property.schema, members[m].value, .key(key), &sink) {
                    if !S.collects || sink.isFull { return false }
                    valid = false
                }
            }
            if rule.hasPatterns {
                for (pattern, schema) in rule.patterns where pattern.matches(key) {
                    declared = true
                    if !evaluateChild(schema, members[m].value, .key(key), &sink) {
                        if !S.collects || sink.isFull { return false }
                        valid = false
                    }
                }
            }
            if !declared {
                switch rule.additional {
                case .allowed:
                    break
                case .forbidden:
                    sink.add("additionalProperties", "unexpected field \"\(key)\" \(rule.allowedDescription)")
                    if !S.collects || sink.isFull { return false }
                    valid = false
                case .schema(let schema):
                    if !evaluateChild(schema, members[m].value, .key(key), &sink) {
                        if !S.collects || sink.isFull { return false }
                        valid = false
                    }
                }
            }
        }
        if requiredSeen < rule.requiredInProperties || rule.hasRequiredElsewhere {
            if !S.collects && requiredSeen < rule.requiredInProperties { return false }
            // Collecting: report every missing name in schema order; else only the undeclared ones remain to check.
            for name in (S.collects ? rule.required : rule.requiredElsewhere) where object.position(of: name) == nil {
                sink.add("required", "missing required field \"\(name)\"")
                if !S.collects || sink.isFull { return false }
                valid = false
            }
        }
        return valid
    }

    /// minProperties, maxProperties, propertyNames, dependentRequired and dependentSchemas.
    static func evaluateObjectCounts<S: ViolationSink>(_ rule: ObjectRule, _ object: JSONObject, _ sink: inout S) -> Bool {
        var valid = true
        if let min = rule.minProperties, object.count < min {
            sink.add("minProperties", "must have at least \(counted(min, "field")), got \(object.count)")
            if !S.collects || sink.isFull { return false }
            valid = false
        }
        if let max = rule.maxProperties, object.count > max {
            sink.add("maxProperties", "must have at most \(counted(max, "field")), got \(object.count)")
            if !S.collects || sink.isFull { return false }
            valid = false
        }
        if let nameSchema = rule.nameSchema {
            for (key, _) in object where !fastCheck(nameSchema, .string(key)) {
                if S.collects {
                    var inner = CollectingSink(limit: 1, explains: false)
                    _ = evaluate(nameSchema, .string(key), &inner)
                    let why = inner.items.first.map { $0.violation().message } ?? "rejected"
                    sink.add("propertyNames", "invalid field name \"\(key)\": \(why)")
                }
                if !S.collects || sink.isFull { return false }
                valid = false
            }
        }
        for (name, needed) in rule.dependentRequired where object[name] != nil {
            for other in needed where object[other] == nil {
                sink.add("dependentRequired", "field \"\(name)\" requires field \"\(other)\"")
                if !S.collects || sink.isFull { return false }
                valid = false
            }
        }
        for (name, schema) in rule.dependentSchemas where object[name] != nil {
            if !evaluate(schema, .object(object), &sink) {
                if !S.collects || sink.isFull { return false }
                valid = false
            }
        }
        return valid
    }

    static func evaluateNumber<S: ViolationSink>(_ rule: NumberRule, _ value: JSONValue, _ sink: inout S) -> Bool {
        var valid = true
        func fail(_ keyword: String, _ detail: @autoclosure () -> String) -> Bool {
            sink.add(keyword, detail())
            valid = false
            return !S.collects || sink.isFull
        }
        if let bound = rule.minimum, NumberComparison.compare(value, bound) < 0,
            fail("minimum", "must be >= \(bound), got \(value)") { return false }
        if let bound = rule.exclusiveMinimum, NumberComparison.compare(value, bound) <= 0,
            fail("exclusiveMinimum", "must be > \(bound), got \(value)") { return false }
        if let bound = rule.maximum, NumberComparison.compare(value, bound) > 0,
            fail("maximum", "must be <= \(bound), got \(value)") { return false }
        if let bound = rule.exclusiveMaximum, NumberComparison.compare(value, bound) >= 0,
            fail("exclusiveMaximum", "must be < \(bound), got \(value)") { return false }
        if let divisor = rule.multipleOf, !NumberRule.isMultiple(value, of: divisor),
            fail("multipleOf", "must be a multiple of \(divisor), got \(value)") { return false }
        return valid
    }

    static func evaluateString<S: ViolationSink>(_ rule: StringRule, _ s: String, _ sink: inout S) -> Bool {
        var valid = true
        if let min = rule.minLength, !StringRule.length(s, atLeast: min) {
            sink.add("minLength", "must be at least \(counted(min, "character")) long")
            if !S.collects || sink.isFull { return false }
            valid = false
        }
        if let max = rule.maxLength, !StringRule.length(s, atMost: max) {
            sink.add("maxLength", "must be at most \(counted(max, "character")) long, got \(s.unicodeScalars.count)")
            if !S.collects || sink.isFull { return false }
            valid = false
        }
        if let pattern = rule.pattern, !pattern.matches(s) {
            sink.add("pattern", "does not match pattern \(pattern.source)")
            valid = false
        }
        return valid
    }

    static func evaluateArray<S: ViolationSink>(_ rule: ArrayRule, _ items: [JSONValue], _ sink: inout S) -> Bool {
        var valid = true
        if let min = rule.minItems, items.count < min {
            sink.add("minItems", "must have at least \(counted(min, "item")), got \(items.count)")
            if !S.collects || sink.isFull { return false }
            valid = false
        }
        if let max = rule.maxItems, items.count > max {
            sink.add("maxItems", "must have at most \(counted(max, "item")), got \(items.count)")
            if !S.collects || sink.isFull { return false }
            valid = false
        }
        for (i, item) in items.enumerated() {
            let schema = i < rule.prefixItems.count ? rule.prefixItems[i] : rule.items
            guard let schema else { break }
            if !evaluateChild(schema, item, .index(i), &sink) {
                if !S.collects || sink.isFull { return false }
                valid = false
            }
        }
        if rule.uniqueItems, let (first, second) = firstDuplicate(items) {
            sink.add("uniqueItems", "items must be unique, but items \(first) and \(second) are equal")
            if !S.collects || sink.isFull { return false }
            valid = false
        }
        if let contains = rule.contains {
            var matches = 0
            for item in items where fastCheck(contains, item) { matches += 1 }
            if matches < rule.minContains {
                sink.add("contains", "must contain at least \(counted(rule.minContains, "item")) matching the \"contains\" schema, found \(matches)")
                if !S.collects || sink.isFull { return false }
                valid = false
            }
            if let max = rule.maxContains, matches > max {
                sink.add("maxContains", "must contain at most \(counted(max, "item")) matching the \"contains\" schema, found \(matches)")
                valid = false
            }
        }
        return valid
    }

    /// The first pair of equal items (JSON Schema equality), by position.
    static func firstDuplicate(_ items: [JSONValue]) -> (Int, Int)? {
        if items.count <= 32 {
            for j in items.indices {
                for i in 0..<j where items[i].isEquivalent(to: items[j]) { return (i, j) }
            }
            return nil
        }
        var buckets: [Int: [Int]] = [:]
        for (j, item) in items.enumerated() {
            var hasher = Hasher()
            semanticHash(item, into: &hasher)
            let h = hasher.finalize()
            if let i = buckets[h]?.first(where: { items[$0].isEquivalent(to: item) }) { return (i, j) }
            buckets[h, default: []].append(j)
        }
        return nil
    }

    /// A hash consistent with `isEquivalent`: numbers hash by value, objects ignore order.
    static func semanticHash(_ value: JSONValue, into hasher: inout Hasher) {
        switch value {
        case .null: hasher.combine(0)
        case .bool(let b): hasher.combine(b)
        case .int(let i): hasher.combine(Double(i))
        case .double(let d): hasher.combine(d)
        case .string(let s): s.hashUTF8(into: &hasher)
        case .array(let a):
            hasher.combine(a.count)
            for item in a { semanticHash(item, into: &hasher) }
        case .object(let o):
            var combined = 0
            for (key, member) in o {
                var h = Hasher()
                key.hashUTF8(into: &h)
                semanticHash(member, into: &h)
                combined ^= h.finalize()
            }
            hasher.combine(combined)
        }
    }

    // MARK: Messages

    /// "(1) first reason; (2) second reason" for anyOf and oneOf failures.
    static func explainFailures(_ schemas: [NodeRef], _ value: JSONValue) -> String {
        schemas.enumerated().map { i, schema in
            var inner = CollectingSink(limit: 4, explains: false)
            _ = evaluate(schema, value, &inner)
            var reason = inner.items.first.map { $0.violation().message } ?? "failed"
            if inner.items.count > 1 { reason += " (and \(inner.items.count - 1) more)" }
            return "(\(i + 1)) \(reason)"
        }.joined(separator: "; ")
    }

    /// The value's type with the value itself when short: `string "x"`, `integer 5`, `object`.
    static func describe(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .array, .object: return value.typeName
        default: return "\(value.typeName) \(brief(value))"
        }
    }

    /// Compact JSON, shortened to fit in a message.
    static func brief(_ value: JSONValue) -> String {
        let text = value.serialized()
        guard text.unicodeScalars.count > 60 else { return text }
        return String(String.UnicodeScalarView(text.unicodeScalars.prefix(57))) + "..."
    }

    static func listValues(_ values: [JSONValue]) -> String {
        let shown = values.prefix(10).map(brief).joined(separator: ", ")
        return values.count > 10 ? "\(shown), and \(values.count - 10) more" : shown
    }

    static func orList(_ names: [String]) -> String {
        switch names.count {
        case 0: return "nothing"
        case 1: return names[0]
        case 2: return "\(names[0]) or \(names[1])"
        default: return "one of \(names.joined(separator: ", "))"
        }
    }

    static func andList(_ items: [String]) -> String {
        items.count <= 2 ? items.joined(separator: " and ") : items.dropLast().joined(separator: ", ") + " and " + items.last!
    }

    static func counted(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }
}
