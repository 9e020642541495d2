#ifndef CLLMOS_SYSTEM_H
#define CLLMOS_SYSTEM_H
/* The kernel's C shim: system headers Glibc's Swift module does not export,
 * and the few helpers that are simpler to say in C than in Swift. */
#include <sys/inotify.h>
#include <dlfcn.h>
#include <errno.h>
#include <time.h>
#include <pthread.h>
#include <llmos/llmos.h>

/* The kernel gives each loaded driver its own llmos_host, followed by a
 * pointer back to the kernel's record of that driver, so that host->log
 * (which receives only the host pointer) knows whom to attribute a line to. */
typedef struct llmos_host_block {
    llmos_host host;
    void *owner;
} llmos_host_block;

static inline void *llmos_host_block_owner(const llmos_host *host) {
    return host ? ((const llmos_host_block *)host)->owner : 0;
}

static inline int llmos_sys_errno(void) { return errno; }

static inline uint64_t llmos_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Calls through a driver's function pointers (Swift can call C function
 * pointers directly, but keeping the calls here makes the hot path plain C). */
static inline llmos_status llmos_invoke_call(const llmos_driver *d, void *instance,
                                             llmos_call_ctx *ctx, const char *op,
                                             const char *input, size_t len) {
    return d->call(instance, ctx, op, input, len);
}

static inline llmos_status llmos_invoke_entry(void *symbol, const llmos_host *host,
                                              const llmos_driver **out) {
    return ((llmos_driver_entry_fn)symbol)(host, out);
}

/* The size of the v1.0 part of llmos_driver (what LLMOS_DRIVER_MIN_SIZE says). */
static inline size_t llmos_driver_min_size(void) { return LLMOS_DRIVER_MIN_SIZE; }
static inline size_t llmos_driver_size(void) { return sizeof(llmos_driver); }
#endif
