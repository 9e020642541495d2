// See include/llmos_mcp_spawn.h.
#define _GNU_SOURCE
#include "llmos_mcp_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void close_from(int first)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)first, ~0U, 0) == 0)
        return;
#endif
    for (int fd = first; fd < 4096; fd++)
        close(fd);
}

static void close_pair(int p[2])
{
    if (p[0] >= 0) close(p[0]);
    if (p[1] >= 0) close(p[1]);
}

pid_t llmos_mcp_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
                      int *to_child, int *from_child, int *errors)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, report[2] = {-1, -1};
    pid_t parent = getpid();
    /* stdin is a socket, so that our writes can say MSG_NOSIGNAL: a server that died
     * is an EPIPE for the call, never a SIGPIPE for the host. */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 ||
        pipe2(report, O_CLOEXEC) != 0) {
        int e = errno;
        close_pair(in); close_pair(out); close_pair(err); close_pair(report);
        return -e;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close_pair(in); close_pair(out); close_pair(err); close_pair(report);
        return -e;
    }
    if (pid == 0) {
        /* The child: async-signal-safe calls only. */
        int e;
        sigset_t all;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127); /* the host is already gone */
        setpgid(0, 0);
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        signal(SIGPIPE, SIG_DFL);
        /* dup2 clears close-on-exec on the copies 0, 1 and 2. */
        if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0) {
            e = errno;
            (void)!write(report[1], &e, sizeof e);
            _exit(127);
        }
        int keep = fcntl(report[1], F_DUPFD_CLOEXEC, 3);
        if (keep < 0)
            keep = report[1];
        for (int fd = 3; fd < keep; fd++)
            close(fd);
        close_from(keep + 1);
        if (cwd && cwd[0] && chdir(cwd) != 0) {
            e = errno;
            (void)!write(keep, &e, sizeof e);
            _exit(127);
        }
        execve(path, argv, envp);
        e = errno;
        (void)!write(keep, &e, sizeof e);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    close(report[1]);
    int child_errno = 0;
    ssize_t n;
    do {
        n = read(report[0], &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof child_errno) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        close(in[1]);
        close(out[0]);
        close(err[0]);
        return -child_errno;
    }
    *to_child = in[1];
    *from_child = out[0];
    *errors = err[0];
    return pid;
}
