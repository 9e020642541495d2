// Metadata filters (storage.schema.json#/$defs/filter) compiled to one SQL condition
// over the jsonb metadata column. Every value and every field name is a bound
// parameter ($n): nothing of the caller's is ever spliced into SQL text.
//
// The semantics are the sqlite driver's (Plugins/storage-sqlite/Filter.swift), and the
// contract suite runs against both: a field's values are its scalar or each element of
// its list; comparisons are typed ("5" never equals 5); null matches null or absent;
// strings order by their UTF-8 bytes (COLLATE "C").
import LLMOSDriverSDK
import LLMOSJSON

/// Parameters of one statement, numbered as they are added.
struct PGParameters {
    private(set) var values: [PGValue] = []

    /// Adds `value`; returns its placeholder ("$3").
    mutating func add(_ value: PGValue) -> String {
        values.append(value)
        return "$\(values.count)"
    }
}

enum PGFilter {
    static let operators: Set<String> = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$exists"]

    /// The condition on `d.metadata` ("true" for no filter), its values added to `parameters`.
    static func compile(_ filter: JSONValue?, into parameters: inout PGParameters, field: String = "filter") throws(DriverError) -> String {
        guard let filter, !filter.isNull else { return "true" }
        guard let object = filter.objectValue else {
            throw .invalidArgument("\(field) must be an object of metadata fields, e.g. {\"source\": \"a.md\", \"year\": {\"$gte\": 2020}}")
        }
        if object.isEmpty { return "true" }
        var parts: [String] = []
        for (key, condition) in object {
            let name = "\(field).\(key)"
            if key.hasPrefix("$") {
                throw .invalidArgument("\(name): keys starting with $ are reserved for operators inside a field's condition ({\"year\": {\"$gte\": 2020}}); a filter's top-level keys are metadata field names")
            }
            guard !key.isEmpty, !key.contains("\""), !key.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
                throw .invalidArgument("\(name): a filter field name must be non-empty, without \" or control characters")
            }
            let keyParameter = parameters.add(.text(key))
            if let conditions = condition.objectValue {
                if conditions.isEmpty {
                    throw .invalidArgument("\(name): an empty condition matches nothing useful; give an operator (\(operators.sorted().joined(separator: ", "))) or a value")
                }
                for (op, operand) in conditions {
                    parts.append(try compileOperator(op, operand, key: keyParameter, field: "\(name).\(op)", &parameters))
                }
            } else {
                parts.append(try equality(condition, key: keyParameter, field: name, &parameters))
            }
        }
        return parts.map { "(\($0))" }.joined(separator: " AND ")
    }

    private static func compileOperator(_ op: String, _ operand: JSONValue, key: String, field: String, _ parameters: inout PGParameters) throws(DriverError) -> String {
        switch op {
        case "$eq":
            return try equality(operand, key: key, field: field, &parameters)
        case "$ne":
            return "NOT (\(try equality(operand, key: key, field: field, &parameters)))"
        case "$in":
            guard let items = operand.arrayValue, !items.isEmpty else {
                throw .invalidArgument("\(field): expected a non-empty list of values, e.g. [\"a.md\", \"b.md\"]")
            }
            guard items.count <= 1000 else { throw .invalidArgument("\(field): at most 1000 values, got \(items.count)") }
            var parts: [String] = []
            for (i, item) in items.enumerated() {
                parts.append(try equality(item, key: key, field: "\(field)[\(i)]", &parameters))
            }
            return parts.map { "(\($0))" }.joined(separator: " OR ")
        case "$exists":
            guard let wanted = operand.boolValue else { throw .invalidArgument("\(field): expected true or false") }
            return "\(wanted ? "" : "NOT ")(d.metadata ? \(key)::text)"
        case "$gt", "$gte", "$lt", "$lte":
            let sqlOperator = ["$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="][op]!
            switch operand {
            case .int(let n):
                return anyValue("jsonb_typeof(v) = 'number' AND (v #>> '{}')::numeric \(sqlOperator) \(parameters.add(.int(n)))::numeric", key: key)
            case .double(let x):
                return anyValue("jsonb_typeof(v) = 'number' AND (v #>> '{}')::numeric \(sqlOperator) \(parameters.add(.double(x)))::numeric", key: key)
            case .string(let s):
                return anyValue("jsonb_typeof(v) = 'string' AND (v #>> '{}') COLLATE \"C\" \(sqlOperator) \(parameters.add(.text(s)))::text COLLATE \"C\"", key: key)
            default:
                throw .invalidArgument("\(field): a comparison takes a number or a string, got \(operand.typeName)")
            }
        default:
            throw .invalidArgument("\(field): unknown operator; known: \(operators.sorted().joined(separator: ", "))")
        }
    }

    /// "Some value of the field equals `value`" (typed).
    private static func equality(_ value: JSONValue, key: String, field: String, _ parameters: inout PGParameters) throws(DriverError) -> String {
        switch value {
        case .null:
            return "coalesce(jsonb_typeof(d.metadata -> \(key)::text), 'null') = 'null'"
        case .bool(let b):
            return anyValue("v = '\(b ? "true" : "false")'::jsonb", key: key)
        case .int(let n):
            return anyValue("jsonb_typeof(v) = 'number' AND (v #>> '{}')::numeric = \(parameters.add(.int(n)))::numeric", key: key)
        case .double(let x):
            return anyValue("jsonb_typeof(v) = 'number' AND (v #>> '{}')::numeric = \(parameters.add(.double(x)))::numeric", key: key)
        case .string(let s):
            return anyValue("jsonb_typeof(v) = 'string' AND (v #>> '{}') = \(parameters.add(.text(s)))::text", key: key)
        default:
            throw .invalidArgument("\(field): expected a string, number, boolean or null to compare with (or an object of operators), got \(value.typeName)")
        }
    }

    /// `condition` (over v, a jsonb value) holds for the field's scalar value or for some
    /// element of its list; an absent field has no values.
    private static func anyValue(_ condition: String, key: String) -> String {
        "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE jsonb_typeof(d.metadata -> \(key)::text) WHEN 'array' THEN d.metadata -> \(key)::text "
            + "ELSE jsonb_build_array(d.metadata -> \(key)::text) END) AS je(v) WHERE d.metadata ? \(key)::text AND \(condition))"
    }
}
