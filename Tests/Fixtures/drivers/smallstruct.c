/*
 * smallstruct — returns a driver description whose struct_size (8) is
 * smaller than LLMOS_DRIVER_MIN_SIZE: the loader must refuse it rather than
 * read fields the driver says it does not have.
 */
#include "ping.h"

static const char *const operations[] = { "ping", NULL };

static const llmos_driver driver = {
    8, LLMOS_ABI_MINOR, "smallstruct", "1.0.0", operations, ping_create, NULL, ping_call, { NULL },
};

LLMOS_EXPORT llmos_status llmos_driver_entry_v1(const llmos_host *host, const llmos_driver **out)
{
    (void)host;
    *out = &driver;
    return LLMOS_OK;
}
