/*
 * misnamed — the manifest says `misnamed` but the driver calls itself
 * "othername": the loader must refuse the mismatch.
 */
#include "ping.h"

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
