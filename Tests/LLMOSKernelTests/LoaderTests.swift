import Foundation
import LLMOSJSON
import Testing
@testable import LLMOSKernel
import LLMOSDigest

@Suite struct LoaderTests {
    @Test func shippedDriversLoadFromTheSearchPath() throws {
        let kernel = makeKernel()
        let report = kernel.loadAll(from: DriverSearchPath(entries: [.init(directory: Paths.manifests, origin: "./manifests")]))
        #expect(report.failed.isEmpty, "\(report.failed)")
        #expect(kernel.driverNames.contains("calc"))
        #expect(kernel.driverNames.contains("text"))
        let calc = try #require(kernel.driver(named: "calc"))
        #expect(calc.tools == ["calc.add", "calc.sub", "calc.mul", "calc.div", "calc.eval"])
        #expect(calc.libraryPath.hasSuffix("libllmos_calc.so"))
        #expect(calc.abiMinor == 1)   // built against this header (1.1)
        #expect(kernel.tool(named: "text.count") != nil)
    }

    @Test func firstMatchWinsOnTheSearchPath() throws {
        let first = Paths.temporaryDirectory("first"), second = Paths.temporaryDirectory("second")
        _ = try Fixtures.install("echo", into: first)
        _ = try Fixtures.install("echo", into: second)
        let kernel = makeKernel()
        let report = kernel.loadAll(from: DriverSearchPath(entries: [.init(directory: first, origin: "a"), .init(directory: second, origin: "b")]))
        #expect(report.loaded.map(\.name) == ["echo"])
        #expect(report.shadowed.count == 1)
        #expect(report.shadowed.first?.manifestFile == second + "/echo.yaml")
        #expect(kernel.driver(named: "echo")?.manifestFile == first + "/echo.yaml")
    }

    @Test func twoDriversClaimingOneName() throws {
        let kernel = makeKernel()
        try kernel.load(manifestAt: try Fixtures.install("echo"))
        let other = try Fixtures.install("echo")
        let error = expectError { try kernel.load(manifestAt: other) }
        #expect(error.code == .conflict)
        #expect(error.message.contains("a driver named \"echo\" is already loaded from"), "\(error.message)")
    }

    @Test func libraryMissing() throws {
        let dir = Paths.temporaryDirectory("missing")
        let manifest = try Fixtures.install("echo", into: dir)
        try FileManager.default.removeItem(atPath: dir + "/libecho.so")
        let error = expectError { try makeKernel().load(manifestAt: manifest) }
        #expect(error.code == .notFound)
        #expect(error.message.contains("library.path: library libecho.so not found; looked in \(dir)/libecho.so"), "\(error.message)")
    }

    @Test func notASharedLibrary() throws {
        let dir = Paths.temporaryDirectory("garbage")
        let manifest = try Fixtures.install("echo", into: dir)
        try Data("not an ELF file".utf8).write(to: URL(fileURLWithPath: dir + "/libecho.so"))
        let error = expectError { try makeKernel().load(manifestAt: manifest) }
        #expect(error.code == .loadFailed)
        #expect(error.message.contains("cannot load \(dir)/libecho.so"), "\(error.message)")
    }

    @Test func entrySymbolMissing() throws {
        let error = expectError { try makeKernel().load(manifestAt: try Fixtures.install("noentry")) }
        #expect(error.message.contains("does not export the entry point llmos_driver_entry_v1"), "\(error.message)")
    }

    @Test func anotherABIMajor() throws {
        let error = expectError { try makeKernel().load(manifestAt: try Fixtures.install("abi2")) }
        #expect(error.code == .abi)
        #expect(error.message.contains("was built for driver ABI major 2 (it exports llmos_driver_entry_v2); this host speaks major 1"), "\(error.message)")
    }

    @Test func manifestAsksForAnotherMajorOrANewerMinor() throws {
        let major = try Fixtures.install("echo") { $0.replacingOccurrences(of: "major: 1", with: "major: 2") }
        #expect(expectError { try makeKernel().load(manifestAt: major) }.message.contains("abi.major: the driver needs ABI major 2; this host speaks major 1"))
        let minor = try Fixtures.install("echo") { $0.replacingOccurrences(of: "minor: 0", with: "minor: 7") }
        #expect(expectError { try makeKernel().load(manifestAt: minor) }.message.contains("the driver needs ABI 1.7; this host provides \(Kernel.abiVersion)"))
    }

    @Test func driverOlderThanTheManifestRequires() throws {
        let manifest = try Fixtures.install("oldminor")
        // This host (older than 1.3) refuses the manifest (it needs 1.3) before mapping anything...
        #expect(expectError { try makeKernel().load(manifestAt: manifest) }.message.contains("the driver needs ABI 1.3; this host provides \(Kernel.abiVersion)"))
        // ...and a newer host refuses the library, built against 1.0, for the same manifest.
        let newerHost = makeKernel { $0.hostABIMinor = 5 }
        let error = expectError { try newerHost.load(manifestAt: manifest) }
        #expect(error.code == .abi)
        #expect(error.message.contains("abi.minor: the manifest requires ABI 1.3, but the library was built against 1.0"), "\(error.message)")
    }

