/*
 * run_program.h — running one program for a driver: the shared core of the
 * shell and python drivers (header-only, static functions).
 *
 * The contract:
 * - run_program_authorize() asks the kernel (`exec.authorize`) for the canonical
 *   path of a program — PATH lookup over a fixed list, symlinks resolved — and
 *   whether an `exec` grant names it; the decision is the broker's and audited.
 *   The caller then runs exactly that path: no PATH search, no shell.
 * - run_program() forks, puts the child in a process group of its own, changes
 *   into the workspace, gives it a minimal environment (never the host's), its
 *   own pipes for stdin, stdout and stderr, an address-space limit when asked,
 *   and execve()s the path. The parent feeds stdin, reads both outputs up to a
 *   cap each (the rest is read and dropped, and the result says truncated), and
 *   kills the whole group with SIGKILL on the time limit or when the call is
 *   cancelled (host->is_cancelled). Everything it allocates is freed by
 *   run_result_free().
 * - Inside an isolated driver the sandbox enforces the same exec grant a second
 *   time (seccomp allows execve only with an exec grant; Landlock allows
 *   executing only the granted files).
 *
 * Threading: every function works on its arguments only; one call at a time per
 * result. Not async-signal-safe.
 */
#ifndef LLMOS_RUN_PROGRAM_H
#define LLMOS_RUN_PROGRAM_H

#define _GNU_SOURCE
#include <llmos/llmos.h>
#include <llmos/llmos_json.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#include <unistd.h>

#define RUN_MAX_PATH 4096

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static llmos_status run_fail(const llmos_host *host, llmos_call_ctx *ctx, llmos_status code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    host->set_error(ctx, code, msg);
    return code;
}

/* exec.authorize: fills `path` (canonical) and `workspace`. On a refusal the
 * kernel's message (naming the rule) becomes the call's error. */
