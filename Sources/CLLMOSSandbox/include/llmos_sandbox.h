#ifndef LLMOS_SANDBOX_H
#define LLMOS_SANDBOX_H
/* The operating-system sandbox llmos builds from a driver's grants: Landlock
 * (files, TCP ports, signal and abstract-socket scopes), seccomp, rlimits and a
 * network namespace. Two users: the isolated-driver helper (llmos-driver-host)
 * applies it to itself before it maps a driver, and the mcp driver applies it in
 * the child between fork and exec of an MCP server. Every function reports what
 * it did into `report` (a JSON object body) so the kernel can show it, and never
 * silently skips a layer.
 *
 * The plan arrives as text, a line per setting, "key<TAB>value" (the kernel's
 * SandboxPlan.specText): landlock, seccomp, allow_exec (0/1), net (none, ports,
 * any), port (repeatable), memory_mb, open_files, file_size_mb, processes, and a
 * path per line keyed by its access: read, write, exec, lib, device. */
#include <stddef.h>
#include <stdint.h>

#define SANDBOX_MAX_PATHS 256
#define SANDBOX_MAX_PORTS 64

enum sandbox_access { ACCESS_READ, ACCESS_WRITE, ACCESS_EXEC, ACCESS_LIB, ACCESS_DEVICE };

typedef struct sandbox_path {
    const char *path;
    enum sandbox_access access;
} sandbox_path;

typedef struct sandbox_spec {
    int landlock;                 /* apply Landlock */
    int seccomp;                  /* apply the seccomp filter */
    int allow_exec;               /* an exec capability is granted: fork and execve stay allowed */
    int net_mode;                 /* 0 none (own empty netns), 1 listed ports, 2 any port */
    sandbox_path paths[SANDBOX_MAX_PATHS];
    int path_count;
    uint16_t ports[SANDBOX_MAX_PORTS];
    int port_count;
    uint64_t memory_mb;           /* RLIMIT_AS; 0 = unlimited */
    uint64_t open_files;          /* RLIMIT_NOFILE */
    uint64_t file_size_mb;        /* RLIMIT_FSIZE */
    uint64_t processes;           /* RLIMIT_NPROC, when exec is allowed */
    int dropped;                  /* paths or ports past the capacity (left out: deny) */
} sandbox_spec;

/* Takes one "key<TAB>value" setting into `spec`. Returns 1 when `key` is a
 * sandbox setting, 0 when it is not (the caller's own key). Paths are not
 * copied: `value` must outlive `spec`. A path or port past the fixed capacity
 * is dropped and counted in `spec->dropped`. Not thread-safe on one spec. */
int sandbox_spec_set(sandbox_spec *spec, const char *key, const char *value);

/* Parses a whole plan (lines separated by '\n'), writing NULs into `text`,
 * which must outlive `spec`. Unknown keys are ignored. */
void sandbox_spec_parse(sandbox_spec *spec, char *text);

/* The Landlock ABI the running kernel has (0: none), and why when none. */
int sandbox_landlock_abi(const char **why);

/* Applies everything in the spec to the calling process, in order: network
 * namespace, rlimits, no_new_privs, Landlock, seccomp. Irreversible. Returns 0,
 * or -1 with `error` set when a requested layer could not be applied (the
 * caller must not go on to load or exec then). `report` receives `"key": value`
 * pairs describing each layer. Allocates nothing, so a child may call it
 * between fork and exec; it restricts only the calling thread's process, so call
 * it where that is the only thread (a fresh helper, a forked child). */
int sandbox_apply(const sandbox_spec *spec, char *report, size_t report_cap, char *error, size_t error_cap);

/* What this Linux supports, tried for real in this (throwaway) process, as a
 * JSON object. */
void sandbox_probe(char *out, size_t cap);

#endif
