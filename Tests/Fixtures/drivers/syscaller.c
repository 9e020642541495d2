/*
 * syscaller — a driver that reaches the world only through host->syscall,
 * to test the kernel's system calls and the capability checks on them.
 * Granted (syscaller.yaml): kv, and tool.call on echo.echo and syscaller.*.
 *
 * threading: concurrent, because `recurse` calls back into this very
 * instance through tool.call while its own call is still running: a
 * serialized driver would wait forever for itself. Stateless: the host
 * pointer serves as the instance.
 */
#include <llmos/llmos.h>
#include <llmos/llmos_json.h>
#include "syscall_error.h"

#include <stdlib.h>
#include <string.h>

/* Makes the syscall with the writer's JSON as the request; frees the writer. */
static llmos_status syscall_json(const llmos_host *host, llmos_call_ctx *ctx, const char *service,
                                 llmos_json_writer *w, const char **resp, size_t *resp_len)
{
    llmos_status status;
    if (w->failed) {
        llmos_json_writer_free(w);
        host->set_error(ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        return LLMOS_ERR_RESOURCE_EXHAUSTED;
    }
    *resp = NULL;
    *resp_len = 0;
    status = host->syscall(ctx, service, w->buf, w->len, resp, resp_len);
    llmos_json_writer_free(w);
    if (*resp == NULL)
        *resp_len = 0; /* defensive: never hand a NULL pointer on */
    return status;
}

static llmos_status missing(const llmos_host *host, llmos_call_ctx *ctx, const char *what)
{
    host->set_error(ctx, LLMOS_ERR_INVALID_ARGUMENT, what);
    return LLMOS_ERR_INVALID_ARGUMENT;
}

/* kv.put {"key","value"}, then kv.get {"key"}: output the kv.get response. */
static llmos_status kv_roundtrip(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len)
{
    const char *key, *value, *resp;
    size_t key_len, value_len, resp_len;
    llmos_json_writer w = LLMOS_JSON_WRITER_INIT;
    llmos_status status;

    /* The raw member texts are already valid JSON strings: pass them on as
     * they are rather than decode and re-encode them. */
    if (!llmos_json_find(input, len, "key", &key, &key_len) || *key != '"' ||
        !llmos_json_find(input, len, "value", &value, &value_len) || *value != '"')
        return missing(host, ctx, "'key' and 'value' must be strings");

    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "key");
    llmos_json_write_raw(&w, key, key_len);
    llmos_json_write_key(&w, "value");
    llmos_json_write_raw(&w, value, value_len);
    llmos_json_write_end_object(&w);
    status = syscall_json(host, ctx, "kv.put", &w, &resp, &resp_len);
    if (status != LLMOS_OK)
        return fail_with(host, ctx, status, resp, resp_len);

    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "key");
    llmos_json_write_raw(&w, key, key_len);
    llmos_json_write_end_object(&w);
    status = syscall_json(host, ctx, "kv.get", &w, &resp, &resp_len);
    if (status != LLMOS_OK)
        return fail_with(host, ctx, status, resp, resp_len);
    return host->set_output(ctx, resp, resp_len);
}

/* tool.call {"tool","input"}: output the response (the tool's output), or
 * fail with its status and error message. */
static llmos_status call_tool(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len)
{
    const char *tool, *args, *resp;
    size_t tool_len, args_len, resp_len;
    llmos_json_writer w = LLMOS_JSON_WRITER_INIT;
    llmos_status status;

    if (!llmos_json_find(input, len, "tool", &tool, &tool_len) || *tool != '"' ||
        !llmos_json_find(input, len, "input", &args, &args_len) || *args != '{')
        return missing(host, ctx, "'tool' must be a string and 'input' an object");

    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "tool");
    llmos_json_write_raw(&w, tool, tool_len);
    llmos_json_write_key(&w, "input");
    llmos_json_write_raw(&w, args, args_len);
    llmos_json_write_end_object(&w);
    status = syscall_json(host, ctx, "tool.call", &w, &resp, &resp_len);
    if (status != LLMOS_OK)
        return fail_with(host, ctx, status, resp, resp_len);
    return host->set_output(ctx, resp, resp_len);
}

/* tool.call syscaller.recurse {"depth": depth + 1}, with no limit of its
 * own: the kernel must stop the recursion, and each level passes the error
 * back up. */
static llmos_status recurse(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len)
{
    const char *resp;
    size_t resp_len;
    int64_t depth;
    llmos_json_writer w = LLMOS_JSON_WRITER_INIT;
    llmos_status status;

    if (!llmos_json_get_int64(input, len, "depth", &depth) || depth < 0 || depth == INT64_MAX)
        return missing(host, ctx, "'depth' must be a non-negative integer");

    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "tool");
    llmos_json_write_string(&w, "syscaller.recurse");
    llmos_json_write_key(&w, "input");
    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "depth");
    llmos_json_write_int64(&w, depth + 1);
    llmos_json_write_end_object(&w);
    llmos_json_write_end_object(&w);
    status = syscall_json(host, ctx, "tool.call", &w, &resp, &resp_len);
    if (status == LLMOS_OK)
        return host->set_output(ctx, resp, resp_len);
    return fail_with(host, ctx, status, resp, resp_len);
}

/* The "log" system call. */
static llmos_status log_syscall(const llmos_host *host, llmos_call_ctx *ctx)
{
    static const char request[] = "{\"level\":\"info\",\"message\":\"hi\"}";
    const char *resp = NULL;
    size_t resp_len = 0;
    llmos_status status = host->syscall(ctx, "log", request, sizeof request - 1, &resp, &resp_len);
    if (status != LLMOS_OK)
        return fail_with(host, ctx, status, resp ? resp : "", resp ? resp_len : 0);
    return host->set_output(ctx, "{\"ok\":true}", 11);
}

static llmos_status sc_create(const llmos_host *host, const char *config, size_t config_len, void **instance)
{
    (void)config;
    (void)config_len;
    *instance = (void *)host;
    return LLMOS_OK;
}

static llmos_status sc_call(void *instance, llmos_call_ctx *ctx, const char *op,
                            const char *input, size_t len)
{
    const llmos_host *host = (const llmos_host *)instance;

    if (strcmp(op, "kv_roundtrip") == 0) return kv_roundtrip(host, ctx, input, len);
    if (strcmp(op, "call_tool") == 0) return call_tool(host, ctx, input, len);
    if (strcmp(op, "recurse") == 0) return recurse(host, ctx, input, len);
    if (strcmp(op, "log_syscall") == 0) return log_syscall(host, ctx);
    host->set_error(ctx, LLMOS_ERR_UNSUPPORTED, "syscaller: unknown operation");
    return LLMOS_ERR_UNSUPPORTED;
}

static const char *const operations[] = { "kv_roundtrip", "call_tool", "recurse", "log_syscall", NULL };

static const llmos_driver driver = {
    LLMOS_DRIVER_HEADER, "syscaller", "1.0.0", operations, sc_create, NULL, sc_call, { NULL },
};

LLMOS_EXPORT llmos_status llmos_driver_entry_v1(const llmos_host *host, const llmos_driver **out)
{
    (void)host;
    *out = &driver;
    return LLMOS_OK;
}
