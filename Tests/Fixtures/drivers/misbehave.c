/*
 * misbehave — a purpose-built misbehaving driver for the process-isolation
 * tests (issue 4). It calls libc DIRECTLY and never host->syscall, so when an
 * open, connect, fork or execve is refused, it is the operating system's
 * sandbox (Landlock, seccomp, rlimits, namespaces) that refused, not this
 * driver's manners. Every tool reports what happened with set_output, as a
 * JSON object; a failed libc call is reported, not turned into an error:
 *
 *   {"ok": false, "step": "open", "errno": 13, "errno_name": "EACCES",
 *    "strerror": "Permission denied", ...}
 *
 * Tools (schemas in misbehave.yaml):
 *   ok {}                          {"ok": true, "pid", "ppid"}: a healthy call
 *   segfault {}                    writes through a NULL pointer (SIGSEGV)
 *   abort {}                       abort() (SIGABRT)
 *   spin {honour_cancel?}          busy loop forever; with honour_cancel, polls
 *                                  host->is_cancelled and returns CANCELLED
 *   allocate {mb_per_step, max_mb?}  malloc + memset chunks, never freed, until
 *                                  malloc returns NULL (or max_mb is reached)
 *   fork_bomb {max?}               fork() up to max times (default 10000); the
 *                                  children pause() forever. Only run isolated.
 *   write_file {path, text}        open(O_WRONLY|O_CREAT|O_TRUNC) + write
 *   read_file {path, max_bytes?}   open + read (default 4096 bytes)
 *   connect {host?, port}          TCP socket + connect (host default 127.0.0.1)
 *   exec {path, args?}             fork + execve(path, [path, args...]);
 *                                  the child's stdout+stderr are captured
 *   open_fds {}                    every open fd in 0..4095, with its
 *                                  readlink of /proc/self/fd/N
 *   leak_fds {count, source?, release?}  opens /dev/null (or pipes) count
 *                                  times without closing (EMFILE)
 *   env {}                         the whole environ as an object
 *   write_big {path, mb}           writes mb MiB (SIGXFSZ ignored, so an
 *                                  RLIMIT_FSIZE shows as EFBIG)
 *
 * threading: serialized (one call at a time: strerror and the process-wide
 * SIGXFSZ disposition are used without locks). Stateless apart from the
 * memory `allocate` leaks on purpose and the fds `leak_fds` leaks.
 */
#define _GNU_SOURCE
#include <llmos/llmos.h>
#include <llmos/llmos_json.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MIB ((size_t)1 << 20)

/* ---------------------------------------------------------------------------
 * Reporting
 * ------------------------------------------------------------------------- */

static const char *errno_name(int e)
{
    switch (e) {
    case 0: return "0";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case E2BIG: return "E2BIG";
    case ENOEXEC: return "ENOEXEC";
    case EBADF: return "EBADF";
    case ECHILD: return "ECHILD";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ETXTBSY: return "ETXTBSY";
    case EFBIG: return "EFBIG";
    case ENOSPC: return "ENOSPC";
    case ESPIPE: return "ESPIPE";
    case EROFS: return "EROFS";
    case EMLINK: return "EMLINK";
    case EPIPE: return "EPIPE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOSYS: return "ENOSYS";
    case ELOOP: return "ELOOP";
    case ENOTSOCK: return "ENOTSOCK";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENETDOWN: return "ENETDOWN";
    case ENETUNREACH: return "ENETUNREACH";
    case ECONNRESET: return "ECONNRESET";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case EALREADY: return "EALREADY";
    case EINPROGRESS: return "EINPROGRESS";
    case EDQUOT: return "EDQUOT";
    default: return "UNKNOWN";
    }
}

static const char *signal_name(int s)
{
    switch (s) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    case SIGSEGV: return "SIGSEGV";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGTERM: return "SIGTERM";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    case SIGSYS: return "SIGSYS";
    default: return "UNKNOWN";
    }
}

/* Writes "errno", "errno_name" and "strerror" members for `e`. */
static void write_errno(llmos_json_writer *w, int e)
{
    llmos_json_write_key(w, "errno");
    llmos_json_write_int64(w, e);
    llmos_json_write_key(w, "errno_name");
    llmos_json_write_string(w, errno_name(e));
    llmos_json_write_key(w, "strerror");
    llmos_json_write_string(w, strerror(e));
}

