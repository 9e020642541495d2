/*
 * ping.h — the trivial driver body shared by the fixtures that exist to test
 * the loader's refusals (abi2, misnamed, missingtool, oldminor, refuses,
 * smallstruct): what differs between them is only their description and entry.
 */
#ifndef LLMOS_FIXTURE_PING_H
#define LLMOS_FIXTURE_PING_H
#include <llmos/llmos.h>

static llmos_status ping_create(const llmos_host *host, const char *config, size_t config_len, void **instance)
{
    (void)config;
    (void)config_len;
    *instance = (void *)host;
    return LLMOS_OK;
}

/* Every operation answers {"ok":true}. */
static llmos_status ping_call(void *instance, llmos_call_ctx *ctx, const char *op,
                              const char *input, size_t len)
{
    const llmos_host *host = (const llmos_host *)instance;
    (void)op;
    (void)input;
    (void)len;
    return host->set_output(ctx, "{\"ok\":true}", 11);
}
#endif
