import CLLMOS
import Synchronization

/// The C side of a Swift driver: the entry point's body and the `create`,
/// `destroy` and `call` functions of its `llmos_driver`.
public enum LLMOSDriverExport {
    /// The body of `llmos_driver_entry_v1`. Call it from the one exported line:
    ///
    ///     @c public func llmos_driver_entry_v1(
    ///         _ host: UnsafePointer<llmos_host>?,
    ///         _ driver: UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?
    ///     ) -> llmos_status { LLMOSDriverExport.entry(MyDriver.self, host, driver) }
    ///
    /// (`@c` needs Swift 6.3; `@_cdecl("llmos_driver_entry_v1")` does the same
    /// on older compilers. The function must be `public` to be exported.)
    ///
    /// Returns LLMOS_ERR_ABI if `host` is NULL, smaller than the 1.0
    /// `llmos_host`, missing a 1.0 function, or older than
    /// `Driver.minimumHostABIMinor`; LLMOS_ERR_INVALID_ARGUMENT if `driver` is
    /// NULL; LLMOS_ERR_INTERNAL if the driver's registration is wrong (empty or
    /// duplicate names, or a second driver type in the same library).
    /// Otherwise sets `*driver` to a description that lives until the process
    /// ends, and returns LLMOS_OK. Calling it again with the same type returns
    /// the same description.
    ///
    /// The first successful call also marks the library RTLD_NODELETE: the
    /// Swift runtime cannot survive a Swift image being unmapped (see
    /// `LibraryPin`), so dlclose() leaves it loaded.
    public static func entry<Driver: LLMOSDriver>(
        _ type: Driver.Type,
        _ host: UnsafePointer<llmos_host>?,
        _ driver: UnsafeMutablePointer<UnsafePointer<llmos_driver>?>?
    ) -> llmos_status {
        guard let host = Host(host) else { return LLMOS_ERR_ABI }
        guard let driver else { return LLMOS_ERR_INVALID_ARGUMENT }
        let name = Driver.name
        guard host.abiMinor >= Driver.minimumHostABIMinor else {
            host.log(nil, .error, "driver \(name) needs host ABI 1.\(Driver.minimumHostABIMinor) or later; the host is 1.\(host.abiMinor)")
            return LLMOS_ERR_ABI
        }
        return registration.withLock { current -> llmos_status in
            if let current {
                guard current.driverType == ObjectIdentifier(type) else {
                    host.log(nil, .error, "one driver type per library: \(current.name) is already registered, not \(name)")
                    return LLMOS_ERR_INTERNAL
                }
                driver.pointee = current.description
                return LLMOS_OK
            }
            var router = OperationRouter<Driver>()
            Driver.register(&router)
            if let problem = problem(name: name, version: Driver.version, router: router) {
                host.log(nil, .error, "driver \(name): \(problem)")
                return LLMOS_ERR_INTERNAL
            }
            let made = Registration(type: type, name: name, version: Driver.version, router: router)
            if let call = made.description.pointee.call,
               let problem = LibraryPin.pin(imageContaining: unsafeBitCast(call, to: UnsafeRawPointer.self)) {
                host.log(nil, .warn, "driver \(name): \(problem); unloading this library may crash the process")
            }
            current = made
            driver.pointee = made.description
            return LLMOS_OK
        }
    }

    private static func problem<Driver>(name: String, version: String, router: OperationRouter<Driver>) -> String? {
        if name.isEmpty || name.utf8.contains(0) { return "the driver name must be non-empty and contain no NUL" }
        if version.isEmpty || version.utf8.contains(0) { return "the driver version must be non-empty and contain no NUL" }
        if let bad = router.operations.first(where: { $0.isEmpty || $0.utf8.contains(0) }) {
            return "invalid operation name \"\(bad)\": names must be non-empty and contain no NUL"
        }
        if !router.duplicates.isEmpty {
            return "operation added more than once: \(router.duplicates.joined(separator: ", "))"
        }
        return nil
    }
}

// MARK: - The one registration of this library

/// What the entry point registered: the C description and how to make instances.
///
/// `@unchecked Sendable`: every property is set in `init` and never changed;
/// the C memory it points to is written once, before `description` is handed
/// out, and only read afterwards (by the host and by `create`).
private final class Registration: @unchecked Sendable {
    let driverType: ObjectIdentifier
    let name: String
    /// Allocated once and never freed: the host reads it until the library is
    /// unloaded (and a Swift library is never really unloaded from a process).
    let description: UnsafePointer<llmos_driver>
    let makeInstance: (DriverContext) throws -> AnyInstance

    init<Driver: LLMOSDriver>(type: Driver.Type, name: String, version: String, router: OperationRouter<Driver>) {
        self.driverType = ObjectIdentifier(type)
        self.name = name
        let table = OperationTable(router: router, driverName: name)
        self.makeInstance = { context in
            Instance<Driver>(driver: try Driver(context: context), table: table, host: context.host)
        }

        let operations = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: router.operations.count + 1)
        for (index, operation) in router.operations.enumerated() {
            operations[index] = permanentCString(operation)
        }
        operations[router.operations.count] = nil

        var d = llmos_driver()  // all zero: reserved slots NULL
        d.struct_size = UInt32(MemoryLayout<llmos_driver>.size)
        d.abi_minor = UInt32(LLMOS_ABI_MINOR)
        d.name = permanentCString(name)
        d.version = permanentCString(version)
        d.operations = UnsafePointer(operations)
        d.create = driverCreate
        d.destroy = driverDestroy
        d.call = driverCall
        let description = UnsafeMutablePointer<llmos_driver>.allocate(capacity: 1)
        description.initialize(to: d)
        self.description = UnsafePointer(description)
    }
}

