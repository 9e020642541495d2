/*
 * llmos.h — the llmos driver ABI, version 1 (minor 1).
 *
 * 1.0: the host table up to `syscall`, the driver table, the entry point.
 * 1.1: host->emit, for streamed replies (a cpu driver's deltas).
 *
 * This header is the whole contract between the llmos kernel (the "host") and a
 * driver: a shared library that provides tools, a model backend (cpu), a context
 * manager (memory) or a long-term store (storage). It is plain C99 with no
 * dependencies, so a driver needs nothing but this file and a C compiler:
 *
 *     cc -std=c99 -shared -fPIC -I sdk/include -o libmydriver.so mydriver.c
 *
 * ---------------------------------------------------------------------------
 * Versioning
 * ---------------------------------------------------------------------------
 * - The MAJOR version is part of the entry symbol: llmos_driver_entry_v1. A host
 *   of major 1 looks up only that symbol. A breaking change would add
 *   llmos_driver_entry_v2; a library that exports only another major is refused
 *   with a message naming both majors.
 * - The MINOR version grows append-only. New functions and fields are only ever
 *   added at the end of a struct, taking the place of reserved slots, and new
 *   status codes may be added. Nothing is removed, reordered or retyped.
 * - Every struct that crosses the boundary begins with `struct_size` (sizeof the
 *   struct as the writer compiled it) and `abi_minor` (the minor the writer was
 *   compiled against). The reader uses min(struct_size, sizeof(its struct)) bytes
 *   and treats everything past that as zero/NULL. So a driver built against
 *   1.0 runs on a 1.5 host, and a driver built against 1.5 can detect a 1.0 host:
 *   test `host->abi_minor` (or LLMOS_HOST_HAS(host, field)) before using a
 *   function added after 1.0.
 *
 * ---------------------------------------------------------------------------
 * Memory ownership: nothing allocated on one side is freed on the other.
 * ---------------------------------------------------------------------------
 * - Strings passed from host to driver (op names, input JSON, config JSON) are
 *   owned by the host and valid only for the duration of the call that received
 *   them. Copy what you want to keep.
 * - Results and errors go back through host->set_output and host->set_error,
 *   which COPY their arguments before returning. The driver keeps ownership of
 *   whatever it passed and may free it immediately.
 * - The llmos_driver description and every string it points to (name, version,
 *   the operations list) are owned by the driver and must stay valid and
 *   unchanged until the library is unloaded (static storage is the usual way).
 * - A response returned by host->syscall is owned by the host and stays valid
 *   until the next syscall made with the same call context, or until the call
 *   returns, whichever comes first.
 * - No C++ exception, longjmp or Swift error may cross the boundary in either
 *   direction. Catch everything inside your driver and report it with set_error.
 *
 * ---------------------------------------------------------------------------
 * Threads
 * ---------------------------------------------------------------------------
 * - The manifest declares `threading: serialized` (the default) or
 *   `threading: concurrent`. For a serialized driver the kernel guarantees that
 *   no two threads are ever inside create/call/destroy of one instance at the
 *   same time (it holds a per-instance lock). A concurrent driver may be entered
 *   from many threads at once and must synchronise itself.
 * - The host functions that take an llmos_call_ctx may be called only on the
 *   thread that is executing the call that received that context, and only
 *   before that call returns. Exceptions: is_cancelled may be called from any
 *   thread while the call is running; log with a NULL context may be called
 *   from any thread at any time while the library is loaded.
 * - The host never calls a driver from inside a signal handler.
 *
 * ---------------------------------------------------------------------------
 * JSON
 * ---------------------------------------------------------------------------
 * All structured data is UTF-8 JSON text, passed as a pointer plus a length in
 * bytes. The host always NUL-terminates the JSON it passes (the NUL is not
 * counted in the length), so drivers may treat it as a C string. JSON handed to
 * the host need not be NUL-terminated: only `len` bytes are read.
 * The kernel validates tool input against the manifest's input schema BEFORE a
 * driver runs, and output against the output schema (when declared) after.
 * Input JSON never has duplicate object keys: the kernel refuses such input, so
 * that what the schema check saw and what the driver reads cannot differ.
 *
 * ---------------------------------------------------------------------------
 * Deadlines and cancellation
 * ---------------------------------------------------------------------------
 * Each call has a deadline (the manifest's limits.timeout_ms, or less when the
 * caller asks). host->is_cancelled turns non-zero when the deadline passes or
 * the caller cancels; the driver should then return LLMOS_ERR_CANCELLED soon.
 * The kernel reports that as LLMOS_ERR_TIMEOUT when the deadline was the
 * reason, and discards a result that arrives after the deadline.
 *
 * Calls between drivers (the "tool.call" syscall) may nest, up to a depth
 * limit. A `serialized` driver is never re-entered: a tool.call that would
 * enter a serialized driver already running in the same call chain fails with
 * LLMOS_ERR_UNAVAILABLE instead of deadlocking.
 */
