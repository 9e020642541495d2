// See include/llmos_spawn.h.
#define _GNU_SOURCE
#include "llmos_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* What a child that could not exec sends back before it exits. */
typedef struct failure_report {
    int error;
    char message[480];
} failure_report;

static void close_from(int first)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)first, ~0U, 0) == 0)
        return;
#endif
    for (int fd = first; fd < 4096; fd++)
        close(fd);
}

static _Noreturn void fail_child(int report_fd, int error, const char *what, const char *detail)
{
    failure_report r;
    memset(&r, 0, sizeof r);
    r.error = error;
    snprintf(r.message, sizeof r.message, "%s: %s", what, detail ? detail : strerror(error));
    (void)!write(report_fd, &r, sizeof r);
    _exit(127);
}

/* The child, between fork and exec: async-signal-safe calls only (sandbox_apply allocates nothing). */
static _Noreturn void run_child(const llmos_spawn_request *rq, pid_t parent, int report_fd)
{
    sigset_t all;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127); /* the host is already gone */
    setpgid(0, 0);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL); /* the host may block signals in its threads */
    signal(SIGPIPE, SIG_DFL);

    /* Move the report pipe and the three sources above any target, then place them. */
    int keep = fcntl(report_fd, F_DUPFD_CLOEXEC, 10);
    if (keep < 0)
        _exit(127);
    int source[3] = {rq->stdin_fd, rq->stdout_fd, rq->stderr_fd};
    int null_fd = -1;
    for (int i = 0; i < 3; i++) {
        if (source[i] < 0) {
            if (null_fd < 0 && (null_fd = open("/dev/null", O_RDWR | O_CLOEXEC)) >= 0) {
                int high = fcntl(null_fd, F_DUPFD_CLOEXEC, 10);
                close(null_fd);
                null_fd = high;
            }
            source[i] = null_fd;
        } else {
            source[i] = fcntl(source[i], F_DUPFD_CLOEXEC, 10);
        }
        if (source[i] < 0)
            fail_child(keep, errno, "the child's standard descriptors", NULL);
    }
    for (int i = 0; i < 3; i++) /* dup2 clears close-on-exec on the copies 0, 1 and 2 */
        if (dup2(source[i], i) < 0)
            fail_child(keep, errno, "the child's standard descriptors", NULL);
    int low = fcntl(keep, F_DUPFD_CLOEXEC, 3);
    if (low >= 0 && low < keep) {
        close(keep);
        keep = low;
    }
    for (int fd = 3; fd < keep; fd++)
        close(fd);
    close_from(keep + 1);

    if (rq->cwd && rq->cwd[0] && chdir(rq->cwd) != 0)
        fail_child(keep, errno, "chdir", NULL);
    if (rq->sandbox) {
        char report[1024], problem[400];
        report[0] = problem[0] = 0;
        if (sandbox_apply(rq->sandbox, report, sizeof report, problem, sizeof problem) != 0)
            fail_child(keep, EPERM, "the sandbox could not be built", problem);
    }
    execve(rq->path, rq->argv, rq->envp ? rq->envp : environ);
    fail_child(keep, errno, "exec", NULL);
}

pid_t llmos_spawn(const llmos_spawn_request *request, char *error, size_t error_cap)
{
    llmos_spawn_request rq;
    memset(&rq, 0, sizeof rq);
    memcpy(&rq, request, request->size < sizeof rq ? request->size : sizeof rq);
    if (error && error_cap)
        error[0] = 0;
    int report[2];
    pid_t parent = getpid();
    if (pipe2(report, O_CLOEXEC) != 0) {
        int e = errno;
        if (error) snprintf(error, error_cap, "pipe: %s", strerror(e));
        return -e;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(report[0]);
        close(report[1]);
        if (error) snprintf(error, error_cap, "fork: %s", strerror(e));
        return -e;
    }
    if (pid == 0) {
        close(report[0]);
        run_child(&rq, parent, report[1]);
    }
    close(report[1]);
    failure_report r;
    memset(&r, 0, sizeof r);
    ssize_t n;
    do {
        n = read(report[0], &r, sizeof r);
    } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n > 0) {
        /* The child failed before or at exec and has exited: reap it. */
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        r.message[sizeof r.message - 1] = 0;
        if (error) snprintf(error, error_cap, "%s", n == (ssize_t)sizeof r ? r.message : "the child failed before exec");
        return -(r.error ? r.error : ECHILD);
    }
    return pid;
}

static void close_pair(int p[2])
{
    if (p[0] >= 0) close(p[0]);
    if (p[1] >= 0) close(p[1]);
}

pid_t llmos_spawn_piped(const llmos_spawn_request *request, int *to_child, int *from_child, int *errors,
                        char *error, size_t error_cap)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
        int e = errno;
        close_pair(in); close_pair(out); close_pair(err);
        if (error) snprintf(error, error_cap, "pipe: %s", strerror(e));
        return -e;
    }
    llmos_spawn_request rq;
    memset(&rq, 0, sizeof rq);
    memcpy(&rq, request, request->size < sizeof rq ? request->size : sizeof rq);
    rq.size = sizeof rq;
    rq.stdin_fd = in[0];
    rq.stdout_fd = out[1];
    rq.stderr_fd = err[1];
    pid_t pid = llmos_spawn(&rq, error, error_cap);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (pid < 0) {
        close(in[1]); close(out[0]); close(err[0]);
        return pid;
    }
    *to_child = in[1];
    *from_child = out[0];
    *errors = err[0];
    return pid;
}