/// Set once by the entry point (on the loader thread), read by every `create`
/// (any thread): behind a lock, which costs nothing next to making an instance.
/// `call` and `destroy` never touch it: they find everything through the
/// instance pointer.
private let registration = Mutex<Registration?>(nil)

/// A NUL-terminated copy of `string` that is never freed.
private func permanentCString(_ string: String) -> UnsafePointer<CChar> {
    let bytes = string.utf8CString
    let copy = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
    bytes.withUnsafeBufferPointer { copy.initialize(from: $0.baseAddress!, count: $0.count) }
    return UnsafePointer(copy)
}

// MARK: - Instances

/// The operations of a driver type, shared by all its instances.
///
/// `@unchecked Sendable`: built once by the entry point and never changed.
/// The handlers are the author's closures; whether running them on many
/// threads at once is safe is what the manifest's `threading` declares.
private final class OperationTable<Driver: LLMOSDriver>: @unchecked Sendable {
    let handlers: [String: OperationRouter<Driver>.Handler]
    let fallback: OperationRouter<Driver>.Handler?
    let driverName: String
    init(router: OperationRouter<Driver>, driverName: String) {
        self.handlers = router.handlers
        self.fallback = router.fallback
        self.driverName = driverName
    }
}

/// What the C `void *instance` points to (retained by `create`, released by
/// `destroy`). Non-generic, so that the C trampolines need no type.
private class AnyInstance {
    func call(ctx: OpaquePointer, op: UnsafePointer<CChar>, input: UnsafeRawBufferPointer) -> llmos_status {
        fatalError("abstract")
    }
}

private final class Instance<Driver: LLMOSDriver>: AnyInstance {
    let driver: Driver
    let table: OperationTable<Driver>
    let host: Host

    init(driver: Driver, table: OperationTable<Driver>, host: Host) {
        self.driver = driver
        self.table = table
        self.host = host
    }

    override func call(ctx: OpaquePointer, op: UnsafePointer<CChar>, input: UnsafeRawBufferPointer) -> llmos_status {
        let operation = String(cString: op)
        guard let handler = table.handlers[operation] ?? table.fallback else {
            return fail(ctx, .unsupported("no operation \(operation) in driver \(table.driverName)"))
        }
        let call = CallContext(ctx: ctx, host: host, operation: operation)
        defer { call.end() }
        let output: [UInt8]
        do {
            output = try handler(driver, input, call)
        } catch let error as DriverError {
            return fail(ctx, error)
        } catch let failure as InputDecodingFailure {
            return fail(ctx, .invalidArgument(JSONCoding.describe(failure.error, decoding: "input")))
        } catch {
            return fail(ctx, .internal(String(describing: error)))
        }
        // set_output copies; LLMOS_ERR_OUTPUT_TOO_LARGE already fails the call.
        return output.withUnsafeBytes { bytes in
            withNonNullChars(bytes) { chars, count in host.table.set_output!(ctx, chars, count) }
        }
    }

    private func fail(_ ctx: OpaquePointer, _ error: DriverError) -> llmos_status {
        // set_error needs a code other than OK.
        let code = error.status == LLMOS_OK ? LLMOS_ERR_INTERNAL : error.status
        _ = error.message.withCString { host.table.set_error!(ctx, code, $0) }
        return code
    }
}

// MARK: - The C functions of llmos_driver (they capture nothing)

private func driverCreate(
    _ host: UnsafePointer<llmos_host>?,
    _ config: UnsafePointer<CChar>?,
    _ configLength: Int,
    _ instance: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> llmos_status {
    guard let host = Host(host) else { return LLMOS_ERR_ABI }
    guard let instance else { return LLMOS_ERR_INVALID_ARGUMENT }
    guard let registered = registration.withLock({ $0 }) else { return LLMOS_ERR_INTERNAL }
    let configJSON = config.map {
        String(decoding: UnsafeRawBufferPointer(start: $0, count: configLength), as: UTF8.self)
    } ?? "{}"
    let context = DriverContext(config: configJSON, host: host, driverName: registered.name)
    do {
        let made = try registered.makeInstance(context)
        instance.pointee = Unmanaged.passRetained(made).toOpaque()
        return LLMOS_OK
    } catch let error as DriverError {
        let code = error.status == LLMOS_OK ? LLMOS_ERR_INTERNAL : error.status
        host.log(nil, .error, "driver \(registered.name): cannot create an instance: \(error.message)")
        return code
    } catch {
        host.log(nil, .error, "driver \(registered.name): cannot create an instance: \(error)")
        return LLMOS_ERR_INTERNAL
    }
}

private func driverDestroy(_ instance: UnsafeMutableRawPointer?) {
    guard let instance else { return }
    Unmanaged<AnyInstance>.fromOpaque(instance).release()
}

private func driverCall(
    _ instance: UnsafeMutableRawPointer?,
    _ ctx: OpaquePointer?,
    _ op: UnsafePointer<CChar>?,
    _ input: UnsafePointer<CChar>?,
    _ inputLength: Int
) -> llmos_status {
    guard let instance, let ctx, let op else { return LLMOS_ERR_INVALID_ARGUMENT }
    let object = Unmanaged<AnyInstance>.fromOpaque(instance).takeUnretainedValue()
    let bytes = UnsafeRawBufferPointer(start: input, count: input == nil ? 0 : inputLength)
    return object.call(ctx: ctx, op: op, input: bytes)
}
