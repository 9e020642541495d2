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

/* The file of the loaded image that defines `symbol` (global scope), or NULL. */
const char *llmos_image_defining(const char *symbol);

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
/* ---- File services (HostServices/FileService.swift) ---------------------
 * openat2(2) has no glibc wrapper on Debian 12: call it through syscall(2),
 * which Swift cannot call (it is variadic). struct open_how is declared here
 * under our own name so <linux/openat2.h> is not needed; its layout is fixed
 * by the kernel ABI (three u64, extensible by size). */
#include <fcntl.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <stdint.h>

#define LLMOS_RESOLVE_NO_XDEV       0x01ull /* no mount-point crossings */
#define LLMOS_RESOLVE_NO_MAGICLINKS 0x02ull /* no procfs magic links (/proc/self/fd/N, /proc/self/root) */
#define LLMOS_RESOLVE_NO_SYMLINKS   0x04ull /* no symlinks at all (implies NO_MAGICLINKS) */
#define LLMOS_RESOLVE_BENEATH       0x08ull /* never leave dirfd (no "..", absolute paths, jumps) */
#define LLMOS_RESOLVE_IN_ROOT       0x10ull /* treat dirfd as "/" */

struct llmos_open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};

/* openat2(dirfd, path, {flags, mode, resolve}): -1 with errno on failure,
 * ENOSYS where the kernel (or the headers) lack it. */
static inline int llmos_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
#ifdef SYS_openat2
    struct llmos_open_how how = { flags, mode, resolve };
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
#else
    (void)dirfd; (void)path; (void)flags; (void)mode; (void)resolve;
    errno = ENOSYS;
    return -1;
#endif
}

/* O_PATH is a GNU extension the Swift Glibc module may hide. */
static inline int llmos_o_path(void) {
#ifdef O_PATH
    return O_PATH;
#else
    return 010000000; /* the asm-generic value (x86_64, aarch64) */
#endif
}

#endif
