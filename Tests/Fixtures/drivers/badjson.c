/*
 * badjson — a driver whose output is wrong in three ways, for the kernel's
 * output checks: malformed JSON, and well-formed JSON that breaks the
 * manifest's output_schema (not an object; "result" of the wrong type).
 */
#include <llmos/llmos.h>

#include <string.h>

static llmos_status bj_create(const llmos_host *host, const char *config, size_t config_len, void **instance)
{
    (void)config;
    (void)config_len;
    *instance = (void *)host;
    return LLMOS_OK;
}

static llmos_status bj_call(void *instance, llmos_call_ctx *ctx, const char *op,
                            const char *input, size_t len)
{
    const llmos_host *host = (const llmos_host *)instance;
    const char *out;
    (void)input;
    (void)len;

    if (strcmp(op, "bad") == 0)
        out = "{\"result\": "; /* truncated: not JSON at all */
    else if (strcmp(op, "notobject") == 0)
        out = "42";
    else if (strcmp(op, "wrongtype") == 0)
        out = "{\"result\":\"three\"}";
    else {
        host->set_error(ctx, LLMOS_ERR_UNSUPPORTED, "badjson: unknown operation");
        return LLMOS_ERR_UNSUPPORTED;
    }
    host->set_output(ctx, out, strlen(out));
    return LLMOS_OK; /* as if all were well: the kernel must notice */
}

static const char *const operations[] = { "bad", "notobject", "wrongtype", NULL };

static const llmos_driver driver = {
    LLMOS_DRIVER_HEADER, "badjson", "1.0.0", operations, bj_create, NULL, bj_call, { NULL },
};

LLMOS_EXPORT llmos_status llmos_driver_entry_v1(const llmos_host *host, const llmos_driver **out)
{
    (void)host;
    *out = &driver;
    return LLMOS_OK;
}
