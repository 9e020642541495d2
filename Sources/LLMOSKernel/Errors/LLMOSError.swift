import CLLMOS

/// An error from the kernel: a code, a message written for the person (or model)
/// who must act on it, and an optional cause. Errors are values, compared by code.
public struct LLMOSError: Error, Sendable, CustomStringConvertible {
    /// Extensible error codes. The raw value is the ABI status code (`LLMOS_ERR_*`)
    /// where one exists, so an error crosses the C boundary without a table.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        public static let internalError = Code(rawValue: LLMOS_ERR_INTERNAL)
        public static let invalidArgument = Code(rawValue: LLMOS_ERR_INVALID_ARGUMENT)
        public static let notFound = Code(rawValue: LLMOS_ERR_NOT_FOUND)
        public static let unsupported = Code(rawValue: LLMOS_ERR_UNSUPPORTED)
        public static let permissionDenied = Code(rawValue: LLMOS_ERR_PERMISSION_DENIED)
        public static let timeout = Code(rawValue: LLMOS_ERR_TIMEOUT)
        public static let cancelled = Code(rawValue: LLMOS_ERR_CANCELLED)
        public static let outputTooLarge = Code(rawValue: LLMOS_ERR_OUTPUT_TOO_LARGE)
        public static let unavailable = Code(rawValue: LLMOS_ERR_UNAVAILABLE)
        public static let resourceExhausted = Code(rawValue: LLMOS_ERR_RESOURCE_EXHAUSTED)
        public static let invalidOutput = Code(rawValue: LLMOS_ERR_INVALID_OUTPUT)
        public static let abi = Code(rawValue: LLMOS_ERR_ABI)
        // Kernel-only codes (never returned by a driver), above the ABI's range.
        public static let invalidManifest = Code(rawValue: 1001)
        public static let loadFailed = Code(rawValue: 1002)
        public static let conflict = Code(rawValue: 1003)
        public static let io = Code(rawValue: 1004)

        /// Maps a status a driver returned; unknown codes are `internal`, as the ABI says.
        public init(status: Int32) {
            self = Code.names[status] != nil ? Code(rawValue: status) : .internalError
        }

        static let names: [Int32: String] = [
            LLMOS_ERR_INTERNAL: "internal", LLMOS_ERR_INVALID_ARGUMENT: "invalid_argument",
            LLMOS_ERR_NOT_FOUND: "not_found", LLMOS_ERR_UNSUPPORTED: "unsupported",
            LLMOS_ERR_PERMISSION_DENIED: "permission_denied", LLMOS_ERR_TIMEOUT: "timeout",
            LLMOS_ERR_CANCELLED: "cancelled", LLMOS_ERR_OUTPUT_TOO_LARGE: "output_too_large",
            LLMOS_ERR_UNAVAILABLE: "unavailable", LLMOS_ERR_RESOURCE_EXHAUSTED: "resource_exhausted",
            LLMOS_ERR_INVALID_OUTPUT: "invalid_output", LLMOS_ERR_ABI: "abi",
            1001: "invalid_manifest", 1002: "load_failed", 1003: "conflict", 1004: "io",
        ]

        /// A stable snake_case name, used in JSON output and syscall error objects.
        public var name: String { Code.names[rawValue] ?? "code_\(rawValue)" }
        public var description: String { name }

        /// The status to hand across the C ABI: kernel-only codes become `internal`.
        public var abiStatus: Int32 { rawValue < 1000 ? rawValue : LLMOS_ERR_INTERNAL }
    }

    public var code: Code
    public var message: String
    public var cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(message) (\(cause))" }
        return message
    }
}