/* Writes "ok": false, "step" and the errno members: what failed, and why. */
static void write_failure(llmos_json_writer *w, const char *step, int e)
{
    llmos_json_write_key(w, "ok");
    llmos_json_write_bool(w, 0);
    llmos_json_write_key(w, "step");
    llmos_json_write_string(w, step);
    write_errno(w, e);
}

/* Ends the writer's top-level object, sets it as the output, frees it. */
static llmos_status finish(const llmos_host *host, llmos_call_ctx *ctx, llmos_json_writer *w)
{
    llmos_status status;
    llmos_json_write_end_object(w);
    if (w->failed) {
        llmos_json_writer_free(w);
        host->set_error(ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "misbehave: out of memory while writing the report");
        return LLMOS_ERR_RESOURCE_EXHAUSTED;
    }
    status = host->set_output(ctx, w->buf, w->len);
    llmos_json_writer_free(w);
    return status;
}

static llmos_status bad_input(const llmos_host *host, llmos_call_ctx *ctx, const char *what)
{
    host->set_error(ctx, LLMOS_ERR_INVALID_ARGUMENT, what);
    return LLMOS_ERR_INVALID_ARGUMENT;
}

/* The decoded string member `key` in a malloc'd, NUL-terminated buffer (the
 * length in *out_len), or NULL when absent or not a string. */
static char *get_string(const char *input, size_t len, const char *key, size_t *out_len)
{
    long n = llmos_json_get_string(input, len, key, NULL, 0);
    char *buf;
    if (n < 0)
        return NULL;
    buf = (char *)malloc((size_t)n + 1);
    if (!buf)
        return NULL;
    llmos_json_get_string(input, len, key, buf, (size_t)n + 1);
    if (out_len)
        *out_len = (size_t)n;
    return buf;
}

static int64_t get_int(const char *input, size_t len, const char *key, int64_t fallback)
{
    int64_t v;
    return llmos_json_get_int64(input, len, key, &v) ? v : fallback;
}

static int get_bool(const char *input, size_t len, const char *key, int fallback)
{
    int v;
    return llmos_json_get_bool(input, len, key, &v) ? v : fallback;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------------------
 * Crashes and hangs
 * ------------------------------------------------------------------------- */

static llmos_status do_ok(const llmos_host *host, llmos_call_ctx *ctx)
{
    llmos_json_writer w = LLMOS_JSON_WRITER_INIT;
    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "ok");
    llmos_json_write_bool(&w, 1);
    llmos_json_write_key(&w, "pid");
    llmos_json_write_int64(&w, (int64_t)getpid());
    llmos_json_write_key(&w, "ppid");
    llmos_json_write_int64(&w, (int64_t)getppid());
    return finish(host, ctx, &w);
}

/* The pointer itself is volatile: the compiler cannot prove it NULL, so it
 * emits a real store (no trap instruction, no "undefined, so removed"). */
static int *volatile null_pointer = NULL;

static llmos_status do_segfault(const llmos_host *host, llmos_call_ctx *ctx)
{
    *null_pointer = 42;
    host->set_error(ctx, LLMOS_ERR_INTERNAL, "misbehave: the write through NULL did not crash");
    return LLMOS_ERR_INTERNAL;
}

static llmos_status do_abort(void)
{
    abort();
}

static llmos_status do_spin(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len)
{
    volatile uint64_t iterations = 0;
    int honour = get_bool(input, len, "honour_cancel", 0);
    int64_t start = now_ms();

    int64_t max_ms = 0;
    llmos_json_get_int64(input, len, "max_ms", &max_ms);
    if (!honour && max_ms > 0) {
        /* Stubborn but bounded: ignores cancellation, sleeps until max_ms has passed
         * (for the in-process abandonment test, which must not burn a core for ever). */
        while (now_ms() - start < max_ms) usleep(1000);
        const char *done = "{\"ok\":true,\"stubborn\":true}";
        host->set_output(ctx, done, strlen(done));
        return LLMOS_OK;
    }
    if (!honour)
        for (;;)
            iterations++; /* never returns: only a signal ends this */
    for (;;) {
        for (int i = 0; i < 4096; i++)
            iterations++;
        if (host->is_cancelled(ctx)) {
            char msg[128];
            snprintf(msg, sizeof msg, "misbehave: spin cancelled after %lld ms (%llu iterations)",
                     (long long)(now_ms() - start), (unsigned long long)iterations);
            host->set_error(ctx, LLMOS_ERR_CANCELLED, msg);
            return LLMOS_ERR_CANCELLED;
        }
    }
}

