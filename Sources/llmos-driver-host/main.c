/* llmos-driver-host: the helper process an `isolation: process` driver runs in.
 *
 * The kernel starts it with the channel on fds 3 (a socketpair) and 4 (the
 * shared page), sends one SETUP frame, and from then on sends CALL frames. The
 * helper builds its sandbox (sandbox.c) from the SETUP, and only then maps the
 * driver's library: nothing of the driver, not even its constructors, runs
 * outside the sandbox. The driver sees the ordinary llmos_host table; each
 * function is forwarded over the channel, so host->syscall is checked by the
 * kernel exactly as for an in-process driver.
 *
 * One call at a time: the kernel serialises calls to an isolated driver.
 *
 * `llmos-driver-host --probe` prints what this Linux supports as JSON. */
#define _GNU_SOURCE
#include <llmos/llmos.h>
#include <llmos/llmos_json.h>
#include "CLLMOSIsolation.h"
#include "llmos_sandbox.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Spin this long for the next frame before blocking: the next call of a busy
 * caller usually arrives within it. */
#define HELPER_SPIN_NS 100000ull

static llmos_iso_channel *channel;
static void *shared;

/* The call in flight: its address is the llmos_call_ctx the driver sees. */
typedef struct helper_call {
    int active;
    uint64_t seq;
    uint64_t deadline_ns;
    char *output;
    size_t output_len;
    int has_output;
    size_t rejected;
    int32_t error_status;
    char *error_message;
    char *syscall_response;
} helper_call;

static helper_call current;
static size_t max_output = 1u << 20;
static llmos_host host_table;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int is_current(llmos_call_ctx *ctx) {
    return ctx == (llmos_call_ctx *)&current && current.active;
}

/* ---- the host functions, forwarded ---------------------------------------- */

static void host_log(const llmos_host *host, llmos_call_ctx *ctx, int32_t level, const char *message) {
    (void)host;
    if (!message) return;
    llmos_iso_send(channel, LLMOS_ISO_LOG, 0, level, is_current(ctx) ? 1 : 0, 0, message, strlen(message), NULL, 0);
}

static llmos_status host_set_output(llmos_call_ctx *ctx, const char *json, size_t len) {
    if (!is_current(ctx) || !json) return LLMOS_ERR_INVALID_ARGUMENT;
    free(current.output);
    current.output = NULL;
    current.has_output = 0;
    if (len > max_output) {
        current.rejected = len;
        return LLMOS_ERR_OUTPUT_TOO_LARGE;
    }
    current.output = malloc(len ? len : 1);
    if (!current.output) return LLMOS_ERR_RESOURCE_EXHAUSTED;
    memcpy(current.output, json, len);
    current.output_len = len;
    current.has_output = 1;
    return LLMOS_OK;
}

static llmos_status host_set_error(llmos_call_ctx *ctx, llmos_status code, const char *message) {
    if (!is_current(ctx)) return LLMOS_ERR_INVALID_ARGUMENT;
    current.error_status = code == LLMOS_OK ? LLMOS_ERR_INTERNAL : code;
    free(current.error_message);
    current.error_message = message ? strdup(message) : NULL;
    return LLMOS_OK;
}

/* Any thread, while the call runs: the deadline is checked here, and the kernel's
 * cancel word in the shared page covers a caller who cancels. */
static int32_t host_is_cancelled(llmos_call_ctx *ctx) {
    helper_call *call = (helper_call *)ctx;
    if (call != &current) return 1;
    uint64_t seq = call->seq;
    if (!call->active) return 1;
    if (llmos_iso_shared_cancelled(shared) == seq) return 1;
    return call->deadline_ns && now_ns() > call->deadline_ns;
}

static void host_progress(llmos_call_ctx *ctx, double fraction, const char *message) {
    if (!is_current(ctx)) return;
    if (isnan(fraction)) fraction = -1;
    llmos_iso_send(channel, LLMOS_ISO_PROGRESS, 0, 0, 0, 0, &fraction, sizeof fraction,
                   message ? message : "", message ? strlen(message) : 0);
}

static llmos_status fail_syscall(const char **response, size_t *response_len, llmos_status status, const char *message) {
    static char text[512];
    snprintf(text, sizeof text, "{\"error\":{\"code\":\"internal\",\"message\":\"%s\"}}", message);
    *response = text;
    *response_len = strlen(text);
    return status;
}

