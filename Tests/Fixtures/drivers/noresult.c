/*
 * noresult — a driver that breaks the reporting rules: `nothing` returns
 * LLMOS_OK without set_output, `errnomsg` returns an error without
 * set_error. The kernel must turn both into errors with a generic message.
 */
#include <llmos/llmos.h>

#include <string.h>

static llmos_status nr_call(void *instance, llmos_call_ctx *ctx, const char *op,
                            const char *input, size_t len)
{
    (void)instance;
    (void)ctx;
    (void)input;
    (void)len;
    if (strcmp(op, "errnomsg") == 0)
        return LLMOS_ERR_INTERNAL;
    return LLMOS_OK; /* "nothing": no output at all */
}

static const char *const operations[] = { "nothing", "errnomsg", NULL };

/* create and destroy are NULL, which llmos.h allows: the instance is NULL. */
static const llmos_driver driver = {
    LLMOS_DRIVER_HEADER, "noresult", "1.0.0", operations, NULL, NULL, nr_call, { NULL },
};

LLMOS_EXPORT llmos_status llmos_driver_entry_v1(const llmos_host *host, const llmos_driver **out)
{
    (void)host;
    *out = &driver;
    return LLMOS_OK;
}
