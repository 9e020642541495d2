// The zero-code (libffi) benchmark: one C function, `double llmos_calc_add(double, double)`
// from libllmos_calc.so, called four ways side by side in one run —
//   1. directly, through a C function pointer;
//   2. through libffi alone (ffi_call on a cif prepared once);
//   3. through the kernel, as a tool of an ffi manifest (no driver code at all);
//   4. through the kernel, as calc.add, the hand-written C driver of the same function.
// Both kernel paths validate the same input schema and the same output schema.
// Goal (issue 8): the libffi path costs at most 200 ns p50 more than the hand-written driver.
//
// `llmos-bench --ffi` runs only this; a full run also writes its section of BENCHMARKS.md.
import CFFI
import Foundation
import Glibc
import LLMOSKernel

struct FFIBenchmark {
    var rows: [Row] = []
    var overheadVsDriver = 0.0
    var libmPow: (p50: Double, p99: Double) = (0, 0)

    /// The ffi manifest of llmos_calc_add, written next to nothing: the library is named by path.
    static func manifest(library: String) -> String {
        """
        manifest_version: 1
        name: calcffi
        version: 1.0.0
        class: tool
        abi: {major: 1}
        library: {path: \(library)}
        threading: concurrent
        limits: {timeout_ms: 1000, max_output_bytes: 4096}
        tools:
          - name: add
            description: a + b, by llmos_calc_add through libffi
            ffi: {symbol: llmos_calc_add, returns: double, args: [{name: a, type: double}, {name: b, type: double}]}
            output_schema: {type: object, properties: {result: {type: number}}, required: [result]}
        """
    }

