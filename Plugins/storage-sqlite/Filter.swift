// Metadata filters (storage.schema.json#/$defs/filter) compiled to one SQL condition
// over the JSON metadata column, with SQLite's JSON functions. Every value is a bound
// parameter and every field name goes in as a bound JSON path: nothing of the caller's
// is ever spliced into SQL text.
//
// Semantics, per field (all fields must match: AND):
// - A field's values are its scalar value, or each element of a list-valued field; a
//   condition holds when any value satisfies it ($ne and $exists: false are the
//   negations: no value equals, the field is absent).
// - Comparisons are typed: a string matches strings, a number numbers (integers and
//   reals compare numerically), a boolean booleans. "5" never equals 5.
// - null matches a field that is null or absent.
// - $gt, $gte, $lt, $lte take a number or a string (strings compare by their UTF-8
//   bytes, so ISO 8601 dates order correctly); several in one object all apply.
import LLMOSDriverSDK
import LLMOSJSON

struct CompiledFilter {
    /// A condition on `d.metadata` ("1" when the filter is empty).
    var sql: String
    var values: [SQLValue]

    static let everything = CompiledFilter(sql: "1", values: [])

    static let operators: Set<String> = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$exists"]

    /// `field` names the input field for messages ("filter", or "documents[0]...").
    static func compile(_ filter: JSONValue?, field: String = "filter") throws(DriverError) -> CompiledFilter {
        guard let filter, !filter.isNull else { return .everything }
        guard let object = filter.objectValue else {
            throw .invalidArgument("\(field) must be an object of metadata fields, e.g. {\"source\": \"a.md\", \"year\": {\"$gte\": 2020}}")
        }
        if object.isEmpty { return .everything }
        var parts: [String] = []
        var values: [SQLValue] = []
        for (key, condition) in object {
            let name = "\(field).\(key)"
            if key.hasPrefix("$") {
                throw .invalidArgument("\(name): keys starting with $ are reserved for operators inside a field's condition ({\"year\": {\"$gte\": 2020}}); a filter's top-level keys are metadata field names")
            }
            guard !key.isEmpty, !key.contains("\""), !key.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
                throw .invalidArgument("\(name): a filter field name must be non-empty, without \" or control characters")
            }
            let path = "$.\"\(key)\""
            if let conditions = condition.objectValue {
                if conditions.isEmpty {
                    throw .invalidArgument("\(name): an empty condition matches nothing useful; give an operator (\(operators.sorted().joined(separator: ", "))) or a value")
                }
                for (op, operand) in conditions {
                    let (sql, bound) = try compileOperator(op, operand, path: path, field: "\(name).\(op)")
                    parts.append(sql)
                    values += bound
                }
            } else {
                let (sql, bound) = try equality(condition, path: path, field: name)
                parts.append(sql)
                values += bound
            }
        }
        return CompiledFilter(sql: parts.map { "(\($0))" }.joined(separator: " AND "), values: values)
    }

    private static func compileOperator(_ op: String, _ operand: JSONValue, path: String, field: String) throws(DriverError) -> (String, [SQLValue]) {
        switch op {
        case "$eq":
            return try equality(operand, path: path, field: field)
        case "$ne":
            let (sql, values) = try equality(operand, path: path, field: field)
            return ("NOT (\(sql))", values)
        case "$in":
            guard let items = operand.arrayValue, !items.isEmpty else {
                throw .invalidArgument("\(field): expected a non-empty list of values, e.g. [\"a.md\", \"b.md\"]")
            }
            guard items.count <= 1000 else { throw .invalidArgument("\(field): at most 1000 values, got \(items.count)") }
            var parts: [String] = []
            var values: [SQLValue] = []
            for (i, item) in items.enumerated() {
                let (sql, bound) = try equality(item, path: path, field: "\(field)[\(i)]")
                parts.append(sql)
                values += bound
            }
            return (parts.map { "(\($0))" }.joined(separator: " OR "), values)
        case "$exists":
            guard let wanted = operand.boolValue else { throw .invalidArgument("\(field): expected true or false") }
            return ("json_type(d.metadata, ?) IS \(wanted ? "NOT " : "")NULL", [.text(path)])
        case "$gt", "$gte", "$lt", "$lte":
            let sqlOperator = ["$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="][op]!
            switch operand {
            case .int(let n):
                return (anyValue("je.type IN ('integer','real') AND je.value \(sqlOperator) ?"), [.text(path), .integer(n)])
            case .double(let x):
                return (anyValue("je.type IN ('integer','real') AND je.value \(sqlOperator) ?"), [.text(path), .real(x)])
            case .string(let s):
                return (anyValue("je.type = 'text' AND je.value \(sqlOperator) ?"), [.text(path), .text(s)])
            default:
                throw .invalidArgument("\(field): a comparison takes a number or a string, got \(operand.typeName)")
            }
        default:
            throw .invalidArgument("\(field): unknown operator; known: \(operators.sorted().joined(separator: ", "))")
        }
    }

    /// "Some value of the field equals `value`" (typed).
    private static func equality(_ value: JSONValue, path: String, field: String) throws(DriverError) -> (String, [SQLValue]) {
        switch value {
        case .null:
            return ("coalesce(json_type(d.metadata, ?), 'null') = 'null'", [.text(path)])
        case .bool(let b):
            return (anyValue("je.type = '\(b ? "true" : "false")'"), [.text(path)])
        case .int(let n):
            return (anyValue("je.type IN ('integer','real') AND je.value = ?"), [.text(path), .integer(n)])
        case .double(let x):
            return (anyValue("je.type IN ('integer','real') AND je.value = ?"), [.text(path), .real(x)])
        case .string(let s):
            return (anyValue("je.type = 'text' AND je.value = ?"), [.text(path), .text(s)])
        default:
            throw .invalidArgument("\(field): expected a string, number, boolean or null to compare with (or an object of operators), got \(value.typeName)")
        }
    }

    /// `condition` (over je.value and je.type) holds for the field's scalar value or for
    /// some element of its list: json_each gives one row for a scalar, one per element
    /// for a list, none for an absent field. Binds the path, then the condition's values.
    private static func anyValue(_ condition: String) -> String {
        "EXISTS (SELECT 1 FROM json_each(d.metadata, ?) je WHERE \(condition))"
    }
}
