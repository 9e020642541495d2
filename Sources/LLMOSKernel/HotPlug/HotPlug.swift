import CLLMOSSystem
import Foundation
import Glibc
import Synchronization

/// Hot plug: watches driver directories with inotify and keeps the kernel in
/// step with them. A manifest (or its library) that appears is loaded, one that
/// changes is reloaded, one that disappears is unloaded — calls in flight on it
/// finish first (see `Kernel.unload`). Work happens on one background thread,
/// after the directory has been quiet for `settleMilliseconds`, so that a file
/// still being copied is not loaded half-written.
public final class HotPlug: @unchecked Sendable {
    public enum Event: Sendable, CustomStringConvertible {
        case loaded(name: String, manifest: String)
        case reloaded(name: String, manifest: String)
        case unloaded(name: String, manifest: String)
        case failed(manifest: String, error: LLMOSError)

        public var description: String {
            switch self {
            case .loaded(let n, let m): return "loaded \(n) from \(m)"
            case .reloaded(let n, let m): return "reloaded \(n) from \(m)"
            case .unloaded(let n, let m): return "unloaded \(n) (\(m) was removed)"
            case .failed(let m, let e): return "could not load \(m): \(e.message)"
            }
        }
    }

    private struct Managed { var name: String; var stamp: [Int64] }

    private let kernel: Kernel
    public let directories: [String]
    private let settleMilliseconds: Int32
    private let onEvent: @Sendable (Event) -> Void
    private let lock = PThreadMutex()
    private var managed: [String: Managed] = [:]
    /// Failed manifests and the stamp they failed at: retried only when something changes.
    private var failures: [String: [Int64]] = [:]
    private var inotifyFD: Int32 = -1
    private var watches: [Int32: String] = [:]
    private var thread: Thread?
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    /// `directories` in search-path order; drivers they hold that are already loaded are adopted.
    public init(kernel: Kernel, directories: [String], settleMilliseconds: Int = 100,
                onEvent: @escaping @Sendable (Event) -> Void = { _ in }) {
        self.kernel = kernel
        self.directories = directories
        self.settleMilliseconds = Int32(settleMilliseconds)
        self.onEvent = onEvent
        let loaded = Dictionary(kernel.loadedDrivers.map { ($0.manifestFile, $0.name) }, uniquingKeysWith: { a, _ in a })
        for directory in directories {
            for file in DriverSearchPath.manifests(in: directory) {
                if let name = loaded[file] { managed[file] = Managed(name: name, stamp: stamp(of: file)) }
            }
        }
    }

    deinit { stop() }

    /// Starts watching. Throws when inotify is unavailable.
    public func start() throws(LLMOSError) {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else {
            throw LLMOSError(.io, "hot plug: inotify_init1 failed: \(String(cString: strerror(errno)))")
        }
        inotifyFD = fd
        for directory in directories { addWatches(under: directory) }
        let thread = Thread { [weak self] in self?.run() }
        thread.name = "llmos-hotplug"
        self.thread = thread
        thread.start()
    }

    /// Stops watching; drivers stay loaded.
    public func stop() {
        guard inotifyFD >= 0, !stopping.exchange(true, ordering: .sequentiallyConsistent) else { return }
        if thread != nil { finished.wait() }
        close(inotifyFD)
        inotifyFD = -1
    }

    private func addWatches(under directory: String) {
        let mask = UInt32(IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)
        guard FilePath.isDirectory(directory) else { return }
        let wd = inotify_add_watch(inotifyFD, directory, mask)
        if wd >= 0 { watches[wd] = directory }
        // Installed drivers live one level down, in DIR/NAME/.
        for entry in FilePath.contents(of: directory) where !entry.hasPrefix(".") {
            let sub = FilePath.join(directory, entry)
            if FilePath.isDirectory(sub) && !watches.values.contains(sub) {
                let swd = inotify_add_watch(inotifyFD, sub, mask)
                if swd >= 0 { watches[swd] = sub }
            }
        }
    }

