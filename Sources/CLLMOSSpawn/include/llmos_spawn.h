// Starting a supervised child process from a driver: llama-server for the local
// driver, an MCP server for the mcp driver. One place for the child-side rules.
//
// Why C: between fork and exec only async-signal-safe functions may run in a
// multithreaded process, and the child must set PR_SET_PDEATHSIG (which
// posix_spawn cannot) so that it dies with the host, even on SIGKILL.
#ifndef LLMOS_SPAWN_H
#define LLMOS_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

#include "llmos_sandbox.h"

#ifdef __cplusplus
extern "C" {
#endif

/// What to start. Size-prefixed: set `size` to sizeof(llmos_spawn_request), so
/// fields added later read as zero for older callers. Nothing in it is kept or
/// freed by llmos_spawn; it need only live for the call.
typedef struct llmos_spawn_request {
    size_t size;
    /// The program, executed exactly (no PATH search): the canonical path the
    /// kernel's exec.authorize checked.
    const char *path;
    /// NULL-terminated, argv[0] included (it may name the program as configured,
    /// so that a venv's python symlink still finds its venv).
    char *const *argv;
    /// NULL-terminated; NULL means the host's own environment.
    char *const *envp;
    /// The child's working directory; NULL or "" keeps the host's.
    const char *cwd;
    /// The child's descriptors 0, 1 and 2 (they may be the same); -1 is /dev/null.
    /// The caller keeps ownership of these and closes its copies afterwards.
    int stdin_fd, stdout_fd, stderr_fd;
    /// The sandbox to apply in the child just before exec; NULL for none.
    const sandbox_spec *sandbox;
} llmos_spawn_request;

/// Forks and executes the request. The child gets SIGKILL when the *thread* that
/// called this exits (PR_SET_PDEATHSIG: call it from a thread that lives as long
/// as the child), exits at once if the host died before that was set, starts its
/// own process group, has every signal unblocked and SIGPIPE at its default,
/// inherits no descriptor but 0, 1 and 2, and is sandboxed if asked.
///
/// Returns the child's pid, or -errno when the fork, the descriptors, chdir, the
/// sandbox or the exec failed; then `error` (when not NULL) says which, in words,
/// and the child has been reaped. The child's failure comes back through a
/// close-on-exec pipe, so ENOENT of the program is reported here rather than as
/// an exit status. Thread-safe; blocks only until the child has exec'd.
pid_t llmos_spawn(const llmos_spawn_request *request, char *error, size_t error_cap);

/// llmos_spawn with three fresh channels: the child's stdin is our end
/// `*to_child` of a socket pair (so writes can say MSG_NOSIGNAL: a dead child is
/// EPIPE, never SIGPIPE), its stdout is `*from_child`, its stderr `*errors` (pipes).
/// Our ends are close-on-exec and the caller's to close. The request's three fds
/// are ignored. On failure nothing is left open.
pid_t llmos_spawn_piped(const llmos_spawn_request *request, int *to_child, int *from_child, int *errors,
                        char *error, size_t error_cap);

#ifdef __cplusplus
}
#endif

#endif
