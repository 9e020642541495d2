import CFFI
import CLLMOS
import CLLMOSSystem
import Foundation
import Glibc
import LLMOSDigest

// How an ffi-only manifest becomes a loaded driver (docs/FFI.md): the library is any
// shared library (libm.so.6, libz.so.1) with no llmos entry point. The kernel maps it,
// finds each tool's symbol, prepares its libffi call once, and stands in for the
// driver's `call` itself — so the tools are ordinary tools on the ordinary call path.

extension DriverLoader {
    /// Where a bare library name of an ffi manifest is looked for after the usual places:
    /// the system's library directories, as the dynamic linker would (Debian's multiarch first).
    static let systemLibraryDirectories: [String] = {
        #if arch(x86_64)
        let triple = "x86_64-linux-gnu"
        #elseif arch(arm64)
        let triple = "aarch64-linux-gnu"
        #else
        let triple = ""
        #endif
        var dirs: [String] = []
        if !triple.isEmpty { dirs += ["/lib/\(triple)", "/usr/lib/\(triple)"] }
        return dirs + ["/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib"]
    }()

    /// `library.path` of an ffi manifest: as for any driver, and a bare name (a soname such
    /// as libm.so.6) is then looked for in the system's library directories. The resolved
    /// file is what is hashed and mapped: the kernel uses exactly the file it checked.
    func resolveFFILibrary(_ manifest: DriverManifest) throws(LLMOSError) -> String {
        do {
            return try resolveLibrary(manifest)
        } catch {
            let path = FilePath.expandTilde(manifest.library.path)
            guard !path.contains("/") else { throw error }
            let candidates = Self.systemLibraryDirectories.map { FilePath.join($0, path) }
            for candidate in candidates where FilePath.isRegularFile(candidate) {
                return FilePath.resolved(candidate) ?? candidate
            }
            throw LLMOSError(.notFound, error.message + ", " + candidates.joined(separator: ", ") + " (an ffi driver's library is any shared library: give its soname, such as libz.so.1, or a path; `ldconfig -p | grep NAME` shows what is installed)")
        }
    }

    func loadFFI(_ manifest: DriverManifest) throws(LLMOSError) -> LoadedDriver {
        let file = manifest.file
        if isIsolated(manifest) {
            throw LLMOSError(.unsupported, "\(file): \(manifest.name) is an ffi driver (plain C functions of \(manifest.library.path), called through libffi) and cannot run isolated: the sandboxed helper hosts libraries through llmos_driver_entry_v1, which this library does not have. Drop --isolate \(manifest.name) (or the policy's isolate rule) to run it in-process, or wrap the functions in a C driver to isolate them (docs/FFI.md)")
        }
        let libraryPath = try resolveFFILibrary(manifest)
        if let expected = manifest.library.sha256 {
            let actual = SHA256.hex(of: try FilePath.readBytes(libraryPath))
            guard actual == expected else {
                throw LLMOSError(.loadFailed, "\(file): library.sha256: \(libraryPath) has SHA-256 \(actual), but the manifest expects \(expected); refusing to load a library that is not the one the manifest describes")
            }
        }
        let handle = try MappedLibraries.shared.open(libraryPath, manifest: file)
        let driver = LoadedDriver(manifest: manifest, libraryPath: libraryPath, kernel: kernel)
        driver.handle = handle
        driver.keepsMapped = MappedLibraries.usesSwiftRuntime(handle)
        do {
            var tools: [ToolEntry] = []
            var functions: [FFIFunction] = []
            var pointers: [(UnsafeRawPointer, FFIFunction)] = []
            for (i, spec) in manifest.operations.enumerated() {
                guard let signature = spec.ffi else { continue }   // the parser requires one on every tool
                let field = "tools[\(i)].ffi"
                let address = try functionAddress(signature.symbol, handle: handle, libraryPath: libraryPath, field: field, file: file, tool: spec.name)
                let tool = try ToolEntry(driver: driver, spec: spec)
                let function = try FFIFunction(operation: spec.name, signature: signature, address: address, field: field, file: file)
                tools.append(tool)
                functions.append(function)
                pointers.append((UnsafeRawPointer(tool.operation), function))
            }
            driver.tools = tools
            driver.operations = manifest.operations.map(\.name)
            driver.reportedVersion = manifest.version
            driver.reportedABIMinor = UInt32(LLMOS_ABI_MINOR)
            var table = llmos_driver()
            table.struct_size = UInt32(llmos_driver_size())
            table.abi_minor = UInt32(LLMOS_ABI_MINOR)
            table.call = FFIDriverInstance.call
            table.destroy = FFIDriverInstance.destroy
            driver.table = table
            let instance = FFIDriverInstance(functions: functions, operationPointers: pointers)
            driver.instance = Unmanaged.passRetained(instance).toOpaque()
            _ = driver.takeLoadLog()
            return driver
        } catch {
            _ = driver.takeLoadLog()
            driver.tools = []
            if !driver.keepsMapped { dlclose(handle) }
            driver.handle = nil
            throw error
        }
    }

    /// The symbol's address, if the library itself defines it as a function.
    private func functionAddress(_ symbol: String, handle: UnsafeMutableRawPointer, libraryPath: String,
                                 field: String, file: String, tool: String) throws(LLMOSError) -> UnsafeMutableRawPointer {
        _ = dlerror()
        guard let address = dlsym(handle, symbol) else {
            throw LLMOSError(.notFound, "\(file): \(field).symbol: \(libraryPath) does not export \(symbol) (tool \(tool)); check the spelling against `nm -D --defined-only \(libraryPath)`")
        }
        // dlsym also searches the libraries this one links (libc, for most), and finds data
        // symbols as well as functions: the mapping that holds the address says which.
        if let mapping = Self.mapping(containing: address) {
            let canonical = FilePath.resolved(mapping.path) ?? mapping.path
            if canonical != libraryPath {
                throw LLMOSError(.notFound, "\(file): \(field).symbol: \(symbol) is not defined in \(libraryPath); it comes from \(canonical), a library it links. Name the library that defines it in library.path")
            }
            if !mapping.executable {
                throw LLMOSError(.loadFailed, "\(file): \(field).symbol: \(symbol) in \(libraryPath) is not a function (it is data, outside the library's code); only functions can be tools")
            }
        }
        return address
    }

    /// The mapping of this process that holds `address` (from /proc/self/maps): its file and
    /// whether it is executable code.
    static func mapping(containing address: UnsafeMutableRawPointer) -> (path: String, executable: Bool)? {
        let target = UInt(bitPattern: address)
        guard let file = fopen("/proc/self/maps", "r") else { return nil }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            let text = String(cString: line)
            let fields = text.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count >= 5 else { continue }
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16),
                  start <= target, target < end else { continue }
            let path = fields.count == 6 ? fields[5].trimmingCharacters(in: .whitespacesAndNewlines) : ""
            guard path.hasPrefix("/") else { return nil }
            return (path, fields[1].contains("x"))
        }
        return nil
    }
}