    private func run() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var pending = false
        while !stopping.load(ordering: .sequentiallyConsistent) {
            var pfd = pollfd(fd: inotifyFD, events: Int16(POLLIN), revents: 0)
            // Wake up at least every 200 ms to notice stop(); settle after events.
            let ready = poll(&pfd, 1, pending ? settleMilliseconds : 200)
            if ready > 0 {
                while read(inotifyFD, &buffer, buffer.count) > 0 { pending = true }
                continue
            }
            // A driver directory that did not exist yet (the first `drivers install`
            // creates the user's): start watching it once it appears.
            if !pending && directories.contains(where: { !watches.values.contains($0) && FilePath.isDirectory($0) }) {
                pending = true
            }
            if pending {
                pending = false
                for directory in directories { addWatches(under: directory) }
                rescan()
            }
        }
        finished.signal()
    }

    /// Compares the directories with what is loaded and acts on the difference.
    /// Called by the watcher; callable directly (for example after `drivers install`).
    public func rescan() {
        lock.withLock {
            var present: [String] = []
            for directory in directories { present.append(contentsOf: DriverSearchPath.manifests(in: directory)) }
            let presentSet = Set(present)
            for (file, entry) in managed where !presentSet.contains(file) {
                managed.removeValue(forKey: file)
                if (try? kernel.unload(entry.name)) != nil { onEvent(.unloaded(name: entry.name, manifest: file)) }
            }
            failures = failures.filter { presentSet.contains($0.key) }
            for file in present {
                let current = stamp(of: file)
                if let entry = managed[file] {
                    guard entry.stamp != current else { continue }
                    // Read the new manifest before touching the running driver: a file
                    // saved half-edited must not take a working driver offline.
                    let replacement: DriverManifest
                    do throws(LLMOSError) {
                        replacement = try ManifestParser.parse(file: file)
                        let loader = DriverLoader(kernel: kernel)
                        try loader.preflight(replacement)
                        _ = try loader.resolveLibrary(replacement)
                    } catch {
                        if failures[file] != current { onEvent(.failed(manifest: file, error: error)) }
                        failures[file] = current
                        continue
                    }
                    managed.removeValue(forKey: file)
                    do throws(LLMOSError) {
                        try kernel.unload(entry.name)
                        let info = try kernel.load(replacement)
                        managed[file] = Managed(name: info.name, stamp: current)
                        onEvent(.reloaded(name: info.name, manifest: file))
                    } catch {
                        failures[file] = current
                        onEvent(.failed(manifest: file, error: error))
                    }
                    continue
                }
                if failures[file] == current { continue }
                do throws(LLMOSError) {
                    let manifest = try ManifestParser.parse(file: file)
                    if kernel.driver(named: manifest.name) != nil { continue }   // shadowed: first match wins
                    let info = try kernel.load(manifest)
                    managed[file] = Managed(name: info.name, stamp: current)
                    failures.removeValue(forKey: file)
                    onEvent(.loaded(name: info.name, manifest: file))
                } catch {
                    failures[file] = current
                    onEvent(.failed(manifest: file, error: error))
                }
            }
        }
    }

    /// Where each manifest's library is, keyed by the manifest's own stamp, so that
    /// a rescan re-reads only manifests that changed.
    private var libraryOf: [String: (manifestStamp: Int64, library: String?)] = [:]


    /// Changes when the manifest or the library it names changes.
    private func stamp(of manifest: String) -> [Int64] {
        let manifestStamp = FilePath.modificationStamp(manifest) ?? 0
        let library: String?
        if let cached = libraryOf[manifest], cached.manifestStamp == manifestStamp, cached.library != nil {
            library = cached.library
        } else {
            // Not cached while unresolved: the library may be copied in after its manifest.
            library = (try? ManifestParser.parse(file: manifest)).flatMap { try? DriverLoader(kernel: kernel).resolveLibrary($0) }
            libraryOf[manifest] = (manifestStamp, library)
        }
        return [manifestStamp, library.flatMap(FilePath.modificationStamp) ?? 0]
    }
}
