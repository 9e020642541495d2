import CLLMOS

/// What a driver instance is created with: its configuration and a way to log.
///
/// Passed to `LLMOSDriver.init(context:)`. You may keep it for the life of the
/// instance (it holds no call context and no host-owned memory) and use it from
/// any thread.
public struct DriverContext: Sendable {
    /// The driver's configuration object as JSON text ("{}" when the manifest
    /// and the operator give none). A copy: yours to keep.
    public let config: String
    /// The ABI minor version of the host (`host->abi_minor`). Test it before
    /// using something added after 1.0.
    public let hostABIMinor: UInt32
    /// The driver's name, as its type declares it.
    public let driverName: String

    let host: Host

    init(config: String, host: Host, driverName: String) {
        self.config = config
        self.host = host
        self.hostABIMinor = host.abiMinor
        self.driverName = driverName
    }

    /// Decode the configuration into `T`. A mismatch throws
    /// `invalidArgument("invalid configuration: ...")` naming the field.
    public func decodeConfig<T: Decodable>(_ type: T.Type = T.self) throws(DriverError) -> T {
        do {
            return try JSONCoding.decode(type, from: config)
        } catch let error as DecodingError {
            throw .invalidArgument(JSONCoding.describe(error, decoding: "configuration"))
        } catch {
            throw .invalidArgument("invalid configuration: \(error)")
        }
    }

    /// Write a line to the host's log, attributed to this driver but to no
    /// call. Any thread, any time while the library is loaded. No secrets.
    public func log(_ level: LogLevel, _ message: String) {
        host.log(nil, level, message)
    }
}