/* ---------------------------------------------------------------------------
 * Resource exhaustion
 * ------------------------------------------------------------------------- */

/* Allocates and touches chunks until malloc fails, and never frees them. A
 * small parachute, taken first and freed before reporting, leaves the host's
 * set_output room to copy the report; the report itself is built on the
 * stack. */
static llmos_status do_allocate(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len)
{
    int64_t step_mb = get_int(input, len, "mb_per_step", 0);
    int64_t max_mb = get_int(input, len, "max_mb", 0); /* 0: no cap */
    int64_t got_mb = 0;
    int failed = 0, err = 0;
    void *parachute;
    char out[256];

    if (step_mb < 1)
        return bad_input(host, ctx, "'mb_per_step' must be a positive integer");
    parachute = malloc(256 * 1024);
    if (parachute)
        memset(parachute, 1, 256 * 1024);
    for (;;) {
        char *chunk;
        if (max_mb > 0 && got_mb + step_mb > max_mb)
            break;
        errno = 0;
        chunk = (char *)malloc((size_t)step_mb * MIB);
        if (!chunk) {
            if (get_bool(input, len, "careless", 0))
                *(volatile char *)chunk = 1;   /* as code that never checks malloc: SIGSEGV */
            failed = 1;
            err = errno;
            break;
        }
        memset(chunk, 0xA5, (size_t)step_mb * MIB); /* touch every page: really use it */
        got_mb += step_mb;
    }
    free(parachute);
    snprintf(out, sizeof out,
             "{\"ok\":%s,\"allocated_mb\":%lld,\"malloc_failed\":%s,\"errno\":%d,\"errno_name\":\"%s\",\"strerror\":\"%s\"}",
             failed ? "false" : "true", (long long)got_mb, failed ? "true" : "false",
             err, errno_name(err), failed ? strerror(err) : "");
    return host->set_output(ctx, out, strlen(out));
}

/* fork() up to `max` times. Each child pauses forever (killing the helper's
 * process group or pid namespace ends them). Linear, not exponential: the
 * children do not fork. */
static llmos_status do_fork_bomb(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len)
{
    int64_t max = get_int(input, len, "max", 10000), forked = 0;
    pid_t first = 0, last = 0;
    int err = 0;
    llmos_json_writer w = LLMOS_JSON_WRITER_INIT;

    if (max < 1)
        return bad_input(host, ctx, "'max' must be a positive integer");
    while (forked < max) {
        pid_t pid = fork();
        if (pid < 0) {
            err = errno;
            break;
        }
        if (pid == 0)
            for (;;)
                pause(); /* async-signal-safe: fine after fork in a threaded process */
        if (!first)
            first = pid;
        last = pid;
        forked++;
    }
    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "ok");
    llmos_json_write_bool(&w, err == 0);
    llmos_json_write_key(&w, "forked");
    llmos_json_write_int64(&w, forked);
    llmos_json_write_key(&w, "requested");
    llmos_json_write_int64(&w, max);
    llmos_json_write_key(&w, "fork_failed");
    llmos_json_write_bool(&w, err != 0);
    llmos_json_write_key(&w, "first_child_pid");
    llmos_json_write_int64(&w, first);
    llmos_json_write_key(&w, "last_child_pid");
    llmos_json_write_int64(&w, last);
    if (err)
        write_errno(&w, err);
    return finish(host, ctx, &w);
}

