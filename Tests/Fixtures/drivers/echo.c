/*
 * echo — a well-behaved test driver (threading: concurrent) that exercises
 * every host function a call can use: output, errors, cancellation, progress
 * and logging. Stateless: the host pointer serves as the instance.
 */
#define _POSIX_C_SOURCE 200809L
#include <llmos/llmos.h>
#include <llmos/llmos_json.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

static llmos_status reply(const llmos_host *host, llmos_call_ctx *ctx, const char *json)
{
    return host->set_output(ctx, json, strlen(json));
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps in 1 ms steps until `ms` have passed, polling for cancellation
 * between steps, as a long-running driver should. */
static llmos_status do_sleep(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len)
{
    int64_t ms, start = now_ms(), elapsed = 0;
    struct timespec step = { 0, 1000000 };
    char out[64];

    if (!llmos_json_get_int64(input, len, "ms", &ms) || ms < 0) {
        host->set_error(ctx, LLMOS_ERR_INVALID_ARGUMENT, "'ms' must be a non-negative integer");
        return LLMOS_ERR_INVALID_ARGUMENT;
    }
    for (;;) {
        if (host->is_cancelled(ctx)) {
            char msg[64];
            snprintf(msg, sizeof msg, "cancelled after %lld ms", (long long)elapsed);
            host->set_error(ctx, LLMOS_ERR_CANCELLED, msg);
            return LLMOS_ERR_CANCELLED;
        }
        if (elapsed >= ms)
            break;
        nanosleep(&step, NULL);
        elapsed = now_ms() - start;
    }
    snprintf(out, sizeof out, "{\"slept_ms\":%lld}", (long long)elapsed);
    return reply(host, ctx, out);
}

static llmos_status echo_create(const llmos_host *host, const char *config, size_t config_len, void **instance)
{
    (void)config;
    (void)config_len;
    *instance = (void *)host;
    return LLMOS_OK;
}

static llmos_status echo_call(void *instance, llmos_call_ctx *ctx, const char *op,
                              const char *input, size_t len)
{
    const llmos_host *host = (const llmos_host *)instance;

    if (strcmp(op, "echo") == 0) /* any JSON value: its schema is {} */
        return host->set_output(ctx, input, len);
    if (strcmp(op, "fail") == 0) {
        host->set_error(ctx, LLMOS_ERR_NOT_FOUND, "no such thing");
        return LLMOS_ERR_NOT_FOUND;
    }
    if (strcmp(op, "sleep") == 0)
        return do_sleep(host, ctx, input, len);
    if (strcmp(op, "progress") == 0) {
        host->progress(ctx, 0.0, "starting");
        host->progress(ctx, 0.5, "halfway");
        host->progress(ctx, 1.0, "done");
        return reply(host, ctx, "{\"ok\":true}");
    }
    if (strcmp(op, "log") == 0) {
        host->log(host, ctx, LLMOS_LOG_DEBUG, "echo: a debug line");
        host->log(host, ctx, LLMOS_LOG_INFO, "echo: an info line");
        host->log(host, ctx, LLMOS_LOG_WARN, "echo: a warning line");
        host->log(host, ctx, LLMOS_LOG_ERROR, "echo: an error line");
        return reply(host, ctx, "{\"ok\":true}");
    }
    host->set_error(ctx, LLMOS_ERR_UNSUPPORTED, "echo: unknown operation");
    return LLMOS_ERR_UNSUPPORTED;
}

static const char *const operations[] = { "echo", "fail", "sleep", "progress", "log", NULL };

static const llmos_driver driver = {
    LLMOS_DRIVER_HEADER, "echo", "1.0.0", operations, echo_create, NULL, echo_call, { NULL },
};

LLMOS_EXPORT llmos_status llmos_driver_entry_v1(const llmos_host *host, const llmos_driver **out)
{
    (void)host;
    *out = &driver;
    return LLMOS_OK;
}