#ifndef LLMOS_H
#define LLMOS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LLMOS_ABI_MAJOR 1
#define LLMOS_ABI_MINOR 1

/* Marks the entry point for export from a shared library. */
#if defined(_WIN32)
#  define LLMOS_EXPORT __declspec(dllexport)
#else
#  define LLMOS_EXPORT __attribute__((visibility("default")))
#endif

/* ---------------------------------------------------------------------------
 * Status codes. int32_t constants; new codes may be added in any minor, and a
 * reader that does not know a code treats it as LLMOS_ERR_INTERNAL.
 * ------------------------------------------------------------------------- */
typedef int32_t llmos_status;

#define LLMOS_OK                     0  /* success */
#define LLMOS_ERR_INTERNAL           1  /* a bug or an unexpected failure */
#define LLMOS_ERR_INVALID_ARGUMENT   2  /* input is well-formed JSON but wrong */
#define LLMOS_ERR_NOT_FOUND          3  /* the thing named does not exist */
#define LLMOS_ERR_UNSUPPORTED        4  /* unknown operation or feature */
#define LLMOS_ERR_PERMISSION_DENIED  5  /* the capability layer said no */
#define LLMOS_ERR_TIMEOUT            6  /* a deadline passed */
#define LLMOS_ERR_CANCELLED          7  /* the caller cancelled the call */
#define LLMOS_ERR_OUTPUT_TOO_LARGE   8  /* output over the manifest's limit */
#define LLMOS_ERR_UNAVAILABLE        9  /* try again later (a server is down) */
#define LLMOS_ERR_RESOURCE_EXHAUSTED 10 /* out of memory, quota, budget */
#define LLMOS_ERR_INVALID_OUTPUT     11 /* the driver produced bad output */
#define LLMOS_ERR_ABI                12 /* version or struct negotiation failed */

/* Log levels for host->log. */
#define LLMOS_LOG_DEBUG 0
#define LLMOS_LOG_INFO  1
#define LLMOS_LOG_WARN  2
#define LLMOS_LOG_ERROR 3

/* ---------------------------------------------------------------------------
 * The call context: one per call, opaque, owned by the host. It identifies the
 * call for set_output/set_error/syscall/progress/is_cancelled, and it is valid
 * only until the driver's `call` function returns. Never store it.
 * ------------------------------------------------------------------------- */
typedef struct llmos_call_ctx llmos_call_ctx;

typedef struct llmos_host llmos_host;

/* ---------------------------------------------------------------------------
 * llmos_host: the functions the kernel offers a driver. The host owns it; the
 * pointer passed to the entry point and to create() stays valid until the
 * library is unloaded. Every function pointer in the 1.0 part is non-NULL.
 * ------------------------------------------------------------------------- */
struct llmos_host {
    uint32_t struct_size; /* sizeof(llmos_host) as the host was compiled */
    uint32_t abi_minor;   /* the host's LLMOS_ABI_MINOR */

    /* Write a line to the host's log, attributed to the driver that `host`
     * was given to (and to the call, when ctx is non-NULL). `host` is the
     * pointer the driver received (non-NULL); `message` is a NUL-terminated
     * UTF-8 string, copied before return; NULL is ignored. With a NULL ctx it
     * may be called from any thread while the library is loaded.
     * Never log secrets: the host's log is readable by the operator. */
    void (*log)(const llmos_host *host, llmos_call_ctx *ctx, int32_t level,
                const char *message);