static llmos_status run_program_authorize(const llmos_host *host, llmos_call_ctx *ctx, const char *program,
                                          char path[RUN_MAX_PATH], char workspace[RUN_MAX_PATH])
{
    llmos_json_writer req = LLMOS_JSON_WRITER_INIT;
    const char *response, *error;
    size_t response_len, error_len;
    char message[1024];
    llmos_json_write_begin_object(&req);
    llmos_json_write_key(&req, "program");
    llmos_json_write_string(&req, program);
    llmos_json_write_end_object(&req);
    if (req.failed) {
        llmos_json_writer_free(&req);
        return run_fail(host, ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    }
    llmos_status status = host->syscall(ctx, "exec.authorize", req.buf, req.len, &response, &response_len);
    llmos_json_writer_free(&req);
    if (status != LLMOS_OK) {
        if (llmos_json_find(response, response_len, "error", &error, &error_len)
            && llmos_json_get_string(error, error_len, "message", message, sizeof message) >= 0)
            host->set_error(ctx, status, message);
        else
            host->set_error(ctx, status, "exec.authorize failed and gave no message");
        return status;
    }
    long p = llmos_json_get_string(response, response_len, "path", path, RUN_MAX_PATH);
    long w = llmos_json_get_string(response, response_len, "workspace", workspace, RUN_MAX_PATH);
    if (p <= 0 || p >= RUN_MAX_PATH || w <= 0 || w >= RUN_MAX_PATH)
        return run_fail(host, ctx, LLMOS_ERR_INTERNAL, "exec.authorize answered without a usable path and workspace");
    return LLMOS_OK;
}

/* One output stream, captured up to `cap` bytes. */
typedef struct {
    char *buf;
    size_t len, cap;
    size_t dropped;   /* bytes read past the cap */
} run_capture;

typedef struct {
    run_capture out, err;
    int exited;       /* 1: exit_code is set */
    int exit_code;
    int signal;       /* the signal that ended it, 0 if none */
    int timed_out;    /* killed on the time limit */
    int cancelled;    /* killed because the call was cancelled */
    int exec_errno;   /* execve failed in the child with this errno (0: it ran) */
    int64_t duration_ms;
} run_result;

static void run_result_free(run_result *r)
{
    free(r->out.buf);
    free(r->err.buf);
    memset(r, 0, sizeof *r);
}

static int64_t run_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void run_capture_bytes(run_capture *c, const char *data, size_t n)
{
    size_t room = c->cap > c->len ? c->cap - c->len : 0;
    size_t take = n < room ? n : room;
    if (take) {
        memcpy(c->buf + c->len, data, take);
        c->len += take;
    }
    c->dropped += n - take;
}

/* Runs `path` with `argv` (NULL-terminated; argv[0] is what the program sees as
 * its name) and `envp` in `directory`. stdin_data may be NULL. memory_mb 0 keeps
 * the inherited limit. Returns LLMOS_OK with *result filled (also when the
 * program failed, timed out or was killed), or an error set on ctx. */
static llmos_status run_program(const llmos_host *host, llmos_call_ctx *ctx, const char *path, char *const argv[],
                                char *const envp[], const char *directory, const char *stdin_data, size_t stdin_len,
                                int64_t timeout_ms, size_t max_output, uint64_t memory_mb, run_result *result)
{
    int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, status_pipe[2] = {-1, -1};
    memset(result, 0, sizeof *result);
    result->out.cap = result->err.cap = max_output;
    result->out.buf = (char *)malloc(max_output ? max_output : 1);
    result->err.buf = (char *)malloc(max_output ? max_output : 1);
    if (!result->out.buf || !result->err.buf) {
        run_result_free(result);
        return run_fail(host, ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "out of memory for the output buffers");
    }
    if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC) || pipe2(status_pipe, O_CLOEXEC)) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            if (in_pipe[i] >= 0) close(in_pipe[i]);
            if (out_pipe[i] >= 0) close(out_pipe[i]);
            if (err_pipe[i] >= 0) close(err_pipe[i]);
            if (status_pipe[i] >= 0) close(status_pipe[i]);
        }
        run_result_free(result);
        return run_fail(host, ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "cannot create pipes: %s", strerror(e));
    }
    int64_t started = run_now_ms();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(in_pipe[0]); close(in_pipe[1]); close(out_pipe[0]); close(out_pipe[1]);
        close(err_pipe[0]); close(err_pipe[1]); close(status_pipe[0]); close(status_pipe[1]);
        run_result_free(result);
        return run_fail(host, ctx, e == EPERM ? LLMOS_ERR_PERMISSION_DENIED : LLMOS_ERR_RESOURCE_EXHAUSTED,
                        "cannot start %s: fork failed: %s%s", path, strerror(e),
                        e == EPERM ? " (the sandbox allows starting programs only with an exec grant)" : "");
    }
    if (pid == 0) {
        /* The child: only async-signal-safe calls until execve. */
        int e;
        setpgid(0, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int s = 1; s < 32; s++)
            if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
        if (dup2(in_pipe[0], 0) < 0 || dup2(out_pipe[1], 1) < 0 || dup2(err_pipe[1], 2) < 0) goto failed;
        /* Everything else is closed: the program inherits stdio and nothing of the host. */
        for (int fd = 3; fd < 1024; fd++)
            if (fd != status_pipe[1]) close(fd);
        if (chdir(directory) != 0) goto failed;
        if (memory_mb) {
            struct rlimit limit = { (rlim_t)(memory_mb << 20), (rlim_t)(memory_mb << 20) };
            if (setrlimit(RLIMIT_AS, &limit) != 0) goto failed;
        }
        execve(path, argv, envp);
    failed:
        e = errno;
        if (write(status_pipe[1], &e, sizeof e) < 0) { /* nothing more to do */ }
        _exit(127);
    }
    setpgid(pid, pid);   /* also here, so the group exists before any kill */
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    close(status_pipe[1]);

    /* Did execve succeed? The status pipe closes on exec (CLOEXEC) or carries errno. */
    int exec_errno = 0;
    ssize_t got;
    do got = read(status_pipe[0], &exec_errno, sizeof exec_errno); while (got < 0 && errno == EINTR);
    close(status_pipe[0]);
    if (got != (ssize_t)sizeof exec_errno) exec_errno = 0;

    fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
    size_t fed = 0;
    if (!stdin_data || stdin_len == 0 || exec_errno) {
        close(in_pipe[1]);
        in_pipe[1] = -1;
    }
    int open_outputs = 2;
    char chunk[16384];
    int64_t deadline = started + timeout_ms;
    int killed = 0, wstatus = 0, reaped = 0;
    while (open_outputs > 0 || in_pipe[1] >= 0) {
        struct pollfd fds[3];
        int n = 0, out_i = -1, err_i = -1, in_i = -1;
        if (out_pipe[0] >= 0) { out_i = n; fds[n].fd = out_pipe[0]; fds[n].events = POLLIN; n++; }
        if (err_pipe[0] >= 0) { err_i = n; fds[n].fd = err_pipe[0]; fds[n].events = POLLIN; n++; }
        if (in_pipe[1] >= 0) { in_i = n; fds[n].fd = in_pipe[1]; fds[n].events = POLLOUT; n++; }
        int64_t now = run_now_ms();
        if (!killed && host->is_cancelled(ctx)) {
            kill(-pid, SIGKILL);
            result->cancelled = killed = 1;
        } else if (!killed && now >= deadline) {
            kill(-pid, SIGKILL);
            result->timed_out = killed = 1;
        }
        int wait_ms = killed ? 100 : (int)(deadline - now < 50 ? deadline - now : 50);
        if (wait_ms < 0) wait_ms = 0;
        int ready = poll(fds, (nfds_t)n, wait_ms);
        if (ready < 0 && errno != EINTR) break;
        if (ready <= 0) {
            /* The program may have ended while a child of its own keeps the pipes open:
             * once it is reaped, the rest of its group goes too. */
            if (!reaped && waitpid(pid, &wstatus, WNOHANG) == pid) {
                reaped = 1;
                kill(-pid, SIGKILL);
            }
            if (killed && ready == 0 && reaped) break;   /* killed and nothing more is coming */
            continue;
        }
        for (int which = 0; which < 2; which++) {
            int i = which == 0 ? out_i : err_i;
            int *fd = which == 0 ? &out_pipe[0] : &err_pipe[0];
            if (i < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t r = read(*fd, chunk, sizeof chunk);
            if (r > 0) run_capture_bytes(which == 0 ? &result->out : &result->err, chunk, (size_t)r);
            else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(*fd);
                *fd = -1;
                open_outputs--;
            }
        }
        if (in_i >= 0 && (fds[in_i].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = (fds[in_i].revents & POLLOUT) ? write(in_pipe[1], stdin_data + fed, stdin_len - fed) : -1;
            if (w > 0) fed += (size_t)w;
            if (w < 0 && errno == EAGAIN) continue;
            if (w < 0 || fed >= stdin_len) {   /* done, or the program stopped reading */
                close(in_pipe[1]);
                in_pipe[1] = -1;
            }
        }
    }
    if (out_pipe[0] >= 0) close(out_pipe[0]);
    if (err_pipe[0] >= 0) close(err_pipe[0]);
    if (in_pipe[1] >= 0) close(in_pipe[1]);
    /* Both outputs are closed, but a program may close them and go on running: wait for
     * it under the same deadline and cancellation (a pidfd to sleep on where there is one). */
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    while (!reaped) {
        pid_t w = waitpid(pid, &wstatus, WNOHANG);
        if (w == pid) { reaped = 1; break; }
        if (w < 0 && errno != EINTR) break;
        if (!killed && host->is_cancelled(ctx)) {
            kill(-pid, SIGKILL);
            result->cancelled = killed = 1;
        } else if (!killed && run_now_ms() >= deadline) {
            kill(-pid, SIGKILL);
            result->timed_out = killed = 1;
        }
        if (pidfd >= 0) {
            struct pollfd exited = { pidfd, POLLIN, 0 };
            poll(&exited, 1, 50);
        } else {
            struct timespec pause = { 0, 1000000 };
            nanosleep(&pause, NULL);
        }
    }
    if (pidfd >= 0) close(pidfd);
    kill(-pid, SIGKILL);   /* anything it left behind in its group */
    result->duration_ms = run_now_ms() - started;
    result->exec_errno = exec_errno;
    if (WIFEXITED(wstatus)) {
        result->exited = 1;
        result->exit_code = WEXITSTATUS(wstatus);
    } else if (WIFSIGNALED(wstatus)) {
        result->signal = WTERMSIG(wstatus);
    }
    return LLMOS_OK;
}