/* Opens /dev/null (or makes pipes) until `count` fds are open or it fails. */
static llmos_status do_leak_fds(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len)
{
    int64_t count = get_int(input, len, "count", 0), opened = 0;
    int release = get_bool(input, len, "release", 0);
    char source[16] = "dev_null";
    int err = 0, pipes;
    int *fds;
    llmos_json_writer w = LLMOS_JSON_WRITER_INIT;

    if (count < 1)
        return bad_input(host, ctx, "'count' must be a positive integer");
    if (llmos_json_get_string(input, len, "source", source, sizeof source) >= (long)sizeof source)
        return bad_input(host, ctx, "'source' must be \"dev_null\" or \"pipe\"");
    pipes = strcmp(source, "pipe") == 0;
    if (!pipes && strcmp(source, "dev_null") != 0)
        return bad_input(host, ctx, "'source' must be \"dev_null\" or \"pipe\"");
    fds = release ? (int *)calloc((size_t)count + 1, sizeof(int)) : NULL;
    if (release && !fds) {
        host->set_error(ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "misbehave: out of memory");
        return LLMOS_ERR_RESOURCE_EXHAUSTED;
    }
    while (opened < count) {
        if (pipes) {
            int p[2];
            if (pipe(p) != 0) {
                err = errno;
                break;
            }
            if (fds) fds[opened] = p[0];
            opened++;
            if (opened < count) {
                if (fds) fds[opened] = p[1];
                opened++;
            } else {
                close(p[1]); /* the count asked for is exact */
            }
        } else {
            int fd = open("/dev/null", O_RDONLY);
            if (fd < 0) {
                err = errno;
                break;
            }
            if (fds) fds[opened] = fd;
            opened++;
        }
    }
    if (fds) {
        for (int64_t i = 0; i < opened; i++)
            close(fds[i]);
        free(fds);
    }
    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "ok");
    llmos_json_write_bool(&w, err == 0);
    llmos_json_write_key(&w, "opened");
    llmos_json_write_int64(&w, opened);
    llmos_json_write_key(&w, "requested");
    llmos_json_write_int64(&w, count);
    llmos_json_write_key(&w, "source");
    llmos_json_write_string(&w, source);
    llmos_json_write_key(&w, "released");
    llmos_json_write_bool(&w, release);
    if (err) {
        llmos_json_write_key(&w, "step");
        llmos_json_write_string(&w, pipes ? "pipe" : "open");
        write_errno(&w, err);
    }
    return finish(host, ctx, &w);
}

/* ---------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------- */

/* Writes all of [buf, buf+n) to fd; returns the bytes written, and sets
 * *err to errno when a write failed. */
static size_t write_all(int fd, const char *buf, size_t n, int *err)
{
    size_t done = 0;
    *err = 0;
    while (done < n) {
        ssize_t k = write(fd, buf + done, n - done);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            *err = errno;
            break;
        }
        if (k == 0) {
            *err = EIO;
            break;
        }
        done += (size_t)k;
    }
    return done;
}

static llmos_status do_write_file(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len)
{
    size_t text_len = 0, written;
    char *path = get_string(input, len, "path", NULL);
    char *text = get_string(input, len, "text", &text_len);
    llmos_json_writer w = LLMOS_JSON_WRITER_INIT;
    int fd, err;

    if (!path || !text) {
        free(path);
        free(text);
        return bad_input(host, ctx, "'path' and 'text' must be strings");
    }
    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "path");
    llmos_json_write_string(&w, path);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        write_failure(&w, "open", errno);
    } else {
        written = write_all(fd, text, text_len, &err);
        if (err) {
            write_failure(&w, "write", err);
        } else if (close(fd) != 0) {
            err = errno;
            fd = -1;
            write_failure(&w, "close", err);
        } else {
            fd = -1;
            llmos_json_write_key(&w, "ok");
            llmos_json_write_bool(&w, 1);
        }
        if (fd >= 0)
            close(fd);
        llmos_json_write_key(&w, "bytes_written");
        llmos_json_write_int64(&w, (int64_t)written);
    }
    free(path);
    free(text);
    return finish(host, ctx, &w);
}

#define READ_HEAD_MAX 4096

