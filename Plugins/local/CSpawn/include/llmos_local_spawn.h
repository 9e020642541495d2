// Starting a supervised child process (llama-server) for the local driver.
//
// Why C: between fork and exec only async-signal-safe functions may run in a
// multithreaded process, and the child must set PR_SET_PDEATHSIG (which
// posix_spawn cannot) so that it dies with the host, even on SIGKILL.
#ifndef LLMOS_LOCAL_SPAWN_H
#define LLMOS_LOCAL_SPAWN_H

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Forks and executes `path` with `argv` (NULL-terminated, argv[0] included) and
/// the host's environment. The child: gets SIGKILL when the *thread* that called
/// this function exits (PR_SET_PDEATHSIG; so call it from a thread that lives as
/// long as the child, e.g. the one that then waits for it), exits at once if the
/// host died before that was set, starts its own process group, reads /dev/null,
/// writes stdout and stderr to `log_fd` (or /dev/null when it is < 0), and
/// inherits no other descriptor.
///
/// Returns the child's pid, or -errno when the fork or the exec failed (the exec's
/// errno is passed back through a close-on-exec pipe, so ENOENT or EACCES of the
/// program is reported here rather than as an exit status).
pid_t llmos_local_spawn(const char *path, char *const argv[], int log_fd);

#ifdef __cplusplus
}
#endif

#endif
