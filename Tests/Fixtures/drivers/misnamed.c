/*
 * misnamed — the manifest says `misnamed` but the driver calls itself
 * "othername": the loader must refuse the mismatch.
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

static const char *const operations[] = { "ping", NULL };

static const llmos_driver driver = {
    LLMOS_DRIVER_HEADER, "othername", "1.0.0", operations, ping_create, NULL, ping_call, { NULL },
};

LLMOS_EXPORT llmos_status llmos_driver_entry_v1(const llmos_host *host, const llmos_driver **out)
{
    (void)host;
    *out = &driver;
    return LLMOS_OK;
}
