/*
 * {{name}} — an llmos driver written in C.
 *
 * A driver is a shared library that exports one function,
 * llmos_driver_entry_v1, which hands the kernel a description of the driver
 * (its name, version, operations and three functions: create, destroy, call).
 * Everything else lives in {{name}}.yaml, the manifest: the tools' input and
 * output schemas, the limits and the capabilities the driver asks for.
 *
 * The whole contract is include/llmos/llmos.h; include/llmos/llmos_json.h
 * reads the input and writes the output. Build with `make`.
 */
#include <llmos/llmos.h>
#include <llmos/llmos_json.h>

#include <stdlib.h>
#include <string.h>

/* What one instance of the driver keeps. The kernel makes an instance with
 * create() and hands it back to every call, so state goes here rather than in
 * globals (which every instance, and with `threading: concurrent` every
 * thread, would share). */
typedef struct instance {
    const llmos_host *host; /* the kernel's functions: valid until unload */
} instance;

static llmos_status driver_create(const llmos_host *host, const char *config_json,
                                  size_t config_len, void **out)
{
    instance *self;
    (void)config_json; /* read settings here with llmos_json_get_* */
    (void)config_len;
    self = (instance *)calloc(1, sizeof *self);
    if (!self)
        return LLMOS_ERR_RESOURCE_EXHAUSTED;
    self->host = host;
    *out = self;
    return LLMOS_OK;
}

static void driver_destroy(void *self)
{
    free(self);
}

/* Reports an error: the message is shown to the model and the user, so say
 * what was wrong and what would be right. set_error copies the message. */
static llmos_status fail(const instance *self, llmos_call_ctx *ctx, llmos_status code, const char *message)
{
    self->host->set_error(ctx, code, message);
    return code;
}

/* The `hello` tool: {"name": "Ada"} -> {"greeting": "Hello, Ada!"}. */
static llmos_status hello(const instance *self, llmos_call_ctx *ctx, const char *input, size_t len)
{
    char name[512], greeting[sizeof name + 16];
    long n;
    size_t g = 0;
    llmos_json_writer w = LLMOS_JSON_WRITER_INIT;
    llmos_status status;

    /* The kernel has checked the input against the manifest's input_schema
     * already (so "name" is a string of at most 100 characters), but a driver
     * still never trusts a length it did not check itself. */
    n = llmos_json_get_string(input, len, "name", name, sizeof name);
    if (n < 0)
        return fail(self, ctx, LLMOS_ERR_INVALID_ARGUMENT, "'name' must be a string");
    if ((size_t)n >= sizeof name)
        return fail(self, ctx, LLMOS_ERR_INVALID_ARGUMENT, "'name' is too long");

    /* Built with memcpy rather than printf("%s"): a JSON string may contain
     * "\u0000", and the decoded length is the truth, not the first NUL. */
    memcpy(greeting + g, "Hello, ", 7);
    g += 7;
    memcpy(greeting + g, name, (size_t)n);
    g += (size_t)n;
    greeting[g++] = '!';

    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "greeting");
    llmos_json_write_string_n(&w, greeting, g);
    llmos_json_write_end_object(&w);
    if (w.failed) {
        llmos_json_writer_free(&w);
        return fail(self, ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    }
    status = self->host->set_output(ctx, w.buf, w.len); /* copies the output */
    llmos_json_writer_free(&w);
    return status;
}

static llmos_status driver_call(void *self_, llmos_call_ctx *ctx, const char *op,
                                const char *input, size_t len)
{
    const instance *self = (const instance *)self_;
    if (strcmp(op, "hello") == 0)
        return hello(self, ctx, input, len);
    /* Unreachable while `operations` and the manifest agree: the kernel only
     * calls the tools the manifest declares. */
    return fail(self, ctx, LLMOS_ERR_UNSUPPORTED, "unknown operation");
}

/* Every tool the manifest declares must be listed here (without the
 * "{{name}}." prefix), or the kernel refuses to load the driver. */
static const char *const operations[] = { "hello", NULL };

/* Static storage: the kernel reads it until the library is unloaded. */
static const llmos_driver driver = {
    LLMOS_DRIVER_HEADER,
    "{{name}}", /* must equal the manifest's name */
    "0.1.0",
    operations,
    driver_create,
    driver_destroy,
    driver_call,
    { NULL },   /* reserved for later ABI minors */
};

LLMOS_EXPORT llmos_status llmos_driver_entry_v1(const llmos_host *host, const llmos_driver **out)
{
    /* A driver that needs a host function added in a later minor checks
     * host->abi_minor (or LLMOS_HOST_HAS) here and returns LLMOS_ERR_ABI. */
    (void)host;
    *out = &driver;
    return LLMOS_OK;
}