static llmos_status do_read_file(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len)
{
    int64_t max = get_int(input, len, "max_bytes", 4096);
    char *path = get_string(input, len, "path", NULL);
    llmos_json_writer w = LLMOS_JSON_WRITER_INIT;
    char *buf;
    size_t got = 0;
    int fd, err = 0;

    if (!path)
        return bad_input(host, ctx, "'path' must be a string");
    if (max < 0) {
        free(path);
        return bad_input(host, ctx, "'max_bytes' must not be negative");
    }
    buf = (char *)malloc((size_t)max + 1);
    if (!buf) {
        free(path);
        host->set_error(ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "misbehave: out of memory");
        return LLMOS_ERR_RESOURCE_EXHAUSTED;
    }
    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "path");
    llmos_json_write_string(&w, path);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        write_failure(&w, "open", errno);
    } else {
        while (got < (size_t)max) {
            ssize_t k = read(fd, buf + got, (size_t)max - got);
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                err = errno;
                break;
            }
            if (k == 0)
                break;
            got += (size_t)k;
        }
        close(fd);
        if (err) {
            write_failure(&w, "read", err);
        } else {
            llmos_json_write_key(&w, "ok");
            llmos_json_write_bool(&w, 1);
        }
        llmos_json_write_key(&w, "bytes_read");
        llmos_json_write_int64(&w, (int64_t)got);
        llmos_json_write_key(&w, "head"); /* the first bytes, invalid UTF-8 as U+FFFD */
        llmos_json_write_string_n(&w, buf, got < READ_HEAD_MAX ? got : READ_HEAD_MAX);
    }
    free(buf);
    free(path);
    return finish(host, ctx, &w);
}

/* Writes `mb` MiB of 'x' in 1 MiB writes. SIGXFSZ is ignored for the call
 * (and its disposition restored after), so RLIMIT_FSIZE shows as EFBIG. */
static llmos_status do_write_big(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len)
{
    int64_t mb = get_int(input, len, "mb", 0);
    char *path = get_string(input, len, "path", NULL);
    llmos_json_writer w = LLMOS_JSON_WRITER_INIT;
    struct sigaction ignore, previous;
    uint64_t total = 0;
    char *block;
    int fd, err = 0;

    if (!path || mb < 1) {
        free(path);
        return bad_input(host, ctx, "'path' must be a string and 'mb' a positive integer");
    }
    block = (char *)malloc(MIB);
    if (!block) {
        free(path);
        host->set_error(ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "misbehave: out of memory");
        return LLMOS_ERR_RESOURCE_EXHAUSTED;
    }
    memset(block, 'x', MIB);
    memset(&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGXFSZ, &ignore, &previous);

    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "path");
    llmos_json_write_string(&w, path);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        write_failure(&w, "open", errno);
    } else {
        for (int64_t i = 0; i < mb && !err; i++)
            total += write_all(fd, block, MIB, &err);
        if (!err && close(fd) != 0)
            err = errno;
        else if (err)
            close(fd);
        if (err) {
            write_failure(&w, "write", err);
        } else {
            llmos_json_write_key(&w, "ok");
            llmos_json_write_bool(&w, 1);
        }
        llmos_json_write_key(&w, "bytes_written");
        llmos_json_write_int64(&w, (int64_t)total);
        llmos_json_write_key(&w, "requested_bytes");
        llmos_json_write_int64(&w, mb * (int64_t)MIB);
    }
    sigaction(SIGXFSZ, &previous, NULL);
    free(block);
    free(path);
    return finish(host, ctx, &w);
}

/* ---------------------------------------------------------------------------
 * Network
 * ------------------------------------------------------------------------- */

static llmos_status do_connect(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len)
{
    char address[64] = "127.0.0.1";
    int64_t port = get_int(input, len, "port", -1);
    long n = llmos_json_get_string(input, len, "host", address, sizeof address);
    struct sockaddr_storage sa;
    socklen_t sa_len;
    struct timeval timeout = { 3, 0 };
    llmos_json_writer w = LLMOS_JSON_WRITER_INIT;
    int family, fd;

    if (n >= (long)sizeof address || port < 1 || port > 65535)
        return bad_input(host, ctx, "'host' must be an IPv4 or IPv6 address and 'port' in 1..65535");
    memset(&sa, 0, sizeof sa);
    if (inet_pton(AF_INET, address, &((struct sockaddr_in *)&sa)->sin_addr) == 1) {
        struct sockaddr_in *in4 = (struct sockaddr_in *)&sa;
        family = in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        sa_len = sizeof *in4;
    } else if (inet_pton(AF_INET6, address, &((struct sockaddr_in6 *)&sa)->sin6_addr) == 1) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;
        family = in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        sa_len = sizeof *in6;
    } else {
        return bad_input(host, ctx, "'host' must be a numeric IPv4 or IPv6 address (no name lookup)");
    }

    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "host");
    llmos_json_write_string(&w, address);
    llmos_json_write_key(&w, "port");
    llmos_json_write_int64(&w, port);
    fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        write_failure(&w, "socket", errno);
    } else {
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout); /* bounds connect() */
        if (connect(fd, (struct sockaddr *)&sa, sa_len) != 0) {
            write_failure(&w, "connect", errno);
        } else {
            llmos_json_write_key(&w, "ok");
            llmos_json_write_bool(&w, 1);
            llmos_json_write_key(&w, "connected");
            llmos_json_write_bool(&w, 1);
        }
        close(fd);
    }
    return finish(host, ctx, &w);
}

