// See include/llmos_local_spawn.h.
#define _GNU_SOURCE
#include "llmos_local_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void close_from(int first)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)first, ~0U, 0) == 0)
        return;
#endif
    for (int fd = first; fd < 4096; fd++)
        close(fd);
}

pid_t llmos_local_spawn(const char *path, char *const argv[], int log_fd)
{
    int report[2];
    pid_t parent = getpid();
    char **env = environ;
    if (pipe2(report, O_CLOEXEC) != 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(report[0]);
        close(report[1]);
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
        sigprocmask(SIG_SETMASK, &all, NULL); /* the host may block signals in its threads */
        signal(SIGPIPE, SIG_DFL);
        int null_fd = open("/dev/null", O_RDWR);
        if (null_fd >= 0)
            dup2(null_fd, 0);
        int out = log_fd >= 0 ? log_fd : null_fd;
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        /* Keep the report pipe (close-on-exec) as the lowest descriptor above 2;
         * close everything else. */
        int keep = fcntl(report[1], F_DUPFD_CLOEXEC, 3);
        if (keep < 0)
            keep = report[1];
        for (int fd = 3; fd < keep; fd++)
            close(fd);
        close_from(keep + 1);
        execve(path, argv, env);
        e = errno;
        (void)!write(keep, &e, sizeof e);
        _exit(127);
    }
    close(report[1]);
    int child_errno = 0;
    ssize_t n;
    do {
        n = read(report[0], &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof child_errno) {
        /* exec failed: the child has exited (or is about to); reap it. */
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        return -child_errno;
    }
    return pid;
}
