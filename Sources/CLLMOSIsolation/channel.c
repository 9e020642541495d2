/* The kernel <-> helper channel: see CLLMOSIsolation.h. */
#define _GNU_SOURCE
#include "CLLMOSIsolation.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct llmos_iso_shared {
    _Atomic uint64_t bell[2];          /* frames written towards side 0 (kernel) and side 1 (helper) */
    char pad[64 - 2 * sizeof(uint64_t)];
    _Atomic uint64_t cancel_seq;       /* the call sequence the kernel cancelled */
    _Atomic uint64_t peak_vm_kb;       /* the helper's VmPeak, written as it dies of a fatal signal */
} llmos_iso_shared;

struct llmos_iso_channel {
    int fd;
    int side;
    llmos_iso_shared *shared;
    uint64_t received;
    uint64_t spin_ns;
    char *buf;
    size_t cap;
    pthread_mutex_t send_lock;
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

void *llmos_iso_shared_create(int *fd_out) {
    int fd = memfd_create("llmos-isolation", MFD_CLOEXEC);
    if (fd < 0) return NULL;
    if (ftruncate(fd, 4096) != 0) { close(fd); return NULL; }
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) { close(fd); return NULL; }
    *fd_out = fd;
    return p;
}

void *llmos_iso_shared_map(int fd) {
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

void llmos_iso_shared_unmap(void *shared) { if (shared) munmap(shared, 4096); }

void llmos_iso_shared_cancel(void *shared, uint64_t seq) {
    atomic_store_explicit(&((llmos_iso_shared *)shared)->cancel_seq, seq, memory_order_release);
}

void llmos_iso_shared_set_peak_vm(void *shared, uint64_t kb) {
    atomic_store_explicit(&((llmos_iso_shared *)shared)->peak_vm_kb, kb, memory_order_release);
}

uint64_t llmos_iso_shared_peak_vm(void *shared) {
    return atomic_load_explicit(&((llmos_iso_shared *)shared)->peak_vm_kb, memory_order_acquire);
}

uint64_t llmos_iso_shared_cancelled(void *shared) {
    return atomic_load_explicit(&((llmos_iso_shared *)shared)->cancel_seq, memory_order_acquire);
}

llmos_iso_channel *llmos_iso_channel_open(int fd, void *shared, int side, uint64_t spin_ns) {
    llmos_iso_channel *ch = calloc(1, sizeof *ch);
    if (!ch) return NULL;
    ch->fd = fd;
    ch->side = side;
    ch->shared = shared;
    ch->spin_ns = spin_ns;
    ch->cap = 4096;
    ch->buf = malloc(ch->cap);
    if (!ch->buf) { free(ch); return NULL; }
    pthread_mutex_init(&ch->send_lock, NULL);
    return ch;
}

void llmos_iso_channel_free(llmos_iso_channel *ch) {
    if (!ch) return;
    pthread_mutex_destroy(&ch->send_lock);
    free(ch->buf);
    free(ch);
}

void llmos_iso_channel_set_spin(llmos_iso_channel *ch, uint64_t spin_ns) { ch->spin_ns = spin_ns; }

int llmos_iso_send(llmos_iso_channel *ch, uint16_t type, uint16_t flags, int32_t a, int32_t b,
                   uint64_t c, const void *p1, size_t n1, const void *p2, size_t n2) {
    if (n1 + n2 > LLMOS_ISO_MAX_FRAME) return -EMSGSIZE;
    llmos_iso_header h = { (uint32_t)(n1 + n2), type, flags, a, b, c };
    struct iovec iov[3] = { { &h, sizeof h }, { (void *)p1, n1 }, { (void *)p2, n2 } };
    int count = 3, first = 0;
    int result = 0;
    pthread_mutex_lock(&ch->send_lock);
    while (first < count) {
        struct msghdr msg = { 0 };
        msg.msg_iov = iov + first;
        msg.msg_iovlen = (size_t)(count - first);
        ssize_t sent = sendmsg(ch->fd, &msg, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR) continue;
            result = -errno;
            break;
        }
        size_t left = (size_t)sent;
        while (first < count && left >= iov[first].iov_len) { left -= iov[first].iov_len; first++; }
        if (first < count) {
            iov[first].iov_base = (char *)iov[first].iov_base + left;
            iov[first].iov_len -= left;
        }
    }
    if (result == 0)   /* ring the peer's bell only once the whole frame is in the socket */
        atomic_fetch_add_explicit(&ch->shared->bell[1 - ch->side], 1, memory_order_release);
    pthread_mutex_unlock(&ch->send_lock);
    return result;
}

static int read_fully(int fd, void *p, size_t n) {
    char *c = p;
    while (n > 0) {
        ssize_t r = read(fd, c, n);
        if (r < 0) { if (errno == EINTR) continue; return -2; }
        if (r == 0) return -1;
        c += r;
        n -= (size_t)r;
    }
    return 1;
}