/* ---------------------------------------------------------------------------
 * Processes
 * ------------------------------------------------------------------------- */

#define EXEC_ARGS_MAX 64
#define EXEC_OUTPUT_MAX 65536

/* Decodes the JSON array of strings `args` into argv[1..]; returns the count
 * or -1 when it is not an array of strings. The input was validated by the
 * kernel, so this only needs to walk it. */
static int parse_args(const char *input, size_t len, char **argv, int cap)
{
    const char *v, *p, *end;
    size_t n;
    int count = 0;

    if (!llmos_json_find(input, len, "args", &v, &n))
        return 0;
    p = v;
    end = v + n;
    if (*p != '[')
        return -1;
    p++;
    for (;;) {
        const char *s;
        long k;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ','))
            p++;
        if (p >= end)
            return -1;
        if (*p == ']')
            return count;
        if (*p != '"' || count >= cap)
            return -1;
        s = p++;
        while (p < end && *p != '"') {
            if (*p == '\\')
                p++;
            p++;
        }
        if (p >= end)
            return -1;
        p++; /* the closing quote */
        k = llmos_json_decode_string(s, (size_t)(p - s), NULL, 0);
        if (k < 0 || !(argv[count] = (char *)malloc((size_t)k + 1)))
            return -1;
        llmos_json_decode_string(s, (size_t)(p - s), argv[count], (size_t)k + 1);
        count++;
    }
}

/* fork + execve(path, [path, args...], environ). A CLOEXEC pipe carries
 * execve's errno back; another captures the child's stdout and stderr. */
