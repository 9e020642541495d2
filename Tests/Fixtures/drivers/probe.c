/*
 * probe — the attacker's driver of the end-to-end attack suite
 * (Tests/LLMOSKernelTests/AttackSuiteTests.swift). It asks for everything in
 * its manifest (probe.yaml), so that what refuses is the operator's policy,
 * and it reaches the world only through what the kernel mediates:
 *
 *   syscall {service, request}   host->syscall(service, request) as it is; the
 *                                response is the output, a failure is the error
 *                                (its status and the response's message).
 *   read_path {path, swap?}      path is marked fs.read: the kernel checks it
 *                                and hands over its canonical form. Reads it
 *                                with the fs.read syscall; outputs
 *                                {"received": path, "result": <fs.read response>}.
 *                                swap {link, target}: before reading, replaces
 *                                `link` by a symlink to `target`, as a racing
 *                                process would between the check and the use.
 *   write_path {path, content, mode?}  marked fs.write; the fs.write syscall.
 *   fetch_url {url}              marked net.connect; the net.fetch syscall.
 *   run {program}                marked exec; only echoes {"received": program}
 *                                (nothing is executed).
 *   wipe {}                      hinted destructive; does nothing.
 *
 * threading: concurrent (tool.call chains re-enter it); stateless: the host
 * pointer serves as the instance.
 */
#define _POSIX_C_SOURCE 200809L
#include <llmos/llmos.h>
#include <llmos/llmos_json.h>
#include "syscall_error.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static llmos_status bad_input(const llmos_host *host, llmos_call_ctx *ctx, const char *what)
{
    host->set_error(ctx, LLMOS_ERR_INVALID_ARGUMENT, what);
    return LLMOS_ERR_INVALID_ARGUMENT;
}

/* Makes the syscall with `len` bytes of request JSON; on failure sets the error. */
static llmos_status call_host(const llmos_host *host, llmos_call_ctx *ctx, const char *service,
                              const char *request, size_t len, const char **resp, size_t *resp_len)
{
    llmos_status status;
    *resp = NULL;
    *resp_len = 0;
    status = host->syscall(ctx, service, request, len, resp, resp_len);
    if (*resp == NULL)
        *resp_len = 0;
    if (status != LLMOS_OK)
        return fail_with(host, ctx, status, *resp, *resp_len);
    return LLMOS_OK;
}

/* syscall {service, request}: the request member's raw text goes to the host as it is. */
static llmos_status do_syscall(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len)
{
    char service[256];
    const char *request, *resp;
    size_t request_len, resp_len;
    long n = llmos_json_get_string(input, len, "service", service, sizeof service);
    llmos_status status;

    if (n < 0 || (size_t)n >= sizeof service || strlen(service) != (size_t)n)
        return bad_input(host, ctx, "'service' must be a short string without NUL bytes");
    if (!llmos_json_find(input, len, "request", &request, &request_len))
        return bad_input(host, ctx, "'request' is required");
    status = call_host(host, ctx, service, request, request_len, &resp, &resp_len);
    if (status != LLMOS_OK)
        return status;
    return host->set_output(ctx, resp, resp_len);
}

/* Replaces `link` with a symlink to `target` (both decoded from JSON strings). */
static int swap_link(const char *swap, size_t swap_len)
{
    char link[4096], target[4096];
    long a = llmos_json_get_string(swap, swap_len, "link", link, sizeof link);
    long b = llmos_json_get_string(swap, swap_len, "target", target, sizeof target);
    if (a < 0 || b < 0 || (size_t)a >= sizeof link || (size_t)b >= sizeof target)
        return -1;
    unlink(link);
    return symlink(target, link);
}

/* Sends {"<key>": <raw path value>, <extra members>} to `service`, then outputs
 * {"received": <raw path value>, "result": <response>}. The path goes on exactly
 * as the kernel handed it over. */
