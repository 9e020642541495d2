// swift-tools-version:6.0
// The {{name}} driver for llmos, in Swift. Build: `swift build`.
import PackageDescription

let package = Package(
    name: "{{name}}",
    products: [
        // lib{{name}}.so, loaded by the llmos kernel with dlopen.
        .library(name: "{{name}}", type: .dynamic, targets: ["{{Name}}Driver"]),
    ],
    dependencies: [
        // The llmos checkout, for its Swift driver SDK. Build with the same
        // Swift toolchain as llmos itself: Swift has no stable ABI on Linux.
        .package(name: "llmos", path: "{{sdk_package_path}}"),
    ],
    targets: [
        .target(
            name: "{{Name}}Driver",
            dependencies: [.product(name: "LLMOSDriverSDK", package: "llmos")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