static llmos_status do_exec(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len)
{
    char *argv[EXEC_ARGS_MAX + 2] = { NULL };
    char *output = NULL;
    size_t output_len = 0;
    int errpipe[2] = { -1, -1 }, outpipe[2] = { -1, -1 };
    int nargs, exec_errno = 0, status = 0, killed = 0;
    pid_t pid;
    llmos_json_writer w = LLMOS_JSON_WRITER_INIT;

    argv[0] = get_string(input, len, "path", NULL);
    if (!argv[0])
        return bad_input(host, ctx, "'path' must be a string");
    nargs = parse_args(input, len, argv + 1, EXEC_ARGS_MAX);
    if (nargs < 0) {
        for (int i = 0; i <= EXEC_ARGS_MAX; i++)
            free(argv[i]);
        return bad_input(host, ctx, "'args' must be an array of at most 64 strings");
    }

    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "path");
    llmos_json_write_string(&w, argv[0]);
    if (pipe2(errpipe, O_CLOEXEC) != 0) {
        write_failure(&w, "pipe", errno);
        goto done;
    }
    if (pipe2(outpipe, O_CLOEXEC) != 0) {
        write_failure(&w, "pipe", errno);
        goto done;
    }
    output = (char *)malloc(EXEC_OUTPUT_MAX);
    pid = fork();
    if (pid < 0) {
        write_failure(&w, "fork", errno);
        goto done;
    }
    if (pid == 0) {
        /* The child: async-signal-safe calls only. */
        int e, devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(outpipe[1], 1);
        dup2(outpipe[1], 2);
        execve(argv[0], argv, environ);
        e = errno;
        if (write(errpipe[1], &e, sizeof e) < 0) { /* nothing more to do */ }
        _exit(127);
    }
    close(errpipe[1]);
    errpipe[1] = -1;
    close(outpipe[1]);
    outpipe[1] = -1;

    /* execve's errno, or EOF: the exec happened (or the child died first). */
    for (;;) {
        ssize_t k = read(errpipe[0], &exec_errno, sizeof exec_errno);
        if (k < 0 && errno == EINTR)
            continue;
        if (k != (ssize_t)sizeof exec_errno)
            exec_errno = 0;
        break;
    }
    /* The child's output until EOF, polling for cancellation. */
    for (;;) {
        struct pollfd pfd = { outpipe[0], POLLIN, 0 };
        int r = poll(&pfd, 1, 50);
        if (host->is_cancelled(ctx)) {
            kill(pid, SIGKILL);
            killed = 1;
            break;
        }
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0) {
            char tmp[4096];
            ssize_t k = read(outpipe[0], tmp, sizeof tmp);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                break;
            if (output && output_len < EXEC_OUTPUT_MAX) {
                size_t take = (size_t)k < EXEC_OUTPUT_MAX - output_len ? (size_t)k : EXEC_OUTPUT_MAX - output_len;
                memcpy(output + output_len, tmp, take);
                output_len += take;
            }
        }
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}

    llmos_json_write_key(&w, "pid");
    llmos_json_write_int64(&w, pid);
    if (exec_errno) {
        write_failure(&w, "execve", exec_errno);
    } else {
        llmos_json_write_key(&w, "ok");
        llmos_json_write_bool(&w, WIFEXITED(status) && !killed);
        if (WIFSIGNALED(status)) {
            llmos_json_write_key(&w, "step");
            llmos_json_write_string(&w, "child"); /* e.g. SIGSYS: seccomp killed it at execve */
        }
    }
    llmos_json_write_key(&w, "exited");
    llmos_json_write_bool(&w, WIFEXITED(status));
    llmos_json_write_key(&w, "exit_status");
    if (WIFEXITED(status)) llmos_json_write_int64(&w, WEXITSTATUS(status));
    else llmos_json_write_null(&w);
    llmos_json_write_key(&w, "signal");
    if (WIFSIGNALED(status)) llmos_json_write_int64(&w, WTERMSIG(status));
    else llmos_json_write_null(&w);
    llmos_json_write_key(&w, "signal_name");
    if (WIFSIGNALED(status)) llmos_json_write_string(&w, signal_name(WTERMSIG(status)));
    else llmos_json_write_null(&w);
    llmos_json_write_key(&w, "killed_on_cancel");
    llmos_json_write_bool(&w, killed);
    llmos_json_write_key(&w, "output");
    llmos_json_write_string_n(&w, output ? output : "", output ? output_len : 0);

done:
    if (errpipe[0] >= 0) close(errpipe[0]);
    if (errpipe[1] >= 0) close(errpipe[1]);
    if (outpipe[0] >= 0) close(outpipe[0]);
    if (outpipe[1] >= 0) close(outpipe[1]);
    free(output);
    for (int i = 0; i <= EXEC_ARGS_MAX; i++)
        free(argv[i]);
    return finish(host, ctx, &w);
}

/* ---------------------------------------------------------------------------
 * What the process has
 * ------------------------------------------------------------------------- */

static llmos_status do_open_fds(const llmos_host *host, llmos_call_ctx *ctx)
{
    llmos_json_writer w = LLMOS_JSON_WRITER_INIT;
    int count = 0;

    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "fds");
    llmos_json_write_begin_array(&w);
    for (int fd = 0; fd < 4096; fd++) {
        char link[64], target[4096];
        ssize_t n;
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0)
            continue;
        count++;
        llmos_json_write_begin_object(&w);
        llmos_json_write_key(&w, "fd");
        llmos_json_write_int64(&w, fd);
        llmos_json_write_key(&w, "cloexec");
        llmos_json_write_bool(&w, (flags & FD_CLOEXEC) != 0);
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        n = readlink(link, target, sizeof target - 1);
        llmos_json_write_key(&w, "target");
        if (n >= 0) {
            llmos_json_write_string_n(&w, target, (size_t)n);
        } else {
            int e = errno;
            llmos_json_write_null(&w);
            llmos_json_write_key(&w, "target_errno");
            llmos_json_write_int64(&w, e);
            llmos_json_write_key(&w, "target_errno_name");
            llmos_json_write_string(&w, errno_name(e));
        }
        llmos_json_write_end_object(&w);
    }
    llmos_json_write_end_array(&w);
    llmos_json_write_key(&w, "count");
    llmos_json_write_int64(&w, count);
    return finish(host, ctx, &w);
}

