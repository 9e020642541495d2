/*
 * refuses — a driver that pretends to need a newer host: its entry point
 * logs why (with a NULL context, as llmos.h allows during loading) and
 * returns LLMOS_ERR_ABI because host->abi_minor < 99.
 */
#include "ping.h"

#include <stdio.h>

static const char *const operations[] = { "ping", NULL };

static const llmos_driver driver = {
    LLMOS_DRIVER_HEADER, "refuses", "1.0.0", operations, ping_create, NULL, ping_call, { NULL },
};

LLMOS_EXPORT llmos_status llmos_driver_entry_v1(const llmos_host *host, const llmos_driver **out)
{
    if (host->abi_minor < 99) {
        char msg[128];
        snprintf(msg, sizeof msg, "refuses: this driver needs llmos ABI 1.99 or newer, but the host has 1.%u",
                 (unsigned)host->abi_minor);
        host->log(host, NULL, LLMOS_LOG_ERROR, msg);
        return LLMOS_ERR_ABI;
    }
    *out = &driver;
    return LLMOS_OK;
}