    /* Set the result of the current call: `len` bytes of UTF-8 JSON at `json`
     * (need not be NUL-terminated), copied before return. Calling it again
     * replaces the previous output. Returns LLMOS_OK, or
     * LLMOS_ERR_OUTPUT_TOO_LARGE if len exceeds the manifest's
     * limits.max_output_bytes (the output is then discarded and the call will
     * fail with that error whatever the driver returns), or
     * LLMOS_ERR_INVALID_ARGUMENT if ctx or json is NULL. The kernel checks that
     * the output is well-formed JSON after `call` returns. */
    llmos_status (*set_output)(llmos_call_ctx *ctx, const char *json, size_t len);

    /* Report an error for the current call: a status (anything but LLMOS_OK)
     * and a NUL-terminated human-readable message, copied before return. The
     * message is shown to the model and the user: say what was wrong and, when
     * you can, what would be right ("division by zero: b must not be 0").
     * An error set this way wins over any output. NULL message is allowed. */
    llmos_status (*set_error)(llmos_call_ctx *ctx, llmos_status code, const char *message);

    /* Non-zero once the caller has cancelled this call or its deadline
     * (limits.timeout_ms) has passed. Cheap: poll it in long loops and return
     * LLMOS_ERR_CANCELLED soon after it turns non-zero. Any thread, while the
     * call runs. */
    int32_t (*is_cancelled)(llmos_call_ctx *ctx);

    /* Report progress of a long call: `fraction` in [0,1], or a negative value
     * when unknown; `message` may be NULL. Copied; may be dropped by the host
     * when nobody listens. Call thread only. */
    void (*progress)(llmos_call_ctx *ctx, double fraction, const char *message);

    /* Ask the kernel to do something on the driver's behalf: the one choke
     * point through which a driver reaches the world, checked against the
     * capabilities the driver was granted. `service` names the system call
     * ("log", "kv.get", "kv.put", "kv.delete", "tool.call", ...: see
     * docs/SYSCALLS.md), `request_json` is its input (`request_len` bytes).
     * On return *response and *response_len (both required, non-NULL) point to
     * host-owned JSON, NUL-terminated (the NUL not counted), valid until the
     * next syscall on this ctx or the end of the call. On failure the status is non-zero and the response is a JSON
     * object {"error": {"code": "...", "message": "..."}}. Call thread only. */
    llmos_status (*syscall)(llmos_call_ctx *ctx, const char *service,
                            const char *request_json, size_t request_len,
                            const char **response, size_t *response_len);

    /* ---- ABI 1.1 (check LLMOS_HOST_HAS(host, emit) before using it) ---- */

    /* Deliver one event of a streamed reply to whoever made the call, while the
     * call runs: for a cpu driver, a `stream_event` of
     * sdk/schemas/classes/cpu.schema.json (a text or tool-call delta). `len`
     * bytes of UTF-8 JSON at `event_json`, copied before return; the events of
     * a call are delivered in the order emitted. The final result is still set
     * with set_output. Returns LLMOS_OK (also when nobody listens: the event is
     * then dropped), LLMOS_ERR_INVALID_ARGUMENT when ctx or event_json is NULL
     * or the text is not JSON (the event is dropped), or LLMOS_ERR_CANCELLED once
     * the call is cancelled or past its deadline: stop generating and return
     * LLMOS_ERR_CANCELLED. Call thread only. */
    llmos_status (*emit)(llmos_call_ctx *ctx, const char *event_json, size_t len);

    /* Reserved for later minors: always NULL. */
    void *reserved[15];
};

/* The smallest llmos_host a 1.x driver may see: everything up to `syscall`. */
#define LLMOS_HOST_MIN_SIZE (offsetof(llmos_host, syscall) + sizeof(void (*)(void)))

/* True when `host` was built with a minor that has `field` (for functions
 * added after 1.0). */