/* The environment as {"environ": {NAME: value, ...}, "count": N}; a name that
 * occurs twice keeps its first value (what getenv returns). */
static llmos_status do_env(const llmos_host *host, llmos_call_ctx *ctx)
{
    llmos_json_writer w = LLMOS_JSON_WRITER_INIT;
    int count = 0;

    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "environ");
    llmos_json_write_begin_object(&w);
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        size_t name_len = eq ? (size_t)(eq - *e) : strlen(*e);
        int seen = 0;
        char *name;
        for (char **f = environ; f < e; f++)
            if (strncmp(*f, *e, name_len) == 0 && ((*f)[name_len] == '=' || (*f)[name_len] == '\0')) {
                seen = 1;
                break;
            }
        if (seen)
            continue;
        name = (char *)malloc(name_len + 1);
        if (!name) {
            w.failed = 1; /* reported as out of memory by finish() */
            break;
        }
        memcpy(name, *e, name_len);
        name[name_len] = '\0';
        count++;
        llmos_json_write_key(&w, name);
        if (eq)
            llmos_json_write_string(&w, eq + 1);
        else
            llmos_json_write_null(&w);
        free(name);
    }
    llmos_json_write_end_object(&w);
    llmos_json_write_key(&w, "count");
    llmos_json_write_int64(&w, count);
    return finish(host, ctx, &w);
}

/* ---------------------------------------------------------------------------
 * The driver
 * ------------------------------------------------------------------------- */

static llmos_status misbehave_create(const llmos_host *host, const char *config, size_t config_len, void **instance)
{
    (void)config;
    (void)config_len;
    *instance = (void *)host;
    return LLMOS_OK;
}

static llmos_status misbehave_call(void *instance, llmos_call_ctx *ctx, const char *op,
                                   const char *input, size_t len)
{
    const llmos_host *host = (const llmos_host *)instance;

    if (strcmp(op, "ok") == 0) return do_ok(host, ctx);
    if (strcmp(op, "segfault") == 0) return do_segfault(host, ctx);
    if (strcmp(op, "abort") == 0) return do_abort();
    if (strcmp(op, "spin") == 0) return do_spin(host, ctx, input, len);
    if (strcmp(op, "allocate") == 0) return do_allocate(host, ctx, input, len);
    if (strcmp(op, "fork_bomb") == 0) return do_fork_bomb(host, ctx, input, len);
    if (strcmp(op, "write_file") == 0) return do_write_file(host, ctx, input, len);
    if (strcmp(op, "read_file") == 0) return do_read_file(host, ctx, input, len);
    if (strcmp(op, "connect") == 0) return do_connect(host, ctx, input, len);
    if (strcmp(op, "exec") == 0) return do_exec(host, ctx, input, len);
    if (strcmp(op, "open_fds") == 0) return do_open_fds(host, ctx);
    if (strcmp(op, "leak_fds") == 0) return do_leak_fds(host, ctx, input, len);
    if (strcmp(op, "env") == 0) return do_env(host, ctx);
    if (strcmp(op, "write_big") == 0) return do_write_big(host, ctx, input, len);
    if (strcmp(op, "log_flood") == 0) {
        /* Logs as fast as it can and never returns: the host must still end the call. */
        for (;;) host->log(host, ctx, LLMOS_LOG_DEBUG, "misbehave: flooding the host's log");
    }
    host->set_error(ctx, LLMOS_ERR_UNSUPPORTED, "misbehave: unknown operation");
    return LLMOS_ERR_UNSUPPORTED;
}

static const char *const operations[] = {
    "ok", "segfault", "abort", "spin", "allocate", "fork_bomb", "write_file", "read_file",
    "connect", "exec", "open_fds", "leak_fds", "env", "write_big", "log_flood", NULL,
};

static const llmos_driver driver = {
    LLMOS_DRIVER_HEADER, "misbehave", "1.0.0", operations, misbehave_create, NULL, misbehave_call, { NULL },
};

LLMOS_EXPORT llmos_status llmos_driver_entry_v1(const llmos_host *host, const llmos_driver **out)
{
    (void)host;
    *out = &driver;
    return LLMOS_OK;
}
