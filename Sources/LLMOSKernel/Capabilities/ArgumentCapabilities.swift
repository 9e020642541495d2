import LLMOSJSON

/// Tool arguments that name a resource, found once per tool from its input schema:
/// a string property marked `"x-llmos-capability": "fs.read"` (or any capability)
/// is checked by the kernel, on its canonical form, before the driver runs — and the
/// driver receives the canonical form.
public struct ArgumentCapability: Sendable, Equatable {
    /// The property names from the input object down to the field, e.g. ["options", "path"].
    public var path: [String]
    public var kind: CapabilityKind

    public var dottedPath: String { path.joined(separator: ".") }

    /// Every marked string property in an object schema, following nested object
    /// `properties` (arrays and combinators are not followed: mark fields you need checked
    /// at object level).
    public static func find(in schema: JSONValue) throws(ArgumentCapabilityError) -> [ArgumentCapability] {
        var found: [ArgumentCapability] = []
        try collect(schema, path: [], into: &found)
        return found
    }

    private static func collect(_ schema: JSONValue, path: [String], into found: inout [ArgumentCapability]) throws(ArgumentCapabilityError) {
        if let marker = schema["x-llmos-capability"] {
            guard let name = marker.stringValue, let kind = CapabilityKind(rawValue: name) else {
                throw ArgumentCapabilityError(path: path, message: "x-llmos-capability must name a capability (\(CapabilityKind.allCases.map(\.rawValue).joined(separator: ", "))), got \(marker.serialized())")
            }
            guard !path.isEmpty else {
                throw ArgumentCapabilityError(path: path, message: "x-llmos-capability marks a field, not the whole input")
            }
            found.append(ArgumentCapability(path: path, kind: kind))
        }
        for (key, property) in schema["properties"]?.objectValue ?? JSONObject() {
            try collect(property, path: path + [key], into: &found)
        }
    }

    /// The field's string value in `input`, if present.
    public func value(in input: JSONValue) -> String? {
        var current = input
        for key in path {
            guard let next = current[key] else { return nil }
            current = next
        }
        return current.stringValue
    }

    /// `input` with the field replaced (the canonical form the driver receives).
    public func replacing(in input: JSONValue, with newValue: String) -> JSONValue {
        func replace(_ value: JSONValue, _ rest: ArraySlice<String>) -> JSONValue {
            guard let key = rest.first, var object = value.objectValue, let child = object[key] else {
                return rest.isEmpty ? .string(newValue) : value
            }
            object[key] = replace(child, rest.dropFirst())
            return .object(object)
        }
        return replace(input, path[...])
    }
}

public struct ArgumentCapabilityError: Error, Sendable {
    public var path: [String]
    public var message: String
}
