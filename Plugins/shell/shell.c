/*
 * shell — run one program with arguments, for models (manifests/shell.yaml).
 *
 * No shell string is ever parsed: the model gives a program and an argv, and
 * exactly that runs. Before anything starts the kernel decides (`exec.authorize`:
 * PATH lookup over a fixed list, symlinks resolved, checked against the
 * operator's `exec` grants, audited), and the driver then executes exactly the
 * canonical path the kernel checked. The manifest declares `isolation: process`,
 * so the sandbox enforces the same grant a second time (seccomp refuses execve
 * without an exec grant; Landlock executes only granted files and reads and
 * writes only granted trees).
 *
 * The program runs in the workspace, in a process group of its own, with a
 * minimal environment (never the host's), stdin from the call, stdout and
 * stderr captured up to a cap each (truncated flags say when more came), and
 * is killed, with its whole group, at its time limit or when the call is
 * cancelled.
 */
#include "run_program.h"

#define SHELL_MAX_ARGS 1024
#define SHELL_MAX_ARG_BYTES (1 << 20)
#define SHELL_DEFAULT_TIMEOUT_MS 10000
#define SHELL_MAX_TIMEOUT_MS 300000
#define SHELL_DEFAULT_OUTPUT (64 * 1024)
#define SHELL_MAX_OUTPUT (1024 * 1024)

typedef struct {
    const llmos_host *host;
} shell_instance;

/* Decodes the "args" array of strings into argv[1..]; argv[0] is the program name. */
static llmos_status read_args(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len,
                              char **argv, int *argc, char *storage, size_t storage_cap)
{
    const char *array;
    size_t array_len, used = 0;
    if (!llmos_json_find(input, len, "args", &array, &array_len)) return LLMOS_OK;
    if (array_len == 0 || array[0] != '[')
        return run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "args must be an array of strings");
    const char *p = array + 1, *end = array + array_len;
    for (;;) {
        p = llmos_json__ws(p, end);
        if (p >= end || *p == ']') break;
        const char *value_end = llmos_json__skip_value(p, end, 0);
        if (!value_end || *p != '"')
            return run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "args[%d] must be a string", *argc - 1);
        if (*argc >= SHELL_MAX_ARGS)
            return run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "args: at most %d arguments", SHELL_MAX_ARGS - 1);
        long n = llmos_json_decode_string(p, (size_t)(value_end - p), storage + used, storage_cap - used);
        if (n < 0 || used + (size_t)n + 1 > storage_cap)
            return run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "args: the arguments total more than %d bytes", SHELL_MAX_ARG_BYTES);
        if (memchr(storage + used, 0, (size_t)n))
            return run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "args[%d] contains a NUL character, which no program can receive", *argc - 1);
        argv[(*argc)++] = storage + used;
        used += (size_t)n + 1;
        p = llmos_json__ws(value_end, end);
        if (p < end && *p == ',') p++;
    }
    return LLMOS_OK;
}