    @Test func structSmallerThanTheMinimum() throws {
        let error = expectError { try makeKernel().load(manifestAt: try Fixtures.install("smallstruct")) }
        #expect(error.code == .abi)
        #expect(error.message.contains("llmos_driver.struct_size is 8 bytes, smaller than the"), "\(error.message)")
    }

    @Test func nameMismatch() throws {
        let error = expectError { try makeKernel().load(manifestAt: try Fixtures.install("misnamed")) }
        #expect(error.message.contains("name: the manifest says \"misnamed\" but the library calls itself \"othername\""), "\(error.message)")
    }

    @Test func declaredToolNotImplemented() throws {
        let error = expectError { try makeKernel().load(manifestAt: try Fixtures.install("missingtool")) }
        #expect(error.message.contains("the manifest declares tool two but the library does not implement it (it offers: one)"), "\(error.message)")
    }

    @Test func driverRefusesTheHost() throws {
        let error = expectError { try makeKernel().load(manifestAt: try Fixtures.install("refuses")) }
        #expect(error.code == .abi)
        #expect(error.message.contains("the driver refused to load (llmos_driver_entry_v1 returned abi); the driver said: \""), "\(error.message)")
    }

    @Test func createFails() throws {
        let error = expectError { try makeKernel().load(manifestAt: try Fixtures.install("createfails")) }
        #expect(error.message.contains("the driver could not start (create returned invalid_argument)"), "\(error.message)")
    }

    @Test func configReachesCreateAndSecretsStayOut() throws {
        let kernel = makeKernel { $0.driverConfig["createfails"] = ["token": "s3cret-value"] }
        let error = expectError { try kernel.load(manifestAt: try Fixtures.install("createfails")) }
        #expect(error.message.contains("the configured token (12 bytes) was rejected"), "\(error.message)")
        #expect(!error.message.contains("s3cret-value"))
    }

    @Test func configIsCheckedAgainstItsSchema() throws {
        let withSchema: (String) -> String = { $0 + "\nconfig:\n  type: object\n  properties:\n    level: {type: integer, default: 3}\n  additionalProperties: false\n" }
        try makeKernel().load(manifestAt: try Fixtures.install("echo", manifestEdit: withSchema))
        let bad = makeKernel { $0.driverConfig["echo"] = ["levle": 2] }
        let error = expectError { try bad.load(manifestAt: try Fixtures.install("echo", manifestEdit: withSchema)) }
        #expect(error.code == .invalidArgument)
        #expect(error.message.contains("does not match its config schema") && error.message.contains("levle"), "\(error.message)")
    }

    @Test func processIsolationWithoutItsHelperIsRefusedWithWhatToDo() throws {
        let manifest = try Fixtures.install("echo") { $0.replacingOccurrences(of: "isolation: in-process", with: "isolation: process") }
        let error = expectError { try makeKernel { $0.isolation.helperPath = "/nonexistent/llmos-driver-host" }.load(manifestAt: manifest) }
        #expect(error.code == .notFound)
        #expect(error.message.contains("llmos-driver-host was not found") && error.message.contains("LLMOS_DRIVER_HOST"), "\(error.message)")
        #expect(try makeKernel().load(manifestAt: manifest).isolation == .process)
    }

    @Test func sha256IsCheckedBeforeLoading() throws {
        let library = try Fixtures.library("echo")
        let digest = SHA256.hex(of: try FilePath.readBytes(library))
        let good = try Fixtures.install("echo") { $0.replacingOccurrences(of: "path: libecho.so", with: "path: libecho.so\n  sha256: \(digest)") }
        try makeKernel().load(manifestAt: good)
        let wrong = String(repeating: "0", count: 64)
        let bad = try Fixtures.install("echo") { $0.replacingOccurrences(of: "path: libecho.so", with: "path: libecho.so\n  sha256: \(wrong)") }
        let error = expectError { try makeKernel().load(manifestAt: bad) }
        #expect(error.message.contains("library.sha256:") && error.message.contains("but the manifest expects \(wrong)"), "\(error.message)")
    }

    @Test func loadUnloadReload() throws {
        let kernel = makeKernel()
        let manifest = try Fixtures.install("echo")
        try kernel.load(manifestAt: manifest)
        #expect(try kernel.call("echo.echo", input: #"{"x":1}"#).output == #"{"x":1}"#)
        try kernel.unload("echo")
        #expect(kernel.driver(named: "echo") == nil)
        #expect(expectError { try kernel.call("echo.echo", input: "{}") }.message.hasPrefix("no tool echo.echo"))
        #expect(expectError { try kernel.unload("echo") }.code == .notFound)
        try kernel.load(manifestAt: manifest)
        let info = try kernel.reload("echo")
        #expect(info.name == "echo")
        #expect(try kernel.call("echo.echo", input: #"{"y":[1]}"#).output == #"{"y":[1]}"#)
    }
}