static const char *run_signal_name(int signal)
{
    switch (signal) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    case SIGUSR1: return "SIGUSR1";
    case SIGSEGV: return "SIGSEGV";
    case SIGUSR2: return "SIGUSR2";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGTERM: return "SIGTERM";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    case SIGSYS: return "SIGSYS";
    default: return "SIG?";
    }
}

/* Sends the finished output (set_output copies it), or an out-of-memory error when the
 * writer failed, and frees the writer either way. */
static llmos_status run_send_output(const llmos_host *host, llmos_call_ctx *ctx, llmos_json_writer *w)
{
    llmos_status status = w->failed ? run_fail(host, ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "out of memory")
                                    : host->set_output(ctx, w->buf, w->len);
    llmos_json_writer_free(w);
    return status;
}

/* Writes the common result fields: exit_code, signal, stdout, stderr,
 * stdout_truncated, stderr_truncated, timed_out, duration_ms. */
static void run_write_result(llmos_json_writer *w, const run_result *r)
{
    llmos_json_write_key(w, "exit_code");
    if (r->exited) llmos_json_write_int64(w, r->exit_code); else llmos_json_write_null(w);
    llmos_json_write_key(w, "signal");
    if (r->signal) llmos_json_write_string(w, run_signal_name(r->signal)); else llmos_json_write_null(w);
    llmos_json_write_key(w, "stdout");
    llmos_json_write_string_n(w, r->out.buf, r->out.len);
    llmos_json_write_key(w, "stderr");
    llmos_json_write_string_n(w, r->err.buf, r->err.len);
    llmos_json_write_key(w, "stdout_truncated");
    llmos_json_write_bool(w, r->out.dropped > 0);
    llmos_json_write_key(w, "stderr_truncated");
    llmos_json_write_bool(w, r->err.dropped > 0);
    llmos_json_write_key(w, "timed_out");
    llmos_json_write_bool(w, r->timed_out);
    llmos_json_write_key(w, "duration_ms");
    llmos_json_write_int64(w, r->duration_ms);
}

#endif
