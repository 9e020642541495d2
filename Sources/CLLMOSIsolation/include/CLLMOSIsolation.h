#ifndef CLLMOS_ISOLATION_H
#define CLLMOS_ISOLATION_H
/* The wire between the kernel and an isolated driver's helper process
 * (llmos-driver-host): length-prefixed frames over a socketpair, plus one shared
 * page holding two doorbells and a cancel word.
 *
 * Why the doorbells: on this VM a blocking socketpair round trip across two
 * cores costs ~47 µs, almost all of it the wake-up. A reader first spins (a few
 * tens of µs) on the peer's doorbell, which the writer bumps right after its
 * write, and only then blocks in poll(2). A call answered quickly never sleeps.
 *
 * Threads: a channel's send may be called from any thread (it takes a lock:
 * drivers may log from their own threads); recv from one thread at a time.
 * Ownership: a payload returned by recv lives in the channel's buffer until the
 * next recv on that channel. */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Frame types. K: kernel to helper, H: helper to kernel. */
enum {
    LLMOS_ISO_SETUP = 1,         /* K: JSON: library, entry, config, sandbox, limits */
    LLMOS_ISO_READY = 2,         /* H: JSON: name, version, abi_minor, operations, sandbox report */
    LLMOS_ISO_FAILED = 3,        /* H: JSON: kind, message, status, log */
    LLMOS_ISO_CALL = 4,          /* K: a = timeout ms, b = op length, c = call sequence; op NUL input */
    LLMOS_ISO_RESULT = 5,        /* H: a = returned status, b = set_error status, c = rejected size; payload */
    LLMOS_ISO_LOG = 6,           /* H: a = level, b = 1 when inside a call; message */
    LLMOS_ISO_PROGRESS = 7,      /* H: payload: double fraction, then the message */
    LLMOS_ISO_SYSCALL = 8,       /* H: b = service length; service NUL request */
    LLMOS_ISO_SYSCALL_REPLY = 9, /* K: a = status; response JSON */
    LLMOS_ISO_EMIT = 10,         /* H: a streamed event (JSON) */
    LLMOS_ISO_SHUTDOWN = 11      /* K: destroy the instance and exit 0 */
};

/* RESULT flags. */
#define LLMOS_ISO_HAS_OUTPUT   1u  /* payload is the output */
#define LLMOS_ISO_HAS_ERROR    2u  /* payload is the error message (b is the status) */
#define LLMOS_ISO_REJECTED     4u  /* set_output was over the limit; c = its size */

typedef struct llmos_iso_header {
    uint32_t length;  /* payload bytes after the header */
    uint16_t type;
    uint16_t flags;
    int32_t a;
    int32_t b;
    uint64_t c;
} llmos_iso_header;

/* The fds the helper finds its channel on. */
#define LLMOS_ISO_SOCKET_FD 3
#define LLMOS_ISO_SHARED_FD 4

/* The largest frame either side accepts (a bigger length is a protocol error). */
#define LLMOS_ISO_MAX_FRAME (64u << 20)

typedef struct llmos_iso_channel llmos_iso_channel;

/* The shared page: a memfd of one page. Create on the kernel side (returns the
 * mapping, and the fd to pass at LLMOS_ISO_SHARED_FD), map on the helper side. */
void *llmos_iso_shared_create(int *fd_out);
void *llmos_iso_shared_map(int fd);
void llmos_iso_shared_unmap(void *shared);
/* Cancel the call with sequence `seq` (the helper's is_cancelled turns true). */
void llmos_iso_shared_cancel(void *shared, uint64_t seq);
uint64_t llmos_iso_shared_cancelled(void *shared);
/* The helper's peak address space in kB (its own VmPeak, after exec), which it
 * stores as it dies of a fatal signal; 0 when it died without saying (SIGKILL).
 * Not wait4's ru_maxrss: that includes the spawning process's peak, because the
 * child ran in the parent's memory until exec. */
void llmos_iso_shared_set_peak_vm(void *shared, uint64_t kb);
uint64_t llmos_iso_shared_peak_vm(void *shared);

/* side: 0 for the kernel, 1 for the helper. spin_ns: how long recv spins on the
 * doorbell before blocking. The channel owns neither fd nor mapping. */
llmos_iso_channel *llmos_iso_channel_open(int fd, void *shared, int side, uint64_t spin_ns);
void llmos_iso_channel_free(llmos_iso_channel *ch);
void llmos_iso_channel_set_spin(llmos_iso_channel *ch, uint64_t spin_ns);

/* Sends one frame made of the header fields and up to two payload pieces.
 * 0, or -errno (-EPIPE when the peer is gone). Never raises SIGPIPE. */
int llmos_iso_send(llmos_iso_channel *ch, uint16_t type, uint16_t flags, int32_t a, int32_t b,
                   uint64_t c, const void *p1, size_t n1, const void *p2, size_t n2);

/* Receives one frame, waiting until `deadline_ns` (CLOCK_MONOTONIC; 0 waits for
 * ever). Returns 1 with *header and *payload (NUL-terminated, not counted) set;
 * 0 on timeout; -1 when the peer closed the connection; -2 on a read error or
 * a frame over max_len (the channel is then unusable). */
int llmos_iso_recv(llmos_iso_channel *ch, uint64_t deadline_ns, uint32_t max_len,
                   llmos_iso_header *header, const char **payload);

/* Starts `path` with argv {path, arg1, NULL} and the environment `envp`
 * (NULL-terminated "K=V" strings), `socket_fd` at fd 3, `shared_fd` at fd 4,
 * stdin and stdout on /dev/null and stderr on `stderr_fd` (or /dev/null when -1).
 * 0 with *pid set, or an errno. */
int llmos_iso_spawn(const char *path, const char *arg1, char *const envp[],
                    int socket_fd, int shared_fd, int stderr_fd, pid_t *pid);

/* A socketpair (SOCK_STREAM, CLOEXEC): 0 or errno. */
int llmos_iso_socketpair(int fds[2]);
/* A pipe with CLOEXEC, the read end non-blocking: 0 or errno. */
int llmos_iso_pipe(int fds[2]);

/* waitpid without blocking: 1 reaped (status in *status, peak resident KiB in
 * *maxrss_kb), 0 still running, -1 error (not our child). */
int llmos_iso_reap(pid_t pid, int *status, long *maxrss_kb);
/* Blocks until pid exits or `timeout_ms` passes: 1 reaped, 0 still running. */
int llmos_iso_reap_wait(pid_t pid, int timeout_ms, int *status, long *maxrss_kb);

/* Status decoding for Swift (the W* macros are not importable). */
int llmos_iso_exited(int status);
int llmos_iso_exit_code(int status);
int llmos_iso_signaled(int status);
int llmos_iso_term_signal(int status);

/* Reads what is waiting on a non-blocking fd into buf (up to cap): bytes read. */
size_t llmos_iso_drain(int fd, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
