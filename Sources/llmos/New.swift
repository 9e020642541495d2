import ArgumentParser
import Foundation
import LLMOSKernel

struct New: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start something new from a template.",
        subcommands: [Driver.self])

    struct Driver: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a driver scaffold that builds and loads as it is.",
            discussion: """
            C:     llmos new driver weather --lang c      then: cd weather && make && llmos drivers check weather.yaml
            Swift: llmos new driver weather --lang swift  then: cd weather && swift build && llmos drivers check weather.yaml
            The scaffold has one tool, hello; rename it and add yours in the source and the manifest.
            """)

        enum Language: String, ExpressibleByArgument, CaseIterable { case c, swift }

        @Argument(help: "The driver's name: lowercase letters, digits and _, starting with a letter.") var name: String
        @Option(help: "The language: c (needs only a C compiler) or swift (same toolchain as the host).") var lang: Language = .c
        @Option(name: .shortAndLong, help: "Where to create it (default: ./NAME).") var output: String?

        func validate() throws {
            guard name.range(of: "^[a-z][a-z0-9_]{0,63}$", options: .regularExpression) != nil else {
                throw ValidationError("\"\(name)\" is not a valid driver name: use lowercase letters, digits and _, starting with a letter (for example weather or my_tools)")
            }
        }

        func run() throws {
            try reportingErrors {
                guard let sdk = SDKLocator.sdkDirectory() else {
                    throw CommandFailure(message: "cannot find the llmos SDK (sdk/include/llmos/llmos.h) near \(FileManager.default.currentDirectoryPath) or the llmos executable; set LLMOS_SDK_DIR to the sdk folder of an llmos checkout")
                }
                let destination = output ?? name
                let fm = FileManager.default
                guard !fm.fileExists(atPath: destination) else {
                    throw CommandFailure(message: "\(destination) already exists; choose another name or --output DIR")
                }
                let template = sdk + "/templates/" + lang.rawValue
                let upper = name.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
                let replacements = ["{{name}}": name, "{{Name}}": upper, "{{sdk_package_path}}": (sdk as NSString).deletingLastPathComponent]
                try Scaffold.copy(template: template, to: destination, replacements: replacements)
                if lang == .c {
                    try fm.createDirectory(atPath: destination + "/include/llmos", withIntermediateDirectories: true)
                    for header in ["llmos.h", "llmos_json.h"] where fm.fileExists(atPath: sdk + "/include/llmos/" + header) {
                        try fm.copyItem(atPath: sdk + "/include/llmos/" + header, toPath: destination + "/include/llmos/" + header)
                    }
                }
                let build = lang == .c ? "make" : "swift build"
                print("""
                created \(destination)/ (a \(lang == .c ? "C" : "Swift") driver named \(name))
                next:
                  cd \(destination) && \(build)
                  llmos drivers check \(name).yaml
                  llmos drivers install \(name).yaml
                """)
            }
        }
    }
}

enum Scaffold {
    /// Copies a template folder, replacing placeholders in file contents and in
    /// path components, and naming `manifest.yaml` after the driver.
    static func copy(template: String, to destination: String, replacements: [String: String]) throws {
        let fm = FileManager.default
        guard let enumerator = fm.enumerator(atPath: template) else {
            throw CommandFailure(message: "template folder \(template) is missing")
        }
        try fm.createDirectory(atPath: destination, withIntermediateDirectories: true)
        func substitute(_ text: String) -> String {
            replacements.reduce(text) { $0.replacingOccurrences(of: $1.key, with: $1.value) }
        }
        while let relative = enumerator.nextObject() as? String {
            let source = template + "/" + relative
            var target = substitute(relative)
            if target == "manifest.yaml" { target = "\(replacements["{{name}}"]!).yaml" }
            if target == "driver.c" { target = "\(replacements["{{name}}"]!).c" }
            let path = destination + "/" + target
            var isDirectory: ObjCBool = false
            _ = fm.fileExists(atPath: source, isDirectory: &isDirectory)
            if isDirectory.boolValue {
                try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
            } else {
                let text = try String(contentsOfFile: source, encoding: .utf8)
                try substitute(text).write(toFile: path, atomically: true, encoding: .utf8)
            }
        }
    }
}

/// Finds the SDK (headers, schemas, templates) of the llmos this executable belongs to.
enum SDKLocator {
    static func sdkDirectory() -> String? {
        let fm = FileManager.default
        func isSDK(_ dir: String) -> Bool { fm.fileExists(atPath: dir + "/include/llmos/llmos.h") }
        if let env = ProcessInfo.processInfo.environment["LLMOS_SDK_DIR"], isSDK(env) { return env }
        var starts = [fm.currentDirectoryPath]
        if let exe = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe") { starts.append((exe as NSString).deletingLastPathComponent) }
        for start in starts {
            var dir = start
            while dir != "/" && !dir.isEmpty {
                if isSDK(dir + "/sdk") { return dir + "/sdk" }
                dir = (dir as NSString).deletingLastPathComponent
            }
        }
        for system in ["/usr/local/share/llmos/sdk", "/usr/share/llmos/sdk"] where isSDK(system) { return system }
        return nil
    }
}
