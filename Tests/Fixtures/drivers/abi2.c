/*
 * abi2 — a driver built for a future major version 2 of the ABI: it exports
 * only llmos_driver_entry_v2 (same signature), no v1. A major-1 host must
 * refuse it with a message naming both majors.
 */
#include "ping.h"

static const char *const operations[] = { "ping", NULL };

static const llmos_driver driver = {
    LLMOS_DRIVER_HEADER, "abi2", "2.0.0", operations, ping_create, NULL, ping_call, { NULL },
};

LLMOS_EXPORT llmos_status llmos_driver_entry_v2(const llmos_host *host, const llmos_driver **out);

llmos_status llmos_driver_entry_v2(const llmos_host *host, const llmos_driver **out)
{
    (void)host;
    *out = &driver;
    return LLMOS_OK;
}
