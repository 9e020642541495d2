#if os(Linux)
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
#endif

/// Keeps the driver library mapped for the life of the process.
///
/// The Swift runtime caches metadata that lives inside each loaded image (for
/// instance the metadata of the imported C struct `llmos_host`, which is
/// uniqued by name across all images) and never forgets it. If the host
/// dlclose()s a Swift library and the image is unmapped, the next Swift driver
/// that needs that metadata gets a dangling pointer and the process crashes
/// (observed with Swift 6.3.1 on Linux). So the entry point marks its own
/// library RTLD_NODELETE: dlclose then succeeds but leaves it mapped, and
/// opening the same file again gives back the same image, with the
/// registration already made.
enum LibraryPin {
    /// Pins the image that contains `address`. Returns nil on success, or why
    /// it could not (the caller logs it; the driver works either way).
    static func pin(imageContaining address: UnsafeRawPointer) -> String? {
        #if os(Linux)
        // No dladdr (it needs _GNU_SOURCE): find the image in /proc/self/maps.
        guard let path = mappedFile(containing: UInt(bitPattern: address)) else {
            return "cannot find the driver library in /proc/self/maps"
        }
        guard dlopen(path, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE) != nil else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown error"
            return "cannot mark \(path) RTLD_NODELETE: \(reason)"
        }
        return nil  // the extra reference is kept on purpose
        #else
        return nil  // dyld never unloads images that contain Swift code
        #endif
    }

    #if os(Linux)
    /// The path of the file mapped at `address`, from lines like
    /// `7f1c2a000000-7f1c2a021000 r-xp 00000000 08:01 1234   /path/lib.so`.
    private static func mappedFile(containing address: UInt) -> String? {
        guard let maps = fopen("/proc/self/maps", "r") else { return nil }
        defer { fclose(maps) }
        var buffer: UnsafeMutablePointer<CChar>? = nil
        var capacity = 0
        defer { free(buffer) }
        while getline(&buffer, &capacity, maps) > 0, let buffer {
            let line = String(cString: buffer)
            var rest = Substring(line)
            var fields: [Substring] = []
            while fields.count < 5 {
                rest = rest.drop(while: { $0 == " " })
                guard let end = rest.firstIndex(of: " ") else { break }
                fields.append(rest[..<end])
                rest = rest[end...]
            }
            guard fields.count == 5 else { continue }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2,
                  let low = UInt(bounds[0], radix: 16), let high = UInt(bounds[1], radix: 16),
                  low <= address, address < high
            else { continue }
            let path = rest.drop(while: { $0 == " " }).drop(while: { $0 == "\t" })
            let trimmed = path.hasSuffix("\n") ? path.dropLast() : path
            return trimmed.hasPrefix("/") ? String(trimmed) : nil
        }
        return nil
    }
    #endif
}