#define LLMOS_HOST_HAS(host, field) \
    ((host)->struct_size >= offsetof(llmos_host, field) + sizeof((host)->field) && \
     (host)->field != NULL)

/* ---------------------------------------------------------------------------
 * llmos_driver: what the driver tells the kernel about itself. Owned by the
 * driver; must stay valid and unchanged until the library is unloaded.
 * ------------------------------------------------------------------------- */
typedef struct llmos_driver {
    uint32_t struct_size; /* sizeof(llmos_driver) as the driver was compiled */
    uint32_t abi_minor;   /* the LLMOS_ABI_MINOR the driver was compiled with */

    /* Must equal the manifest's `name` (NUL-terminated, non-NULL). */
    const char *name;
    /* The driver's own version, e.g. "1.2.0" (non-NULL). */
    const char *version;
    /* The operations (for class `tool`: the tool names, without the driver
     * prefix) this library implements, as a NULL-terminated array. Every tool
     * the manifest declares must be here, or the load is refused. */
    const char *const *operations;

    /* Make an instance. `config_json` is the driver's configuration object
     * (`config_len` bytes, NUL-terminated; "{}" when none), valid during the
     * call. On success store an opaque pointer in *instance (NULL is a valid
     * instance) and return LLMOS_OK. On failure return an error status; the
     * host reports it and never calls destroy. There is no call context here,
     * so explain a failure with host->log(host, NULL, ...): lines logged
     * during entry and create are quoted in the host's refusal. May be NULL:
     * then the instance is NULL. `host` is the same pointer the entry point
     * received and is valid until the library is unloaded. */
    llmos_status (*create)(const llmos_host *host, const char *config_json,
                           size_t config_len, void **instance);

    /* Release an instance. Called once, after the last call on it has
     * returned, before the library is unloaded. May be NULL. */
    void (*destroy)(void *instance);

    /* Run operation `op` (NUL-terminated) with `input_json` (`input_len`
     * bytes, NUL-terminated, already validated against the input schema).
     * Report the result with host->set_output or the failure with
     * host->set_error, then return LLMOS_OK or the error status. Returning a
     * non-zero status without set_error is an error with a generic message;
     * returning LLMOS_OK without set_output is an error too ("the driver
     * returned without a result"). Non-NULL. */
    llmos_status (*call)(void *instance, llmos_call_ctx *ctx, const char *op,
                         const char *input_json, size_t input_len);

    /* Reserved for later minors: set to NULL. */
    void *reserved[16];
} llmos_driver;

/* The smallest llmos_driver a 1.x host accepts: everything up to `call`. */
#define LLMOS_DRIVER_MIN_SIZE (offsetof(llmos_driver, call) + sizeof(void (*)(void)))

/* ---------------------------------------------------------------------------
 * The entry point. Every driver library exports exactly this symbol (or the
 * one the manifest's `library.entry` names, with the same signature).
 *
 * Called by the loader thread right after dlopen and before anything else;
 * called again if the same library is loaded again (for example after a hot
 * unload), so it must be idempotent. Note that a library that uses the Swift
 * runtime is never unmapped by the host: the runtime keeps pointers into the
 * metadata of every image it has seen, so unloading only destroys the
 * instance. `host` is valid until the library is unloaded. Set *driver to a
 * driver-owned description (see llmos_driver above) and return LLMOS_OK; or
 * return LLMOS_ERR_ABI when the host is too old for this driver (check
 * host->abi_minor), or any other error, and the load is refused. Must not call
 * any host function that needs a call context.
 * ------------------------------------------------------------------------- */
typedef llmos_status (*llmos_driver_entry_fn)(const llmos_host *host,
                                              const llmos_driver **driver);

LLMOS_EXPORT llmos_status llmos_driver_entry_v1(const llmos_host *host,
                                                const llmos_driver **driver);

/* Fill the common header of an llmos_driver you define statically:
 *   static const llmos_driver my_driver = { LLMOS_DRIVER_HEADER, "calc", ... };
 */
#define LLMOS_DRIVER_HEADER sizeof(llmos_driver), LLMOS_ABI_MINOR

#ifdef __cplusplus
}
#endif

#endif /* LLMOS_H */
