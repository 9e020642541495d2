/*
 * missingtool — the manifest declares tools `one` and `two`, but the
 * driver's operations list only "one": the loader must refuse it, naming
 * the missing tool.
 */
#include <llmos/llmos.h>

static llmos_status ping_create(const llmos_host *host, const char *config, size_t config_len, void **instance)
{
    (void)config;
    (void)config_len;
    *instance = (void *)host;
    return LLMOS_OK;
}

static llmos_status ping_call(void *instance, llmos_call_ctx *ctx, const char *op,
                              const char *input, size_t len)
{
    const llmos_host *host = (const llmos_host *)instance;
    (void)op;
    (void)input;
    (void)len;
    return host->set_output(ctx, "{\"ok\":true}", 11);
}

static const char *const operations[] = { "one", NULL };

static const llmos_driver driver = {
    LLMOS_DRIVER_HEADER, "missingtool", "1.0.0", operations, ping_create, NULL, ping_call, { NULL },
};

LLMOS_EXPORT llmos_status llmos_driver_entry_v1(const llmos_host *host, const llmos_driver **out)
{
    (void)host;
    *out = &driver;
    return LLMOS_OK;
}