static llmos_status shell_run(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len)
{
    char program[RUN_MAX_PATH], path[RUN_MAX_PATH], workspace[RUN_MAX_PATH];
    int64_t timeout_ms = SHELL_DEFAULT_TIMEOUT_MS, max_output = SHELL_DEFAULT_OUTPUT;
    long n = llmos_json_get_string(input, len, "program", program, sizeof program);
    if (n <= 0 || n >= (long)sizeof program || memchr(program, 0, (size_t)n))
        return run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "program must be a program name (ls) or path (/usr/bin/ls), 1 to 4095 bytes");
    if (llmos_json_find(input, len, "timeout_ms", NULL, NULL) && !llmos_json_get_int64(input, len, "timeout_ms", &timeout_ms))
        return run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "timeout_ms must be an integer");
    if (timeout_ms < 1 || timeout_ms > SHELL_MAX_TIMEOUT_MS)
        return run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "timeout_ms must be between 1 and %d", SHELL_MAX_TIMEOUT_MS);
    if (llmos_json_find(input, len, "max_output_bytes", NULL, NULL) && !llmos_json_get_int64(input, len, "max_output_bytes", &max_output))
        return run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "max_output_bytes must be an integer");
    if (max_output < 0 || max_output > SHELL_MAX_OUTPUT)
        return run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "max_output_bytes must be between 0 and %d", SHELL_MAX_OUTPUT);

    char **argv = (char **)calloc(SHELL_MAX_ARGS + 1, sizeof *argv);
    char *storage = (char *)malloc(SHELL_MAX_ARG_BYTES);
    char *stdin_data = NULL;
    long stdin_len = 0;
    int argc = 1;
    llmos_status status = LLMOS_OK;
    if (!argv || !storage) {
        status = run_fail(host, ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    /* argv[0] is the name as given (busybox-style programs look at it); what runs is the checked path. */
    argv[0] = program;
    if ((status = read_args(host, ctx, input, len, argv, &argc, storage, SHELL_MAX_ARG_BYTES)) != LLMOS_OK) goto done;
    argv[argc] = NULL;
    {
        const char *raw;
        size_t raw_len;
        if (llmos_json_find(input, len, "stdin", &raw, &raw_len)) {
            stdin_data = (char *)malloc(raw_len + 1);
            if (!stdin_data) { status = run_fail(host, ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "out of memory"); goto done; }
            stdin_len = llmos_json_decode_string(raw, raw_len, stdin_data, raw_len + 1);
            if (stdin_len < 0) { status = run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "stdin must be a string"); goto done; }
        }
    }
    if ((status = run_program_authorize(host, ctx, program, path, workspace)) != LLMOS_OK) goto done;

    {
        char home[RUN_MAX_PATH + 8], pwd[RUN_MAX_PATH + 8];
        snprintf(home, sizeof home, "HOME=%s", workspace);
        snprintf(pwd, sizeof pwd, "PWD=%s", workspace);
        char *envp[] = { "PATH=/usr/local/bin:/usr/bin:/bin", home, pwd, "LANG=C.UTF-8", "TERM=dumb", NULL };
        run_result r;
        status = run_program(host, ctx, path, argv, envp, workspace, stdin_data, (size_t)stdin_len,
                             timeout_ms, (size_t)max_output, 0, &r);
        if (status != LLMOS_OK) goto done;
        if (r.exec_errno) {
            int e = r.exec_errno;
            run_result_free(&r);
            status = run_fail(host, ctx, e == EACCES || e == EPERM ? LLMOS_ERR_PERMISSION_DENIED : LLMOS_ERR_UNAVAILABLE,
                              "%s could not be started: %s%s", path, strerror(e),
                              e == EACCES || e == EPERM ? " (the sandbox executes only programs an exec grant names)" : "");
            goto done;
        }
        if (r.cancelled) {
            run_result_free(&r);
            status = run_fail(host, ctx, LLMOS_ERR_CANCELLED, "%s was stopped (its process group killed) because the call was cancelled or reached its deadline", program);
            goto done;
        }
        llmos_json_writer w = LLMOS_JSON_WRITER_INIT;
        llmos_json_write_begin_object(&w);
        llmos_json_write_key(&w, "program");
        llmos_json_write_string(&w, path);
        run_write_result(&w, &r);
        llmos_json_write_end_object(&w);
        run_result_free(&r);
        status = run_send_output(host, ctx, &w);
    }
done:
    free(argv);
    free(storage);
    free(stdin_data);
    return status;
}

static llmos_status shell_create(const llmos_host *host, const char *config, size_t config_len, void **out)
{
    (void)config;
    (void)config_len;
    shell_instance *self = (shell_instance *)calloc(1, sizeof *self);
    if (!self) return LLMOS_ERR_RESOURCE_EXHAUSTED;
    self->host = host;
    *out = self;
    return LLMOS_OK;
}

static void shell_destroy(void *self) { free(self); }

static llmos_status shell_call(void *instance, llmos_call_ctx *ctx, const char *op, const char *input, size_t len)
{
    const llmos_host *host = ((shell_instance *)instance)->host;
    if (strcmp(op, "run") == 0) return shell_run(host, ctx, input, len);
    return run_fail(host, ctx, LLMOS_ERR_UNSUPPORTED, "no operation %s in driver shell", op);
}

static const char *const operations[] = { "run", NULL };

static const llmos_driver driver = {
    LLMOS_DRIVER_HEADER, "shell", "1.0.0", operations, shell_create, shell_destroy, shell_call, { NULL },
};

LLMOS_EXPORT llmos_status llmos_driver_entry_v1(const llmos_host *host, const llmos_driver **out)
{
    (void)host;
    *out = &driver;
    return LLMOS_OK;
}