static llmos_status host_syscall(llmos_call_ctx *ctx, const char *service, const char *request, size_t request_len,
                                 const char **response, size_t *response_len) {
    if (!response || !response_len) return LLMOS_ERR_INVALID_ARGUMENT;
    if (!is_current(ctx)) {
        *response = NULL;
        *response_len = 0;
        return LLMOS_ERR_INVALID_ARGUMENT;
    }
    const char *name = service ? service : "";
    size_t name_len = strlen(name);
    /* service NUL request: the kernel splits at the first NUL. */
    char *framed = malloc(name_len + 1);
    if (!framed) return fail_syscall(response, response_len, LLMOS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    memcpy(framed, name, name_len + 1);
    int sent = llmos_iso_send(channel, LLMOS_ISO_SYSCALL, 0, 0, (int32_t)name_len, current.seq,
                              framed, name_len + 1, request ? request : "", request ? request_len : 0);
    free(framed);
    if (sent != 0) _exit(0);   /* the kernel is gone */
    llmos_iso_header header;
    const char *payload;
    for (;;) {
        int r = llmos_iso_recv(channel, 0, LLMOS_ISO_MAX_FRAME, &header, &payload);
        if (r != 1) _exit(0);
        if (header.type == LLMOS_ISO_SYSCALL_REPLY) break;
        if (header.type == LLMOS_ISO_SHUTDOWN) _exit(0);
    }
    free(current.syscall_response);
    current.syscall_response = malloc((size_t)header.length + 1);
    if (!current.syscall_response) return fail_syscall(response, response_len, LLMOS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    memcpy(current.syscall_response, payload, (size_t)header.length + 1);
    *response = current.syscall_response;
    *response_len = header.length;
    return header.a;
}

static llmos_status host_emit(llmos_call_ctx *ctx, const char *event, size_t len) {
    if (!is_current(ctx) || !event) return LLMOS_ERR_INVALID_ARGUMENT;
    if (host_is_cancelled(ctx)) return LLMOS_ERR_CANCELLED;
    if (!llmos_json_validate(event, len)) return LLMOS_ERR_INVALID_ARGUMENT;
    llmos_iso_send(channel, LLMOS_ISO_EMIT, 0, 0, 0, current.seq, event, len, NULL, 0);
    return LLMOS_OK;
}

/* ---- SETUP: a line per setting, "key<TAB>value" ----------------------------- */

typedef struct setup {
    char *library, *entry, *name, *config;
    uint64_t spin_ns;
    sandbox_spec sandbox;
} setup;

static int parse_setup(char *text, setup *s) {
    memset(s, 0, sizeof *s);
    s->spin_ns = HELPER_SPIN_NS;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = 0;
        char *key = line, *value = tab + 1;
        sandbox_spec *sb = &s->sandbox;
        if (!strcmp(key, "library")) s->library = value;
        else if (!strcmp(key, "entry")) s->entry = value;
        else if (!strcmp(key, "name")) s->name = value;
        else if (!strcmp(key, "config")) s->config = value;
        else if (!strcmp(key, "max_output")) max_output = strtoull(value, NULL, 10);
        else if (!strcmp(key, "spin_ns")) s->spin_ns = strtoull(value, NULL, 10);
        else sandbox_spec_set(sb, key, value);
    }
    return s->library && s->entry && s->name;
}

/* ---- READY / FAILED --------------------------------------------------------- */

static void send_failed(const char *kind, int32_t status, const char *message, const char *detail) {
    llmos_json_writer w = LLMOS_JSON_WRITER_INIT;
    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "kind");
    llmos_json_write_string(&w, kind);
    llmos_json_write_key(&w, "status");
    llmos_json_write_int64(&w, status);
    llmos_json_write_key(&w, "message");
    llmos_json_write_string(&w, message ? message : "");
    if (detail) {
        llmos_json_write_key(&w, "detail");
        llmos_json_write_string(&w, detail);
    }
    llmos_json_write_end_object(&w);
    llmos_iso_send(channel, LLMOS_ISO_FAILED, 0, status, 0, 0, w.buf, w.len, NULL, 0);
    llmos_json_writer_free(&w);
}

/* As the helper dies of a fatal signal, it tells the kernel its own peak address
 * space (VmPeak: RLIMIT_AS counts address space), so a crash at the memory limit
 * reads "out of memory" and any other crash does not. /proc/self/status is opened
 * before the sandbox closes the filesystem; the handler uses only pread. */
static int status_fd = -1;

static void report_peak_and_die(int sig) {
    static char text[4096];
    ssize_t n = status_fd >= 0 ? pread(status_fd, text, sizeof text - 1, 0) : -1;
    if (n > 0) {
        text[n] = 0;
        for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
            if (strncmp(line, "VmPeak:", 7)) continue;
            uint64_t kb = 0;
            for (char *c = line + 7; *c && *c != '\n'; c++) if (*c >= '0' && *c <= '9') kb = kb * 10 + (uint64_t)(*c - '0');
            llmos_iso_shared_set_peak_vm(shared, kb);
            break;
        }
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void report_peak_on_fatal_signals(void) {
    static char alternate_stack[64 * 1024];   /* a stack overflow still reports */
    stack_t stack = { .ss_sp = alternate_stack, .ss_size = sizeof alternate_stack, .ss_flags = 0 };
    sigaltstack(&stack, NULL);
    status_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = report_peak_and_die;
    action.sa_flags = SA_ONSTACK | SA_NODEFER | SA_RESETHAND;
    sigemptyset(&action.sa_mask);
    const int fatal[] = { SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGTRAP, SIGFPE };
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) sigaction(fatal[i], &action, NULL);
}

