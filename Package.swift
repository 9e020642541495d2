// swift-tools-version:6.1
import PackageDescription

// Layers (each depends only on those below it), see docs/ARCHITECTURE.md:
//   CLLMOS (sdk/include: the C ABI) -> LLMOSJSON -> LLMOSKernel -> llmos (the shell)
//   LLMOSDriverSDK (sdk/swift) depends on CLLMOS only; drivers depend on the SDK, never the kernel.
let package = Package(
    name: "llmos",
    products: [
        .executable(name: "llmos", targets: ["llmos"]),
        .library(name: "LLMOSKernel", targets: ["LLMOSKernel"]),
        .library(name: "LLMOSDriverSDK", targets: ["LLMOSDriverSDK"]),
        // Drivers we ship: loaded with dlopen through the same ABI as anyone's.
        .library(name: "llmos_calc", type: .dynamic, targets: ["CalcDriver"]),
        .library(name: "llmos_text", type: .dynamic, targets: ["TextDriver"]),
        .library(name: "llmos_openai", type: .dynamic, targets: ["OpenAIDriver"]),
        .library(name: "llmos_anthropic", type: .dynamic, targets: ["AnthropicDriver"]),
        .library(name: "llmos_local", type: .dynamic, targets: ["LocalDriver"]),
        .library(name: "llmos_scripted", type: .dynamic, targets: ["ScriptedDriver"]),
        .library(name: "llmos_clock", type: .dynamic, targets: ["ClockDriver"]),
        .library(name: "llmos_fs", type: .dynamic, targets: ["FSDriver"]),
        .library(name: "llmos_notes", type: .dynamic, targets: ["NotesDriver"]),
        .library(name: "llmos_calendar", type: .dynamic, targets: ["CalendarDriver"]),
        .library(name: "llmos_http", type: .dynamic, targets: ["HTTPDriver"]),
        .library(name: "llmos_shell", type: .dynamic, targets: ["ShellDriver"]),
        .library(name: "llmos_python", type: .dynamic, targets: ["PythonDriver"]),
        .library(name: "llmos_web", type: .dynamic, targets: ["WebDriver"]),
        .library(name: "llmos_mail", type: .dynamic, targets: ["MailDriver"]),
        .library(name: "llmos_sqlite", type: .dynamic, targets: ["SQLiteStorageDriver"]),
        .library(name: "llmos_postgres", type: .dynamic, targets: ["PostgresStorageDriver"]),
        .library(name: "llmos_window", type: .dynamic, targets: ["WindowMemoryDriver"]),
        .library(name: "llmos_compact", type: .dynamic, targets: ["CompactMemoryDriver"]),
        .library(name: "llmos_paged", type: .dynamic, targets: ["PagedMemoryDriver"]),
        .library(name: "llmos_mcp", type: .dynamic, targets: ["MCPDriver"]),
        // The sandboxed helper process that `isolation: process` drivers run in.
        .executable(name: "llmos-driver-host", targets: ["llmos-driver-host"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // The HTTP server behind `llmos serve --http` (LLMOSHTTP only; never the kernel).
        // No default traits: swift-configuration and full Foundation are not needed.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-log", from: "1.14.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        // Layer 1: the ABI header, as a C module for Swift.
        .target(
            name: "CLLMOS",
            path: "sdk",
            exclude: ["swift", "schemas", "templates"],
            publicHeadersPath: "include"
        ),
        // Layer 3 building blocks.
        .target(name: "LLMOSJSON"),
        // SHA-256, shared by the kernel (audit chain, library pins) and drivers (the sqlite driver's ids).
        .target(name: "LLMOSDigest"),
        // The context window's rules (token estimates, tool calls kept with their results,
        // newest-first assembly), shared by the kernel's built-in window and the memory drivers.
        .target(name: "LLMOSContext", dependencies: ["LLMOSJSON"]),
        .target(name: "CLLMOSSystem", dependencies: ["CLLMOS"]),
        // The kernel <-> helper wire for isolated drivers, in C for both sides.
        .target(name: "CLLMOSIsolation"),
        // The helper itself: plain C, so its sandbox and its system calls are its own.
        .executableTarget(name: "llmos-driver-host", dependencies: ["CLLMOS", "CLLMOSIsolation", "CLLMOSSandbox"]),
        // The sandbox (Landlock, seccomp, rlimits, network namespace) built from a plan's text:
        // applied by the helper to itself, and by drivers to the programs they start.
        .target(name: "CLLMOSSandbox"),
        // fork/exec of a driver's supervised child (PR_SET_PDEATHSIG, its own process group,
        // only fds 0-2, optionally sandboxed), shared by the local and mcp drivers.
        .target(name: "CLLMOSSpawn", dependencies: ["CLLMOSSandbox"]),
        // System libraries (Debian: libsqlite3-dev, libcurl4-openssl-dev; `make deps` installs them).
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // libffi, for zero-code drivers: C functions called from a manifest alone (docs/FFI.md).
        // libpq, for the postgres storage driver (Debian: libpq-dev).
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CFFI", pkgConfig: "libffi", providers: [.apt(["libffi-dev"])]),
        .target(
            name: "LLMOSKernel",
            dependencies: ["CLLMOS", "LLMOSJSON", "LLMOSDigest", "LLMOSContext", "CLLMOSSystem", "CLLMOSIsolation", "CSQLite", "CFFI", .product(name: "Yams", package: "Yams")]
        ),
        // The network service behind net.fetch, apart from the kernel so libcurl stays out of it.
        .target(name: "LLMOSNet", dependencies: ["CCurl", "LLMOSKernel", "LLMOSJSON"]),
        // The MCP server over the host's tools (llmos serve --mcp): a shell, on the kernel's Swift API only.
        .target(name: "LLMOSServe", dependencies: ["LLMOSKernel", "LLMOSJSON"]),
        // llmos serve --http: OpenAI-compatible chat completions, a JSON API, the dashboard and MCP
        // over streamable HTTP, on Hummingbird. A shell like LLMOSServe: the kernel's Swift API only.
        .target(name: "LLMOSHTTP", dependencies: ["LLMOSKernel", "LLMOSJSON", "LLMOSServe", "LLMOSDigest",
                                             .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log"),
                                             .product(name: "HTTPTypes", package: "swift-http-types")]),
        // Layer 5: the command-line shell.
        .executableTarget(
            name: "llmos",
            dependencies: ["LLMOSKernel", "LLMOSJSON", "LLMOSNet", "LLMOSModelCache", "LLMOSServe", "LLMOSHTTP", "LLMOSIngest", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // The Swift SDK for driver authors.
        .target(name: "LLMOSDriverSDK", dependencies: ["CLLMOS"], path: "sdk/swift"),
        // Layer 4: drivers.
        .target(name: "CalcDriver", dependencies: ["CLLMOS"], path: "Plugins/calc", publicHeadersPath: "."),
        .target(name: "TextDriver", dependencies: ["LLMOSDriverSDK"], path: "Plugins/text", exclude: ["README.md"]),
        // Model drivers: ModelKit (a static library, linked into each) speaks OpenAI and Anthropic.
        .target(name: "ModelKit", dependencies: ["LLMOSDriverSDK", "LLMOSJSON"], path: "Plugins/ModelKit", exclude: ["README.md"]),
        .target(name: "OpenAIDriver", dependencies: ["ModelKit", "LLMOSDriverSDK", "LLMOSJSON"], path: "Plugins/openai"),
        .target(name: "AnthropicDriver", dependencies: ["ModelKit", "LLMOSDriverSDK", "LLMOSJSON"], path: "Plugins/anthropic"),
        // The local model: a supervised llama-server (started with CLLMOSSpawn), spoken to with ModelKit.
        // Where scripts/setup-model puts the local model: shared by the driver, the shell and the bench.
        .target(name: "LLMOSModelCache"),
        .target(name: "LocalDriver", dependencies: ["ModelKit", "LLMOSDriverSDK", "LLMOSJSON", "CLLMOSSpawn", "LLMOSModelCache"], path: "Plugins/local"),
        // Scripted model turns, for tests and demos.
        .target(name: "ScriptedDriver", dependencies: ["LLMOSDriverSDK", "LLMOSJSON"], path: "Plugins/scripted"),
        // The clock: now, time zones, date arithmetic (Foundation's TimeZone and Calendar).
        .target(name: "ClockDriver", dependencies: ["LLMOSDriverSDK"], path: "Plugins/clock", exclude: ["README.md"]),
        // Peripherals: files and notes, all through host system calls.
        .target(name: "FSDriver", dependencies: ["LLMOSDriverSDK"], path: "Plugins/fs", exclude: ["README.md"]),
        .target(name: "NotesDriver", dependencies: ["LLMOSDriverSDK"], path: "Plugins/notes", exclude: ["README.md"]),
        .target(name: "CalendarDriver", dependencies: ["LLMOSDriverSDK"], path: "Plugins/calendar", exclude: ["README.md"]),
        // Peripherals (issue 8): http in C over net.fetch.
        .target(name: "HTTPDriver", dependencies: ["CLLMOS"], path: "Plugins/http", exclude: ["README.md"], publicHeadersPath: "."),
        // shell and python (C, isolation: process) share Plugins/shell/run_program.h.
        .target(name: "ShellDriver", dependencies: ["CLLMOS"], path: "Plugins/shell", exclude: ["README.md"], publicHeadersPath: "."),
        .target(name: "PythonDriver", dependencies: ["CLLMOS"], path: "Plugins/python", exclude: ["README.md"], publicHeadersPath: "."),
        .target(name: "WebDriver", dependencies: ["LLMOSDriverSDK", "LLMOSJSON"], path: "Plugins/web", exclude: ["README.md"]),
        .target(name: "MailDriver", dependencies: ["LLMOSDriverSDK", "LLMOSJSON"], path: "Plugins/mail", exclude: ["README.md"]),
        // Storage (issue 7). StorageKit (static, linked into each driver): the contract's inputs,
        // Float32 vectors with SIMD cosine, the IVF index, rank fusion.
        .target(name: "StorageKit", dependencies: ["LLMOSDriverSDK", "LLMOSJSON", "LLMOSDigest"], path: "Plugins/StorageKit", exclude: ["README.md"],
                swiftSettings: [.unsafeFlags(["-O"])]),
        // The sqlite driver, on the system SQLite (CSQLite), never the kernel.
        // Optimised even in debug builds: its vector scan is a SIMD loop that -Onone makes ~20x slower.
        .target(name: "SQLiteStorageDriver", dependencies: ["StorageKit", "LLMOSDriverSDK", "LLMOSJSON", "LLMOSDigest", "CSQLite"], path: "Plugins/storage-sqlite", exclude: ["README.md"],
                swiftSettings: [.unsafeFlags(["-O"])]),
        // The same contract on PostgreSQL (tsvector + GIN; vectors scanned in the driver: Debian 12 has no pgvector).
        .target(name: "PostgresStorageDriver", dependencies: ["StorageKit", "LLMOSDriverSDK", "LLMOSJSON", "LLMOSDigest", "CLibPQ"], path: "Plugins/storage-postgres", exclude: ["README.md"],
                swiftSettings: [.unsafeFlags(["-O"])]),
        // Memory (issue 7): context managers. MemoryKit (static, linked into each) keeps the
        // rules every one shares: token estimates, tool calls kept with their results.
        .target(name: "MemoryKit", dependencies: ["LLMOSDriverSDK", "LLMOSJSON", "LLMOSContext"], path: "Plugins/MemoryKit", exclude: ["README.md"]),
        .target(name: "WindowMemoryDriver", dependencies: ["MemoryKit", "LLMOSDriverSDK", "LLMOSJSON"], path: "Plugins/memory-window", exclude: ["README.md"]),
        .target(name: "CompactMemoryDriver", dependencies: ["MemoryKit", "LLMOSDriverSDK", "LLMOSJSON"], path: "Plugins/memory-compact", exclude: ["README.md"]),
        .target(name: "PagedMemoryDriver", dependencies: ["MemoryKit", "LLMOSDriverSDK", "LLMOSJSON"], path: "Plugins/memory-paged", exclude: ["README.md"]),
        // MCP servers as drivers (issue 9): their tools through the capability layer like any driver's.
        // The server is started with CLLMOSSpawn, in the sandbox the kernel plans from the driver's grants.
        .target(name: "MCPDriver", dependencies: ["LLMOSDriverSDK", "LLMOSJSON", "CLLMOSSpawn"], path: "Plugins/mcp", exclude: ["README.md"]),
        // Ingest (issue 7): files to chunks (structure-following, with overlap) for `llmos ingest`.
        .target(name: "LLMOSIngest", dependencies: ["LLMOSKernel", "LLMOSJSON", "LLMOSDigest"]),
        // Benchmarks (make bench).
        .executableTarget(
            name: "llmos-model-bench",
            dependencies: ["LLMOSKernel", "LLMOSJSON", "LLMOSNet", "LLMOSModelCache"],
            path: "Benchmarks/llmos-model-bench"
        ),
        .executableTarget(
            name: "llmos-bench",
            dependencies: ["LLMOSKernel", "LLMOSJSON", "CLLMOS", "LLMOSNet", "CFFI", "LLMOSIngest"],
            path: "Benchmarks/llmos-bench"
        ),
        // Tests never link a driver target: they dlopen the built libraries, like the host.
        .testTarget(name: "LLMOSJSONTests", dependencies: ["LLMOSJSON"]),
        .testTarget(name: "LLMOSKernelTests", dependencies: ["LLMOSKernel", "LLMOSJSON", "LLMOSDigest", "LLMOSContext", "LLMOSIngest", "CLLMOS", "LLMOSNet", "LLMOSModelCache"]),
        .testTarget(name: "LLMOSCommandTests", dependencies: ["LLMOSJSON", "LLMOSModelCache"]),
    ],
    swiftLanguageModes: [.v6]
)
