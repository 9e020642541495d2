import Yams

/// What the manifest and policy readers both need to know about a Yams node: its
/// resolved type, and how to name it in an error ("a list", "an integer (3)").
protocol YAMLNodeReading {}

extension YAMLNodeReading {
    /// The resolved tag (str, int, float, bool, null) of a scalar.
    func tagName(_ scalar: Node.Scalar) -> Tag.Name { Tag.Name(rawValue: Node.scalar(scalar).tag.rawValue) }

    func isType(_ node: Node, _ name: Tag.Name) -> Bool {
        guard case .scalar(let scalar) = node else { return false }
        return tagName(scalar) == name
    }

    func isNull(_ node: Node) -> Bool { isType(node, .null) }

    /// The node's kind as an error message says it.
    func kind(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let s):
            switch tagName(s) {
            case .null: return "null"
            case .bool: return "a boolean (\(s.string))"
            case .int: return "an integer (\(s.string))"
            case .float: return "a number (\(s.string))"
            default: return "a string (\"\(s.string.prefix(40))\")"
            }
        }
    }

    /// "tools[0]" + "name" → "tools[0].name".
    func join(_ parent: String, _ key: String) -> String { parent.isEmpty ? key : "\(parent).\(key)" }
}