int llmos_iso_recv(llmos_iso_channel *ch, uint64_t deadline_ns, uint32_t max_len,
                   llmos_iso_header *header, const char **payload) {
    _Atomic uint64_t *bell = &ch->shared->bell[ch->side];
    int ready = atomic_load_explicit(bell, memory_order_acquire) > ch->received;
    if (!ready && ch->spin_ns > 0) {
        uint64_t spin_end = now_ns() + ch->spin_ns;
        if (deadline_ns && deadline_ns < spin_end) spin_end = deadline_ns;
        for (unsigned i = 0; !ready; i++) {
            cpu_relax();
            ready = atomic_load_explicit(bell, memory_order_acquire) > ch->received;
            if ((i & 63) == 63) {
                if (now_ns() >= spin_end) break;
                /* On a crowded machine the peer may be waiting for a CPU: offer ours. */
                if ((i & 1023) == 1023) sched_yield();
            }
        }
    }
    while (!ready) {
        int timeout = -1;
        if (deadline_ns) {
            uint64_t now = now_ns();
            if (now >= deadline_ns) return 0;
            uint64_t left = (deadline_ns - now + 999999) / 1000000;
            timeout = left > 60000 ? 60000 : (int)left;
        }
        struct pollfd p = { ch->fd, POLLIN, 0 };
        int r = poll(&p, 1, timeout);
        if (r < 0) { if (errno == EINTR) continue; return -2; }
        if (r > 0) break;   /* readable, or hung up: the read says which */
        if (!deadline_ns) continue;
    }
    int r = read_fully(ch->fd, header, sizeof *header);
    if (r != 1) return r;
    if (header->length > max_len) return -2;
    if ((size_t)header->length + 1 > ch->cap) {
        size_t cap = ch->cap;
        while (cap < (size_t)header->length + 1) cap *= 2;
        char *bigger = realloc(ch->buf, cap);
        if (!bigger) return -2;
        ch->buf = bigger;
        ch->cap = cap;
    }
    if (header->length > 0) {
        r = read_fully(ch->fd, ch->buf, header->length);
        if (r != 1) return r == -1 ? -1 : -2;
    }
    ch->buf[header->length] = 0;
    ch->received++;
    *payload = ch->buf;
    return 1;
}

int llmos_iso_socketpair(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0 ? 0 : errno;
}

int llmos_iso_pipe(int fds[2]) {
    if (pipe2(fds, O_CLOEXEC) != 0) return errno;
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    return 0;
}

int llmos_iso_spawn(const char *path, const char *arg1, char *const envp[],
                    int socket_fd, int shared_fd, int stderr_fd, pid_t *pid) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    if (stderr_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stderr_fd, 2);
    else posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    /* dup2 clears close-on-exec on the copies; the originals stay CLOEXEC. */
    posix_spawn_file_actions_adddup2(&actions, socket_fd, LLMOS_ISO_SOCKET_FD);
    posix_spawn_file_actions_adddup2(&actions, shared_fd, LLMOS_ISO_SHARED_FD);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    char *argv[3] = { (char *)path, (char *)arg1, NULL };
    int rc = posix_spawn(pid, path, &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    return rc;
}

int llmos_iso_reap(pid_t pid, int *status, long *maxrss_kb) {
    struct rusage usage;
    memset(&usage, 0, sizeof usage);
    pid_t r;
    do { r = wait4(pid, status, WNOHANG, &usage); } while (r < 0 && errno == EINTR);
    if (r < 0) return -1;
    if (r == 0) return 0;
    if (maxrss_kb) *maxrss_kb = usage.ru_maxrss;
    return 1;
}

int llmos_iso_reap_wait(pid_t pid, int timeout_ms, int *status, long *maxrss_kb) {
    uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        int r = llmos_iso_reap(pid, status, maxrss_kb);
        if (r != 0) return r;
        if (now_ns() >= end) return 0;
        struct timespec pause = { 0, 1000000 };   /* 1 ms */
        nanosleep(&pause, NULL);
    }
}

int llmos_iso_exited(int status) { return WIFEXITED(status); }
int llmos_iso_exit_code(int status) { return WEXITSTATUS(status); }
int llmos_iso_signaled(int status) { return WIFSIGNALED(status); }
int llmos_iso_term_signal(int status) { return WTERMSIG(status); }

size_t llmos_iso_drain(int fd, char *buf, size_t cap) {
    size_t total = 0;
    while (total < cap) {
        ssize_t r = read(fd, buf + total, cap - total);
        if (r <= 0) { if (r < 0 && errno == EINTR) continue; break; }
        total += (size_t)r;
    }
    return total;
}