static llmos_status forward(const llmos_host *host, llmos_call_ctx *ctx, const char *service,
                            const char *key, const char *value, size_t value_len,
                            const char *content, size_t content_len, const char *mode, size_t mode_len)
{
    llmos_json_writer w = LLMOS_JSON_WRITER_INIT;
    const char *resp;
    size_t resp_len;
    llmos_status status;

    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, key);
    llmos_json_write_raw(&w, value, value_len);
    if (content) {
        llmos_json_write_key(&w, "content");
        llmos_json_write_raw(&w, content, content_len);
        llmos_json_write_key(&w, "mode");
        if (mode)
            llmos_json_write_raw(&w, mode, mode_len);
        else
            llmos_json_write_string(&w, "create");
    }
    llmos_json_write_end_object(&w);
    if (w.failed) {
        llmos_json_writer_free(&w);
        host->set_error(ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        return LLMOS_ERR_RESOURCE_EXHAUSTED;
    }
    status = call_host(host, ctx, service, w.buf, w.len, &resp, &resp_len);
    llmos_json_writer_free(&w);
    if (status != LLMOS_OK)
        return status;

    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "received");
    llmos_json_write_raw(&w, value, value_len);
    llmos_json_write_key(&w, "result");
    llmos_json_write_raw(&w, resp, resp_len);
    llmos_json_write_end_object(&w);
    if (w.failed) {
        llmos_json_writer_free(&w);
        host->set_error(ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        return LLMOS_ERR_RESOURCE_EXHAUSTED;
    }
    status = host->set_output(ctx, w.buf, w.len);
    llmos_json_writer_free(&w);
    return status;
}

static llmos_status read_path(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len)
{
    const char *path, *swap;
    size_t path_len, swap_len;
    if (!llmos_json_find(input, len, "path", &path, &path_len) || *path != '"')
        return bad_input(host, ctx, "'path' must be a string");
    if (llmos_json_find(input, len, "swap", &swap, &swap_len) && swap_link(swap, swap_len) != 0)
        return bad_input(host, ctx, "'swap' failed: {link, target} must name a replaceable link");
    return forward(host, ctx, "fs.read", "path", path, path_len, NULL, 0, NULL, 0);
}

static llmos_status write_path(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len)
{
    const char *path, *content, *mode = NULL;
    size_t path_len, content_len, mode_len = 0;
    if (!llmos_json_find(input, len, "path", &path, &path_len) || *path != '"' ||
        !llmos_json_find(input, len, "content", &content, &content_len) || *content != '"')
        return bad_input(host, ctx, "'path' and 'content' must be strings");
    if (!llmos_json_find(input, len, "mode", &mode, &mode_len))
        mode = NULL;
    return forward(host, ctx, "fs.write", "path", path, path_len, content, content_len, mode, mode_len);
}

static llmos_status fetch_url(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len)
{
    const char *url;
    size_t url_len;
    if (!llmos_json_find(input, len, "url", &url, &url_len) || *url != '"')
        return bad_input(host, ctx, "'url' must be a string");
    return forward(host, ctx, "net.fetch", "url", url, url_len, NULL, 0, NULL, 0);
}

static llmos_status run(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len)
{
    llmos_json_writer w = LLMOS_JSON_WRITER_INIT;
    const char *program;
    size_t program_len;
    llmos_status status;
    if (!llmos_json_find(input, len, "program", &program, &program_len) || *program != '"')
        return bad_input(host, ctx, "'program' must be a string");
    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "received");
    llmos_json_write_raw(&w, program, program_len);
    llmos_json_write_end_object(&w);
    if (w.failed) {
        llmos_json_writer_free(&w);
        host->set_error(ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        return LLMOS_ERR_RESOURCE_EXHAUSTED;
    }
    status = host->set_output(ctx, w.buf, w.len);
    llmos_json_writer_free(&w);
    return status;
}

static llmos_status probe_create(const llmos_host *host, const char *config, size_t config_len, void **instance)
{
    (void)config;
    (void)config_len;
    *instance = (void *)host;
    return LLMOS_OK;
}

static llmos_status probe_call(void *instance, llmos_call_ctx *ctx, const char *op,
                               const char *input, size_t len)
{
    const llmos_host *host = (const llmos_host *)instance;

    if (strcmp(op, "syscall") == 0) return do_syscall(host, ctx, input, len);
    if (strcmp(op, "read_path") == 0) return read_path(host, ctx, input, len);
    if (strcmp(op, "write_path") == 0) return write_path(host, ctx, input, len);
    if (strcmp(op, "fetch_url") == 0) return fetch_url(host, ctx, input, len);
    if (strcmp(op, "run") == 0) return run(host, ctx, input, len);
    if (strcmp(op, "wipe") == 0) return host->set_output(ctx, "{\"wiped\":false}", 15);
    host->set_error(ctx, LLMOS_ERR_UNSUPPORTED, "probe: unknown operation");
    return LLMOS_ERR_UNSUPPORTED;
}

static const char *const operations[] = { "syscall", "read_path", "write_path", "fetch_url", "run", "wipe", NULL };

static const llmos_driver driver = {
    LLMOS_DRIVER_HEADER, "probe", "1.0.0", operations, probe_create, NULL, probe_call, { NULL },
};

LLMOS_EXPORT llmos_status llmos_driver_entry_v1(const llmos_host *host, const llmos_driver **out)
{
    (void)host;
    *out = &driver;
    return LLMOS_OK;
}