    static func run(buildDir: String, repo: String) -> FFIBenchmark {
        var bench = FFIBenchmark()
        let library = buildDir + "/libllmos_calc.so"
        guard let handle = dlopen(library, RTLD_NOW | RTLD_LOCAL), let symbol = dlsym(handle, "llmos_calc_add") else {
            fatalError("\(library) has no llmos_calc_add (run `swift build -c release` first)")
        }
        typealias Add = @convention(c) (Double, Double) -> Double
        let add = unsafeBitCast(symbol, to: Add.self)

        // 1. Direct.
        var sink = 0.0
        let direct = measure(batch: 100_000) {
            var x = 0.0
            for i in 0..<100_000 { x += add(Double(i), 2) }
            sink += x
        }
        bench.rows.append(Row(name: "direct C call: llmos_calc_add(a, b) through a function pointer", p50: direct.p50, p99: direct.p99, note: "baseline"))

        // 2. libffi alone: the cif prepared once, ffi_call per call.
        let types = UnsafeMutablePointer<UnsafeMutablePointer<ffi_type>?>.allocate(capacity: 2)
        types[0] = llmos_ffi_type_double()
        types[1] = llmos_ffi_type_double()
        let cif = UnsafeMutablePointer<ffi_cif>.allocate(capacity: 1)
        cif.initialize(to: ffi_cif())
        guard llmos_ffi_prep(cif, 2, llmos_ffi_type_double(), types) == llmos_ffi_ok() else { fatalError("ffi_prep_cif failed") }
        var a = 1.0, b = 2.0, result = 0.0
        let ffiOnly = withUnsafeMutablePointer(to: &a) { pa in
            withUnsafeMutablePointer(to: &b) { pb in
                withUnsafeMutablePointer(to: &result) { pr in
                    var values: [UnsafeMutableRawPointer?] = [UnsafeMutableRawPointer(pa), UnsafeMutableRawPointer(pb)]
                    return values.withUnsafeMutableBufferPointer { v in
                        measure(batch: 100_000) {
                            for i in 0..<100_000 {
                                pa.pointee = Double(i)
                                llmos_ffi_call(cif, symbol, pr, v.baseAddress)
                                sink += pr.pointee
                            }
                        }
                    }
                }
            }
        }
        bench.rows.append(Row(name: "libffi alone: ffi_call(cif, llmos_calc_add, ...), cif prepared once", p50: ffiOnly.p50, p99: ffiOnly.p99, note: String(format: "+%.1f ns over direct", ffiOnly.p50 - direct.p50)))

        // 3 and 4. Through the kernel: the ffi manifest, and the hand-written C driver.
        let dir = NSTemporaryDirectory() + "llmos-bench-ffi-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try! manifest(library: library).write(toFile: dir + "/calcffi.yaml", atomically: true, encoding: .utf8)
        let kernel = Kernel(configuration: KernelConfiguration(libraryDirectories: [buildDir], log: MemoryLogSink()))
        try! kernel.load(manifestAt: dir + "/calcffi.yaml")
        try! kernel.load(manifestAt: repo + "/manifests/calc.yaml")
        try! kernel.load(manifestAt: repo + "/manifests/libm.yaml")
        try? FileManager.default.removeItem(atPath: dir)
        let input = #"{"a":1,"b":2}"#
        precondition(try! kernel.call("calcffi.add", input: input).output == #"{"result":3.0}"#)
        let viaFFI = measure {
            for _ in 0..<1000 { blackHole(try! kernel.call("calcffi.add", input: input)) }
        }
        let viaDriver = measure {
            for _ in 0..<1000 { blackHole(try! kernel.call("calc.add", input: input)) }
        }
        bench.overheadVsDriver = viaFFI.p50 - viaDriver.p50
        bench.rows.append(Row(name: "kernel.call(\"calcffi.add\", {\"a\":1,\"b\":2}): the zero-code ffi manifest", p50: viaFFI.p50, p99: viaFFI.p99, note: "mediated; no driver code"))
        bench.rows.append(Row(name: "kernel.call(\"calc.add\", {\"a\":1,\"b\":2}): the hand-written C driver (Plugins/calc)", p50: viaDriver.p50, p99: viaDriver.p99, note: "mediated; same schemas"))
        let goal = bench.overheadVsDriver <= 0 ? "goal ≤ 200 ns: met (the ffi path is the faster)"
            : bench.overheadVsDriver <= 200 ? "goal ≤ 200 ns: met" : "goal ≤ 200 ns: NOT met"
        bench.rows.append(Row(name: "overhead of the libffi path (ffi manifest − hand-written driver)", p50: bench.overheadVsDriver, p99: .nan, note: goal))
        bench.rows.append(Row(name: "overhead of the libffi path over a direct call (ffi manifest − direct)", p50: viaFFI.p50 - direct.p50, p99: .nan, note: "the whole mediated call"))
        let powInput = #"{"x":2,"y":10}"#
        bench.libmPow = measure {
            for _ in 0..<1000 { blackHole(try! kernel.call("libm.pow", input: powInput)) }
        }
        bench.rows.append(Row(name: "kernel.call(\"libm.pow\", {\"x\":2,\"y\":10}): manifests/libm.yaml over the system's libm.so.6", p50: bench.libmPow.p50, p99: bench.libmPow.p99, note: "no output schema"))
        blackHole(sink)
        return bench
    }

    var markdown: String {
        var text = "| one call of `double llmos_calc_add(double, double)` | p50 | p99 | |\n|---|---:|---:|---|\n"
        for row in rows {
            text += "| \(row.name) | \(format(row.p50)) | \(row.p99.isNaN ? "—" : format(row.p99)) | \(row.note) |\n"
        }
        text += "\n- Both kernel rows do the same work around the call: lookup, input parse and schema check, the tool.call gate, dispatch, output parse and output-schema check. The ffi row's \"driver\" is the kernel's own: it parses the input again, range-checks each argument, calls through libffi and writes the result.\n"
        return text
    }

    /// `--ffi`: print this section and stop. Otherwise run it, print it, and write its
    /// section into the markdown target (main.swift writes the rest of the file after).
    static func hook(arguments: [String], buildDir: String, repo: String, markdownTarget: String?) {
        let only = arguments.contains("--ffi")
        if !only && (arguments.contains("--isolation") || arguments.contains("--calls")) { return }
        let bench = run(buildDir: buildDir, repo: repo)
        print(bench.markdown)
        if let target = markdownTarget {
            writeBenchmarkSection("ffi", heading: "Zero-code drivers: a C function through libffi, next to a hand-written driver and a direct call",
                                  markdown: bench.markdown, into: target, namingMachine: false)
        }
        if only { exit(0) }
    }
}
