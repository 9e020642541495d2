/*
 * createfails — create() always fails with LLMOS_ERR_INVALID_ARGUMENT.
 * Without a config key "token" it says the key is required; with one, it
 * says the token was rejected, and never writes the token itself anywhere
 * (tests pass a recognisable secret and check the log does not contain it).
 * destroy() must then never be called: it logs loudly if it is.
 */
#include <llmos/llmos.h>
#include <llmos/llmos_json.h>

#include <stdio.h>

/* Set once by the entry point, before any other function can run. */
static const llmos_host *g_host;

static llmos_status cf_create(const llmos_host *host, const char *config, size_t config_len, void **instance)
{
    char token[256];
    long n = llmos_json_get_string(config, config_len, "token", token, sizeof token);
    (void)instance;
    if (n < 0) {
        host->log(host, NULL, LLMOS_LOG_ERROR, "createfails: the config key \"token\" (a string) is required");
    } else {
        char msg[128];
        snprintf(msg, sizeof msg, "createfails: the configured token (%ld bytes) was rejected", n);
        host->log(host, NULL, LLMOS_LOG_ERROR, msg);
    }
    return LLMOS_ERR_INVALID_ARGUMENT;
}

static void cf_destroy(void *instance)
{
    (void)instance;
    g_host->log(g_host, NULL, LLMOS_LOG_ERROR, "createfails: BUG: destroy called after a failed create");
}

static llmos_status cf_call(void *instance, llmos_call_ctx *ctx, const char *op,
                            const char *input, size_t len)
{
    (void)instance;
    (void)op;
    (void)input;
    (void)len;
    g_host->set_error(ctx, LLMOS_ERR_INTERNAL, "createfails: BUG: call without an instance");
    return LLMOS_ERR_INTERNAL;
}

static const char *const operations[] = { "ping", NULL };

static const llmos_driver driver = {
    LLMOS_DRIVER_HEADER, "createfails", "1.0.0", operations, cf_create, cf_destroy, cf_call, { NULL },
};

LLMOS_EXPORT llmos_status llmos_driver_entry_v1(const llmos_host *host, const llmos_driver **out)
{
    g_host = host;
    *out = &driver;
    return LLMOS_OK;
}
