import CLLMOS

/// An error a driver reports to the kernel: a status code and a message for the
/// model and the user.
///
/// Throw it from an operation handler and the SDK passes it to
/// `host->set_error(code, message)`. Say what was wrong and, when you can, what
/// would be right: `"b must not be 0"`, not `"bad input"`.
///
/// ```swift
/// throw DriverError.invalidArgument("pattern must not be empty")
/// throw DriverError.cancelled
/// ```
public struct DriverError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A status code of the llmos ABI (`LLMOS_ERR_*`). A struct rather than an
    /// enum because new codes may be added in any minor version of the ABI.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: llmos_status
        public init(rawValue: llmos_status) { self.rawValue = rawValue }

        /// A bug or an unexpected failure (`LLMOS_ERR_INTERNAL`).
        public static let `internal` = Code(rawValue: LLMOS_ERR_INTERNAL)
        /// Input is well-formed JSON but wrong (`LLMOS_ERR_INVALID_ARGUMENT`).
        public static let invalidArgument = Code(rawValue: LLMOS_ERR_INVALID_ARGUMENT)
        /// The thing named does not exist (`LLMOS_ERR_NOT_FOUND`).
        public static let notFound = Code(rawValue: LLMOS_ERR_NOT_FOUND)
        /// Unknown operation or feature (`LLMOS_ERR_UNSUPPORTED`).
        public static let unsupported = Code(rawValue: LLMOS_ERR_UNSUPPORTED)
        /// The capability layer said no (`LLMOS_ERR_PERMISSION_DENIED`).
        public static let permissionDenied = Code(rawValue: LLMOS_ERR_PERMISSION_DENIED)
        /// A deadline passed (`LLMOS_ERR_TIMEOUT`).
        public static let timeout = Code(rawValue: LLMOS_ERR_TIMEOUT)
        /// The caller cancelled the call (`LLMOS_ERR_CANCELLED`).
        public static let cancelled = Code(rawValue: LLMOS_ERR_CANCELLED)
        /// Output over the manifest's limit (`LLMOS_ERR_OUTPUT_TOO_LARGE`).
        public static let outputTooLarge = Code(rawValue: LLMOS_ERR_OUTPUT_TOO_LARGE)
        /// Try again later (`LLMOS_ERR_UNAVAILABLE`).
        public static let unavailable = Code(rawValue: LLMOS_ERR_UNAVAILABLE)
        /// Out of memory, quota, budget (`LLMOS_ERR_RESOURCE_EXHAUSTED`).
        public static let resourceExhausted = Code(rawValue: LLMOS_ERR_RESOURCE_EXHAUSTED)
        /// The driver produced bad output (`LLMOS_ERR_INVALID_OUTPUT`).
        public static let invalidOutput = Code(rawValue: LLMOS_ERR_INVALID_OUTPUT)
        /// Version or struct negotiation failed (`LLMOS_ERR_ABI`).
        public static let abi = Code(rawValue: LLMOS_ERR_ABI)

        /// The code's snake_case name ("invalid_argument"), or "status N" for a
        /// code this SDK does not know.
        public var name: String {
            switch rawValue {
            case LLMOS_OK: return "ok"
            case LLMOS_ERR_INTERNAL: return "internal"
            case LLMOS_ERR_INVALID_ARGUMENT: return "invalid_argument"
            case LLMOS_ERR_NOT_FOUND: return "not_found"
            case LLMOS_ERR_UNSUPPORTED: return "unsupported"
            case LLMOS_ERR_PERMISSION_DENIED: return "permission_denied"
            case LLMOS_ERR_TIMEOUT: return "timeout"
            case LLMOS_ERR_CANCELLED: return "cancelled"
            case LLMOS_ERR_OUTPUT_TOO_LARGE: return "output_too_large"
            case LLMOS_ERR_UNAVAILABLE: return "unavailable"
            case LLMOS_ERR_RESOURCE_EXHAUSTED: return "resource_exhausted"
            case LLMOS_ERR_INVALID_OUTPUT: return "invalid_output"
            case LLMOS_ERR_ABI: return "abi"
            default: return "status \(rawValue)"
            }
        }

        public var description: String { name }
    }

    /// What kind of failure this is.
    public var code: Code
    /// A human-readable message, shown to the model and the user. Never put
    /// secrets in it.
    public var message: String

    /// The raw ABI status (`code.rawValue`).
    public var status: llmos_status { code.rawValue }

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `"invalid_argument: b must not be 0"`.
    public var description: String { "\(code.name): \(message)" }

    // MARK: Constructors, one per code.

    public static func `internal`(_ message: String) -> DriverError { .init(.internal, message) }
    public static func invalidArgument(_ message: String) -> DriverError { .init(.invalidArgument, message) }
    public static func notFound(_ message: String) -> DriverError { .init(.notFound, message) }
    public static func unsupported(_ message: String) -> DriverError { .init(.unsupported, message) }
    public static func permissionDenied(_ message: String) -> DriverError { .init(.permissionDenied, message) }
    public static func timeout(_ message: String) -> DriverError { .init(.timeout, message) }
    public static func cancelled(_ message: String) -> DriverError { .init(.cancelled, message) }
    public static func outputTooLarge(_ message: String) -> DriverError { .init(.outputTooLarge, message) }
    public static func unavailable(_ message: String) -> DriverError { .init(.unavailable, message) }
    public static func resourceExhausted(_ message: String) -> DriverError { .init(.resourceExhausted, message) }
    public static func invalidOutput(_ message: String) -> DriverError { .init(.invalidOutput, message) }
    public static func abi(_ message: String) -> DriverError { .init(.abi, message) }

    /// `cancelled`: "the call was cancelled". Throw it soon after
    /// `CallContext.isCancelled` turns true (or use `checkCancellation()`).
    public static var cancelled: DriverError { .init(.cancelled, "the call was cancelled") }
    /// `timeout`: "the deadline passed".
    public static var timeout: DriverError { .init(.timeout, "the deadline passed") }
}