static int run_probe_mode(void) {
    char text[1024];
    sandbox_probe(text, sizeof text);
    llmos_iso_send(channel, LLMOS_ISO_READY, 0, 0, 0, 0, text, strlen(text), NULL, 0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--probe") && fcntl(LLMOS_ISO_SOCKET_FD, F_GETFD) < 0) {
        char text[1024];
        sandbox_probe(text, sizeof text);
        puts(text);
        return 0;
    }
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        puts("llmos-driver-host: runs one `isolation: process` driver inside an OS sandbox.\n"
             "It is started by the llmos kernel, not by hand. `--probe` prints which sandbox\n"
             "layers this Linux supports (Landlock ABI, seccomp, network namespaces).");
        return 0;
    }
    /* The kernel's death ends us; nothing but the channel and stdio stays open. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) return 1;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);   /* an over-large write fails with EFBIG instead of killing */
    close_range(LLMOS_ISO_SHARED_FD + 1, ~0u, 0);
    fcntl(2, F_SETFL, fcntl(2, F_GETFL) | O_NONBLOCK);   /* a chatty driver never blocks on stderr */

    /* A program the driver may exec (with an exec grant) must not inherit the channel. */
    fcntl(LLMOS_ISO_SOCKET_FD, F_SETFD, FD_CLOEXEC);
    fcntl(LLMOS_ISO_SHARED_FD, F_SETFD, FD_CLOEXEC);
    shared = llmos_iso_shared_map(LLMOS_ISO_SHARED_FD);
    if (!shared) return 2;
    report_peak_on_fatal_signals();
    channel = llmos_iso_channel_open(LLMOS_ISO_SOCKET_FD, shared, 1, HELPER_SPIN_NS);
    if (!channel) return 2;

    if (argc > 1 && !strcmp(argv[1], "--probe")) return run_probe_mode();

    llmos_iso_header header;
    const char *payload;
    if (llmos_iso_recv(channel, 0, LLMOS_ISO_MAX_FRAME, &header, &payload) != 1 || header.type != LLMOS_ISO_SETUP) return 3;
    char *setup_text = strdup(payload);
    if (!setup_text) return 2;

    setup s;
    if (!parse_setup(setup_text, &s)) {
        send_failed("setup", LLMOS_ERR_INTERNAL, "the kernel sent an incomplete setup", NULL);
        return 3;
    }
    llmos_iso_channel_set_spin(channel, s.spin_ns);

    char report[2048], error[1024];
    if (sandbox_apply(&s.sandbox, report, sizeof report, error, sizeof error) != 0) {
        send_failed("sandbox", LLMOS_ERR_UNAVAILABLE, error, NULL);
        return 4;
    }

    /* Only now does any code of the driver's run. */
    void *handle = dlopen(s.library, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *reason = dlerror();
        send_failed("dlopen", LLMOS_ERR_INTERNAL, reason ? reason : "unknown error", NULL);
        return 5;
    }
    void *symbol = dlsym(handle, s.entry);
    if (!symbol) {
        char other[32] = "";
        for (int major = 0; major <= 9; major++) {
            char name[32];
            snprintf(name, sizeof name, "llmos_driver_entry_v%d", major);
            if (major != LLMOS_ABI_MAJOR && dlsym(handle, name)) { snprintf(other, sizeof other, "%d", major); break; }
        }
        send_failed("no_entry", LLMOS_ERR_INTERNAL, s.entry, other[0] ? other : NULL);
        return 5;
    }

    memset(&host_table, 0, sizeof host_table);
    host_table.struct_size = sizeof host_table;
    host_table.abi_minor = LLMOS_ABI_MINOR;
    host_table.log = host_log;
    host_table.set_output = host_set_output;
    host_table.set_error = host_set_error;
    host_table.is_cancelled = host_is_cancelled;
    host_table.progress = host_progress;
    host_table.syscall = host_syscall;
    host_table.emit = host_emit;

    const llmos_driver *described = NULL;
    llmos_status status = ((llmos_driver_entry_fn)symbol)(&host_table, &described);
    if (status != LLMOS_OK) { send_failed("refused", status, s.entry, NULL); return 6; }
    if (!described) { send_failed("no_description", LLMOS_ERR_ABI, s.entry, NULL); return 6; }
    if (described->struct_size < LLMOS_DRIVER_MIN_SIZE) {
        char size[32];
        snprintf(size, sizeof size, "%u", described->struct_size);
        send_failed("small_struct", LLMOS_ERR_ABI, size, NULL);
        return 6;
    }
    llmos_driver table;
    memset(&table, 0, sizeof table);
    memcpy(&table, described, described->struct_size < sizeof table ? described->struct_size : sizeof table);
    if (!table.name) { send_failed("no_name", LLMOS_ERR_ABI, "", NULL); return 6; }
    if (!table.call) { send_failed("no_call", LLMOS_ERR_ABI, "", NULL); return 6; }

    /* Describe ourselves before create, so the kernel can check name and operations. */
    llmos_json_writer w = LLMOS_JSON_WRITER_INIT;
    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "name");
    llmos_json_write_string(&w, table.name);
    llmos_json_write_key(&w, "version");
    llmos_json_write_string(&w, table.version ? table.version : "");
    llmos_json_write_key(&w, "abi_minor");
    llmos_json_write_int64(&w, table.abi_minor);
    llmos_json_write_key(&w, "operations");
    llmos_json_write_begin_array(&w);
    for (int i = 0; table.operations && table.operations[i] && i < 100000; i++) llmos_json_write_string(&w, table.operations[i]);
    llmos_json_write_end_array(&w);
    llmos_json_write_key(&w, "pid");
    llmos_json_write_int64(&w, getpid());
    llmos_json_write_end_object(&w);
    /* The sandbox report is a JSON object body: splice it in as "sandbox". */
    char *described_json = malloc(w.len + strlen(report) + 32);
    if (!described_json) return 2;
    sprintf(described_json, "%.*s,\"sandbox\":{%s}}", (int)w.len - 1, w.buf, report);
    llmos_json_writer_free(&w);
    llmos_iso_send(channel, LLMOS_ISO_READY, 0, 0, 0, 0, described_json, strlen(described_json), NULL, 0);
    free(described_json);

    void *instance = NULL;
    if (table.create) {
        const char *config = s.config ? s.config : "{}";
        status = table.create(&host_table, config, strlen(config), &instance);
    }
    llmos_iso_send(channel, LLMOS_ISO_READY, 1, status, 0, 0, NULL, 0, NULL, 0);
    if (status != LLMOS_OK) return 7;

    for (;;) {
        int r = llmos_iso_recv(channel, 0, LLMOS_ISO_MAX_FRAME, &header, &payload);
        if (r != 1 || header.type == LLMOS_ISO_SHUTDOWN) break;
        if (header.type != LLMOS_ISO_CALL) continue;
        size_t op_len = (size_t)header.b;
        if (op_len >= header.length) break;   /* malformed: the kernel never sends this */
        const char *op = payload;
        const char *input = payload + op_len + 1;
        size_t input_len = header.length - op_len - 1;

        current.seq = header.c;
        current.deadline_ns = header.a > 0 ? now_ns() + (uint64_t)header.a * 1000000ull : 0;
        current.has_output = 0;
        current.rejected = 0;
        current.error_status = 0;
        current.active = 1;
        /* CPU time: each call may use up to its timeout more than was used so far
         * (a backstop; the kernel's wall-clock supervision ends a hang first). */
        if (header.a > 0) {
            struct rusage used;
            getrusage(RUSAGE_SELF, &used);
            rlim_t seconds = (rlim_t)used.ru_utime.tv_sec + (rlim_t)used.ru_stime.tv_sec + (rlim_t)(header.a / 1000) + 2;
            struct rlimit cpu = { seconds, RLIM_INFINITY };
            setrlimit(RLIMIT_CPU, &cpu);
        }
        llmos_status returned = table.call(instance, (llmos_call_ctx *)&current, op, input, input_len);
        current.active = 0;

        uint16_t flags = 0;
        const char *out = NULL;
        size_t out_len = 0;
        if (current.rejected) flags |= LLMOS_ISO_REJECTED;
        if (current.error_status != LLMOS_OK) {
            flags |= LLMOS_ISO_HAS_ERROR;
            out = current.error_message ? current.error_message : "";
            out_len = current.error_message ? strlen(current.error_message) : 0;
        } else if (current.has_output) {
            flags |= LLMOS_ISO_HAS_OUTPUT;
            out = current.output;
            out_len = current.output_len;
        }
        if (llmos_iso_send(channel, LLMOS_ISO_RESULT, flags, returned, current.error_status, current.rejected,
                           out, out_len, NULL, 0) != 0) break;
        free(current.output); current.output = NULL;
        free(current.error_message); current.error_message = NULL;
        free(current.syscall_response); current.syscall_response = NULL;
    }
    if (table.destroy) table.destroy(instance);
    return 0;
}
