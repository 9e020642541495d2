/*
 * missingtool — the manifest declares tools `one` and `two`, but the
 * driver's operations list only "one": the loader must refuse it, naming
 * the missing tool.
 */
#include "ping.h"

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
