#ifndef LLMOS_DRIVER_HOST_SANDBOX_H
#define LLMOS_DRIVER_HOST_SANDBOX_H
/* The sandbox the helper builds around itself before it loads a driver:
 * Landlock (files, TCP ports, signal and abstract-socket scopes), seccomp,
 * rlimits and a network namespace. Every function reports what it did into
 * `report` (a JSON object body) so the kernel can show it, and never silently
 * skips a layer. */
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
} sandbox_spec;

/* The Landlock ABI the running kernel has (0: none), and why when none. */
int sandbox_landlock_abi(const char **why);

/* Applies everything in the spec, in order: network namespace, rlimits,
 * no_new_privs, Landlock, seccomp. Returns 0, or -1 with `error` set when a
 * requested layer could not be applied (the caller refuses to load then).
 * `report` receives `"key": value` pairs describing each layer. */
int sandbox_apply(const sandbox_spec *spec, char *report, size_t report_cap, char *error, size_t error_cap);

/* What this Linux supports, tried for real in this (throwaway) process, as a
 * JSON object. */
void sandbox_probe(char *out, size_t cap);

#endif
