/*
 * reentry — a serialized driver that detects whether the kernel keeps its
 * promise: no two threads inside one instance at the same time.
 *
 * The counters are per instance (the guarantee is per instance) and atomic,
 * so the detector itself is race-free: if `inside` was already non-zero when
 * a call entered, another thread was in the instance, and that is counted.
 */
#define _POSIX_C_SOURCE 200809L
#include <llmos/llmos.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const llmos_host *host;
    atomic_int inside;     /* threads currently inside call() */
    atomic_long violations; /* calls that found another thread inside */
    atomic_long calls;      /* `enter` calls made */
} instance;

static llmos_status re_create(const llmos_host *host, const char *config, size_t config_len, void **out)
{
    instance *self;
    (void)config;
    (void)config_len;
    self = (instance *)calloc(1, sizeof *self);
    if (!self)
        return LLMOS_ERR_RESOURCE_EXHAUSTED;
    self->host = host;
    atomic_init(&self->inside, 0);
    atomic_init(&self->violations, 0);
    atomic_init(&self->calls, 0);
    *out = self;
    return LLMOS_OK;
}

static void re_destroy(void *self)
{
    free(self);
}

static llmos_status re_call(void *self_, llmos_call_ctx *ctx, const char *op,
                            const char *input, size_t len)
{
    instance *self = (instance *)self_;
    const llmos_host *host = self->host;
    llmos_status status;
    char out[96];
    (void)input;
    (void)len;

    /* Both operations count as being inside the instance. */
    if (atomic_fetch_add(&self->inside, 1) != 0)
        atomic_fetch_add(&self->violations, 1);

    if (strcmp(op, "enter") == 0) {
        struct timespec stay = { 0, 200000 }; /* 200 us: long enough to overlap */
        atomic_fetch_add(&self->calls, 1);
        nanosleep(&stay, NULL);
        status = host->set_output(ctx, "{\"ok\":true}", 11);
    } else if (strcmp(op, "violations") == 0) {
        snprintf(out, sizeof out, "{\"violations\":%ld,\"calls\":%ld}",
                 atomic_load(&self->violations), atomic_load(&self->calls));
        status = host->set_output(ctx, out, strlen(out));
    } else {
        host->set_error(ctx, LLMOS_ERR_UNSUPPORTED, "reentry: unknown operation");
        status = LLMOS_ERR_UNSUPPORTED;
    }

    atomic_fetch_sub(&self->inside, 1);
    return status;
}

static const char *const operations[] = { "enter", "violations", NULL };

static const llmos_driver driver = {
    LLMOS_DRIVER_HEADER, "reentry", "1.0.0", operations, re_create, re_destroy, re_call, { NULL },
};

LLMOS_EXPORT llmos_status llmos_driver_entry_v1(const llmos_host *host, const llmos_driver **out)
{
    (void)host;
    *out = &driver;
    return LLMOS_OK;
}
