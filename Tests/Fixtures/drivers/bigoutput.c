/*
 * bigoutput — outputs as many bytes as asked, to test the manifest's
 * limits.max_output_bytes (1024 for this driver).
 */
#include <llmos/llmos.h>
#include <llmos/llmos_json.h>

#include <stdlib.h>
#include <string.h>

static llmos_status big_create(const llmos_host *host, const char *config, size_t config_len, void **instance)
{
    (void)config;
    (void)config_len;
    *instance = (void *)host;
    return LLMOS_OK;
}

static llmos_status big_call(void *instance, llmos_call_ctx *ctx, const char *op,
                             const char *input, size_t len)
{
    const llmos_host *host = (const llmos_host *)instance;
    int64_t bytes;
    char *out;

    if (strcmp(op, "big") != 0) {
        host->set_error(ctx, LLMOS_ERR_UNSUPPORTED, "bigoutput: unknown operation");
        return LLMOS_ERR_UNSUPPORTED;
    }
    if (!llmos_json_get_int64(input, len, "bytes", &bytes) || bytes < 0 || bytes > 64 * 1024 * 1024) {
        host->set_error(ctx, LLMOS_ERR_INVALID_ARGUMENT, "'bytes' must be an integer from 0 to 67108864");
        return LLMOS_ERR_INVALID_ARGUMENT;
    }
    /* A JSON string of `bytes` x's: the output is bytes + 2 bytes long. */
    out = (char *)malloc((size_t)bytes + 2);
    if (!out) {
        host->set_error(ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        return LLMOS_ERR_RESOURCE_EXHAUSTED;
    }
    out[0] = '"';
    memset(out + 1, 'x', (size_t)bytes);
    out[bytes + 1] = '"';
    /* set_output's status is ignored on purpose: llmos.h promises the call
     * fails with LLMOS_ERR_OUTPUT_TOO_LARGE whatever the driver returns. */
    (void)host->set_output(ctx, out, (size_t)bytes + 2);
    free(out);
    return LLMOS_OK;
}

static const char *const operations[] = { "big", NULL };

static const llmos_driver driver = {
    LLMOS_DRIVER_HEADER, "bigoutput", "1.0.0", operations, big_create, NULL, big_call, { NULL },
};

LLMOS_EXPORT llmos_status llmos_driver_entry_v1(const llmos_host *host, const llmos_driver **out)
{
    (void)host;
    *out = &driver;
    return LLMOS_OK;
}
