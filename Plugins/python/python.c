/*
 * python — run a Python snippet in a sandboxed python3 (manifests/python.yaml).
 *
 * The snippet runs as `python3 -I -S -c CODE`: isolated mode (no PYTHON*
 * variables, no user site directory, the script's directory not on sys.path)
 * and no site module, in the workspace, with a minimal environment. The
 * interpreter is found and checked by the kernel (`exec.authorize` for
 * "python3": the canonical path, e.g. /usr/bin/python3.11, against the
 * operator's exec grants, audited). The driver runs `isolation: process`, so
 * the sandbox holds what the interpreter can do: no network (its own empty
 * network namespace), reads only of the system library trees (the standard
 * library among them) and of what the operator granted, no writes unless
 * granted. Each run gets an address-space limit (memory_mb) and a time limit
 * (timeout_ms); on the time limit its process group is killed.
 *
 * Shares its process handling with the shell driver (Plugins/shell/run_program.h).
 */
#include "../shell/run_program.h"

#define PYTHON_MAX_CODE (1 << 20)
#define PYTHON_DEFAULT_TIMEOUT_MS 10000
#define PYTHON_MAX_TIMEOUT_MS 120000
#define PYTHON_DEFAULT_MEMORY_MB 256
#define PYTHON_MAX_MEMORY_MB 2048
#define PYTHON_DEFAULT_OUTPUT (64 * 1024)
#define PYTHON_MAX_OUTPUT (1024 * 1024)

typedef struct {
    const llmos_host *host;
} python_instance;

static llmos_status python_run(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len)
{
    int64_t timeout_ms = PYTHON_DEFAULT_TIMEOUT_MS, memory_mb = PYTHON_DEFAULT_MEMORY_MB, max_output = PYTHON_DEFAULT_OUTPUT;
    const char *raw;
    size_t raw_len;
    if (!llmos_json_find(input, len, "code", &raw, &raw_len))
        return run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "code is required: the Python source to run");
    if (llmos_json_find(input, len, "timeout_ms", NULL, NULL) && !llmos_json_get_int64(input, len, "timeout_ms", &timeout_ms))
        return run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "timeout_ms must be an integer");
    if (timeout_ms < 1 || timeout_ms > PYTHON_MAX_TIMEOUT_MS)
        return run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "timeout_ms must be between 1 and %d", PYTHON_MAX_TIMEOUT_MS);
    if (llmos_json_find(input, len, "memory_mb", NULL, NULL) && !llmos_json_get_int64(input, len, "memory_mb", &memory_mb))
        return run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "memory_mb must be an integer");
    if (memory_mb < 32 || memory_mb > PYTHON_MAX_MEMORY_MB)
        return run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "memory_mb must be between 32 and %d (python3 itself needs about 20 MB)", PYTHON_MAX_MEMORY_MB);
    if (llmos_json_find(input, len, "max_output_bytes", NULL, NULL) && !llmos_json_get_int64(input, len, "max_output_bytes", &max_output))
        return run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "max_output_bytes must be an integer");
    if (max_output < 0 || max_output > PYTHON_MAX_OUTPUT)
        return run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "max_output_bytes must be between 0 and %d", PYTHON_MAX_OUTPUT);

    char *code = (char *)malloc(raw_len + 1), *stdin_data = NULL;
    long stdin_len = 0;
    llmos_status status = LLMOS_OK;
    if (!code) return run_fail(host, ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    long code_len = llmos_json_decode_string(raw, raw_len, code, raw_len + 1);
    if (code_len < 0) { status = run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "code must be a string"); goto done; }
    if (code_len > PYTHON_MAX_CODE) { status = run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "code is %ld bytes; at most %d", code_len, PYTHON_MAX_CODE); goto done; }
    if (memchr(code, 0, (size_t)code_len)) {
        status = run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "code contains a NUL character; write \\0 inside a Python string literal instead");
        goto done;
    }
    if (llmos_json_find(input, len, "stdin", &raw, &raw_len)) {
        stdin_data = (char *)malloc(raw_len + 1);
        if (!stdin_data) { status = run_fail(host, ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "out of memory"); goto done; }
        stdin_len = llmos_json_decode_string(raw, raw_len, stdin_data, raw_len + 1);
        if (stdin_len < 0) { status = run_fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "stdin must be a string"); goto done; }
    }

    {
        char path[RUN_MAX_PATH], workspace[RUN_MAX_PATH];
        if ((status = run_program_authorize(host, ctx, "python3", path, workspace)) != LLMOS_OK) goto done;
        char *argv[] = { "python3", "-I", "-S", "-c", code, NULL };
        /* -I ignores PYTHON* variables; LANG gives UTF-8 stdio. */
        char *envp[] = { "PATH=/usr/bin:/bin", "LANG=C.UTF-8", NULL };
        run_result r;
        status = run_program(host, ctx, path, argv, envp, workspace, stdin_data, (size_t)stdin_len,
                             timeout_ms, (size_t)max_output, (uint64_t)memory_mb, &r);
        if (status != LLMOS_OK) goto done;
        if (r.exec_errno) {
            int e = r.exec_errno;
            run_result_free(&r);
            status = run_fail(host, ctx, e == EACCES || e == EPERM ? LLMOS_ERR_PERMISSION_DENIED : LLMOS_ERR_UNAVAILABLE,
                              "%s could not be started: %s%s", path, strerror(e),
                              e == EACCES || e == EPERM ? " (grant it with --allow 'exec=/usr/bin/python3*')" : "");
            goto done;
        }
        if (r.cancelled) {
            run_result_free(&r);
            status = run_fail(host, ctx, LLMOS_ERR_CANCELLED, "python3 was stopped because the call was cancelled or reached its deadline");
            goto done;
        }
        llmos_json_writer w = LLMOS_JSON_WRITER_INIT;
        llmos_json_write_begin_object(&w);
        run_write_result(&w, &r);
        /* MemoryError is how CPython reports the address-space limit; say which limit it was. */
        llmos_json_write_key(&w, "memory_limit_mb");
        llmos_json_write_int64(&w, memory_mb);
        llmos_json_write_end_object(&w);
        run_result_free(&r);
        status = run_send_output(host, ctx, &w);
    }
done:
    free(code);
    free(stdin_data);
    return status;
}

static llmos_status python_create(const llmos_host *host, const char *config, size_t config_len, void **out)
{
    (void)config;
    (void)config_len;
    python_instance *self = (python_instance *)calloc(1, sizeof *self);
    if (!self) return LLMOS_ERR_RESOURCE_EXHAUSTED;
    self->host = host;
    *out = self;
    return LLMOS_OK;
}

static void python_destroy(void *self) { free(self); }

static llmos_status python_call(void *instance, llmos_call_ctx *ctx, const char *op, const char *input, size_t len)
{
    const llmos_host *host = ((python_instance *)instance)->host;
    if (strcmp(op, "run") == 0) return python_run(host, ctx, input, len);
    return run_fail(host, ctx, LLMOS_ERR_UNSUPPORTED, "no operation %s in driver python", op);
}

static const char *const operations[] = { "run", NULL };

static const llmos_driver driver = {
    LLMOS_DRIVER_HEADER, "python", "1.0.0", operations, python_create, python_destroy, python_call, { NULL },
};

LLMOS_EXPORT llmos_status llmos_driver_entry_v1(const llmos_host *host, const llmos_driver **out)
{
    (void)host;
    *out = &driver;
    return LLMOS_OK;
}
