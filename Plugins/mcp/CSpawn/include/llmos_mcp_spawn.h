// Starting an MCP server as a supervised child process (the mcp driver, stdio transport).
//
// Why C: between fork and exec only async-signal-safe functions may run in a
// multithreaded process, and the child must set PR_SET_PDEATHSIG (which posix_spawn
// cannot) so that it dies with the host, even on SIGKILL.
#ifndef LLMOS_MCP_SPAWN_H
#define LLMOS_MCP_SPAWN_H

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Forks and executes `path` (the canonical path the kernel's exec.authorize checked)
/// with `argv` (NULL-terminated; argv[0] may name the program as configured, so a
/// venv's python symlink still finds its venv) and exactly `envp`, in `cwd`. The child
/// gets SIGKILL when the *thread* that called this exits (PR_SET_PDEATHSIG: call it
/// from a thread that lives as long as the child), starts its own process group, and
/// inherits only three descriptors: its stdin (`*to_child`, our end of a socket pair,
/// so writes can use MSG_NOSIGNAL), its stdout
/// (`*from_child`) and its stderr (`*errors`), all close-on-exec on our side.
///
/// Returns the pid, or -errno when a pipe, the fork, chdir or the exec failed (the
/// child's errno comes back through a close-on-exec pipe).
pid_t llmos_mcp_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
                      int *to_child, int *from_child, int *errors);

#ifdef __cplusplus
}
#endif

#endif
