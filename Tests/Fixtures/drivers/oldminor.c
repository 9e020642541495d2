/*
 * oldminor — a valid driver compiled against ABI 1.0 (abi_minor 0), whose
 * manifest says it requires ABI 1.3. The kernel must refuse it: the manifest
 * asks for a minor that this host (and this driver) does not have.
 */
#include "ping.h"

static const char *const operations[] = { "ping", NULL };

static const llmos_driver driver = {
    sizeof(llmos_driver), 0, "oldminor", "1.0.0", operations, ping_create, NULL, ping_call, { NULL },
};

LLMOS_EXPORT llmos_status llmos_driver_entry_v1(const llmos_host *host, const llmos_driver **out)
{
    (void)host;
    *out = &driver;
    return LLMOS_OK;
}
