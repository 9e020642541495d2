import Foundation

extension SandboxPlan {
    /// The files an isolated driver may execute that an `exec` pattern with a glob in its
    /// last component names (`/usr/bin/python3*`, granted by manifest or policy).
    ///
    /// Landlock holds files and trees, not globs, so `trees` leaves such patterns out;
    /// without this an interpreter grant could never become a sandbox rule, and the
    /// driver could not start the program at all. The files that match *now*, in that
    /// one directory, are resolved (symlinks followed: Landlock rules bind to the file
    /// itself) and each is put to the broker exactly as `exec.authorize` would put it —
    /// only those the manifest and the policy both allow become exact-file rules. A file
    /// created later is not covered: deny by default.
    static func execFiles(requested: CapabilityRequests, broker: CapabilityBroker, driver: String) -> [String] {
        let context = broker.context
        var patterns: [String] = []
        if case .patterns(let raw)? = requested[CapabilityKind.exec.rawValue] {
            patterns += raw.compactMap { if case .success(let p) = PolicyParser.expand($0, kind: .exec, context: context) { return p }; return nil }
        }
        patterns += broker.policy.rules.filter {
            ($0.action == .allow || $0.action == .audit) && $0.kind == .exec && $0.tool == nil
                && ($0.driver.map { Glob.matches($0, driver) } ?? true)
        }.map(\.pattern)

        var files: [String] = []
        for pattern in patterns where root(of: pattern) == nil {
            let directory = literalPrefix(of: pattern)
            // Only a glob in the last component: deeper globs would mean walking trees.
            guard directory != "/", !hasGlob(directory), !pattern.dropFirst(directory.count + 1).contains("/") else { continue }
            for name in FilePath.contents(of: directory).prefix(4096) {
                guard let resolved = FilePath.resolved(directory + "/" + name), FilePath.isRegularFile(resolved),
                      access(resolved, X_OK) == 0, !files.contains(resolved) else { continue }
                let request = AccessRequest(kind: .exec, resource: resolved, driver: driver)
                if broker.evaluate(request, requested: requested).verdict == .allow { files.append(resolved) }
                if files.count >= 256 { return files }
            }
        }
        return files
    }
}
