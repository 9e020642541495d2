/* See sandbox.h. Constants are spelled out here because Debian 12's headers
 * predate Landlock ABI 4-7; the values are fixed by the kernel ABI. */
#define _GNU_SOURCE
#include "llmos_sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif

#define LL_CREATE_RULESET_VERSION (1u << 0)
#define LL_RULE_PATH_BENEATH 1
#define LL_RULE_NET_PORT 2

#define LL_FS_EXECUTE     (1ull << 0)
#define LL_FS_WRITE_FILE  (1ull << 1)
#define LL_FS_READ_FILE   (1ull << 2)
#define LL_FS_READ_DIR    (1ull << 3)
#define LL_FS_REMOVE_DIR  (1ull << 4)
#define LL_FS_REMOVE_FILE (1ull << 5)
#define LL_FS_MAKE_CHAR   (1ull << 6)
#define LL_FS_MAKE_DIR    (1ull << 7)
#define LL_FS_MAKE_REG    (1ull << 8)
#define LL_FS_MAKE_SOCK   (1ull << 9)
#define LL_FS_MAKE_FIFO   (1ull << 10)
#define LL_FS_MAKE_BLOCK  (1ull << 11)
#define LL_FS_MAKE_SYM    (1ull << 12)
#define LL_FS_REFER       (1ull << 13) /* ABI 2 */
#define LL_FS_TRUNCATE    (1ull << 14) /* ABI 3 */
#define LL_FS_IOCTL_DEV   (1ull << 15) /* ABI 5 */
#define LL_NET_BIND_TCP    (1ull << 0) /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ull << 1) /* ABI 4 */
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ull << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL               (1ull << 1) /* ABI 6 */

struct ll_ruleset_attr { uint64_t handled_access_fs, handled_access_net, scoped; };
struct ll_path_beneath { uint64_t allowed_access; int32_t parent_fd; } __attribute__((packed));
struct ll_net_port { uint64_t allowed_access; uint64_t port; };

/* Access that only applies to files (the kernel refuses directory-only bits on a file rule). */
#define LL_FILE_BITS (LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV)

#define APPEND(...) do { size_t used_ = strlen(report); \
    if (used_ < report_cap) snprintf(report + used_, report_cap - used_, __VA_ARGS__); } while (0)

int sandbox_spec_set(sandbox_spec *sb, const char *key, const char *value) {
    if (!strcmp(key, "landlock")) sb->landlock = atoi(value);
    else if (!strcmp(key, "seccomp")) sb->seccomp = atoi(value);
    else if (!strcmp(key, "allow_exec")) sb->allow_exec = atoi(value);
    else if (!strcmp(key, "net")) sb->net_mode = !strcmp(value, "any") ? 2 : !strcmp(value, "ports") ? 1 : 0;
    else if (!strcmp(key, "port")) {
        if (sb->port_count < SANDBOX_MAX_PORTS) sb->ports[sb->port_count++] = (uint16_t)atoi(value);
        else sb->dropped++;
    }
    else if (!strcmp(key, "memory_mb")) sb->memory_mb = strtoull(value, NULL, 10);
    else if (!strcmp(key, "open_files")) sb->open_files = strtoull(value, NULL, 10);
    else if (!strcmp(key, "file_size_mb")) sb->file_size_mb = strtoull(value, NULL, 10);
    else if (!strcmp(key, "processes")) sb->processes = strtoull(value, NULL, 10);
    else {
        enum sandbox_access access;
        if (!strcmp(key, "read")) access = ACCESS_READ;
        else if (!strcmp(key, "write")) access = ACCESS_WRITE;
        else if (!strcmp(key, "exec")) access = ACCESS_EXEC;
        else if (!strcmp(key, "lib")) access = ACCESS_LIB;
        else if (!strcmp(key, "device")) access = ACCESS_DEVICE;
        else return 0;
        if (sb->path_count >= SANDBOX_MAX_PATHS) { sb->dropped++; return 1; }
        sb->paths[sb->path_count].path = value;
        sb->paths[sb->path_count].access = access;
        sb->path_count++;
    }
    return 1;
}

void sandbox_spec_parse(sandbox_spec *spec, char *text) {
    char *line = text;
    while (line && *line) {
        char *end = strchr(line, '\n');
        if (end) *end = 0;
        char *tab = strchr(line, '\t');
        if (tab) {
            *tab = 0;
            sandbox_spec_set(spec, line, tab + 1);
        }
        line = end ? end + 1 : NULL;
    }
}

int sandbox_landlock_abi(const char **why) {
    long abi = syscall(__NR_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
    if (abi < 0) {
        if (why) *why = errno == ENOSYS ? "this Linux was built without Landlock (CONFIG_SECURITY_LANDLOCK)"
                      : errno == EOPNOTSUPP ? "Landlock is built in but not enabled (add landlock to the lsm= boot parameter)"
                      : strerror(errno);
        return 0;
    }
    return (int)abi;
}

static uint64_t handled_fs(int abi) {
    uint64_t bits = (LL_FS_MAKE_SYM << 1) - 1;   /* ABI 1: bits 0..12 */
    if (abi >= 2) bits |= LL_FS_REFER;
    if (abi >= 3) bits |= LL_FS_TRUNCATE;
    if (abi >= 5) bits |= LL_FS_IOCTL_DEV;
    return bits;
}

static uint64_t access_bits(enum sandbox_access access) {
    switch (access) {
    case ACCESS_READ: return LL_FS_READ_FILE | LL_FS_READ_DIR;
    case ACCESS_LIB: return LL_FS_READ_FILE | LL_FS_READ_DIR | LL_FS_EXECUTE;
    case ACCESS_EXEC: return LL_FS_READ_FILE | LL_FS_READ_DIR | LL_FS_EXECUTE;
    case ACCESS_WRITE: return LL_FS_WRITE_FILE | LL_FS_REMOVE_DIR | LL_FS_REMOVE_FILE | LL_FS_MAKE_DIR
                              | LL_FS_MAKE_REG | LL_FS_MAKE_SYM | LL_FS_REFER | LL_FS_TRUNCATE;
    case ACCESS_DEVICE: return LL_FS_READ_FILE | LL_FS_WRITE_FILE;
    }
    return 0;
}

static int apply_landlock(const sandbox_spec *spec, char *report, size_t report_cap, char *error, size_t error_cap) {
    const char *why = NULL;
    int abi = sandbox_landlock_abi(&why);
    if (abi <= 0) {
        snprintf(error, error_cap, "Landlock is not available: %s", why ? why : "unknown");
        return -1;
    }
    struct ll_ruleset_attr attr = { 0 };
    attr.handled_access_fs = handled_fs(abi);
    size_t attr_size = sizeof(uint64_t);
    if (abi >= 4) {
        /* Binding is never granted; connecting is restricted to the granted ports,
         * or left to the network namespace / the grants when any port is allowed. */
        attr.handled_access_net = LL_NET_BIND_TCP | (spec->net_mode == 2 ? 0 : LL_NET_CONNECT_TCP);
        attr_size = 2 * sizeof(uint64_t);
    }
    if (abi >= 6) {
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
        attr_size = sizeof attr;
    }
    int ruleset = (int)syscall(__NR_landlock_create_ruleset, &attr, attr_size, 0);
    if (ruleset < 0) {
        snprintf(error, error_cap, "landlock_create_ruleset: %s", strerror(errno));
        return -1;
    }
    int granted = 0, missing = 0;
    for (int i = 0; i < spec->path_count; i++) {
        int fd = open(spec->paths[i].path, O_PATH | O_CLOEXEC);
        if (fd < 0) { missing++; continue; }   /* nothing there to grant */
        struct stat st;
        uint64_t allowed = access_bits(spec->paths[i].access) & attr.handled_access_fs;
        if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode)) allowed &= LL_FILE_BITS;
        struct ll_path_beneath rule = { allowed, fd };
        if (allowed && syscall(__NR_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &rule, 0) != 0) {
            snprintf(error, error_cap, "landlock_add_rule %s: %s", spec->paths[i].path, strerror(errno));
            close(fd);
            close(ruleset);
            return -1;
        }
        granted++;
        close(fd);
    }
    if (abi >= 4 && spec->net_mode == 1) {
        for (int i = 0; i < spec->port_count; i++) {
            struct ll_net_port rule = { LL_NET_CONNECT_TCP, spec->ports[i] };
            if (syscall(__NR_landlock_add_rule, ruleset, LL_RULE_NET_PORT, &rule, 0) != 0) {
                snprintf(error, error_cap, "landlock_add_rule port %u: %s", spec->ports[i], strerror(errno));
                close(ruleset);
                return -1;
            }
        }
    }
    if (syscall(__NR_landlock_restrict_self, ruleset, 0) != 0) {
        snprintf(error, error_cap, "landlock_restrict_self: %s", strerror(errno));
        close(ruleset);
        return -1;
    }
    close(ruleset);
    APPEND("\"landlock\":{\"abi\":%d,\"path_rules\":%d,\"paths_absent\":%d,\"tcp_ports\":%s,\"scoped\":%s},",
           abi, granted, missing,
           abi < 4 ? "\"not restricted (Landlock ABI < 4)\"" : spec->net_mode == 2 ? "\"any\"" : spec->net_mode == 1 ? "\"granted only\"" : "\"none\"",
           abi >= 6 ? "true" : "false");
    return 0;
}

/* ---- seccomp ------------------------------------------------------------ */

#if defined(__x86_64__)
#define SECCOMP_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SECCOMP_ARCH AUDIT_ARCH_AARCH64
#endif

#define DENY(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
                 BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))

static int apply_seccomp(const sandbox_spec *spec, char *report, size_t report_cap, char *error, size_t error_cap) {
#ifndef SECCOMP_ARCH
    (void)spec;
    snprintf(error, error_cap, "seccomp: no filter for this CPU architecture");
    return -1;
#else
    /* A deny list: what no driver needs and what would let it escape or attack the
     * machine. Refused with EPERM, so a driver sees an ordinary error. */
    static const int always_denied[] = {
        __NR_ptrace, __NR_process_vm_readv, __NR_process_vm_writev, __NR_mount, __NR_umount2,
        __NR_pivot_root, __NR_chroot, __NR_swapon, __NR_swapoff, __NR_reboot, __NR_kexec_load,
#ifdef __NR_kexec_file_load
        __NR_kexec_file_load,
#endif
        __NR_init_module, __NR_finit_module, __NR_delete_module, __NR_unshare, __NR_setns,
        __NR_bpf, __NR_perf_event_open, __NR_keyctl, __NR_add_key, __NR_request_key, __NR_acct,
        __NR_settimeofday, __NR_clock_settime, __NR_adjtimex, __NR_quotactl, __NR_open_by_handle_at,
        __NR_name_to_handle_at, __NR_userfaultfd, __NR_syslog, __NR_vhangup,
        __NR_io_uring_setup, __NR_io_uring_enter, __NR_io_uring_register,
#ifdef __NR_fsopen
        __NR_fsopen, __NR_fsconfig, __NR_fsmount, __NR_fspick, __NR_move_mount, __NR_open_tree,
#endif
#if defined(__x86_64__)
        __NR_iopl, __NR_ioperm,
#endif
    };
    static const int exec_denied[] = {
        __NR_execve, __NR_execveat,
#if defined(__x86_64__)
        __NR_fork, __NR_vfork,
#endif
    };
    struct sock_filter program[160];
    int n = 0;
    program[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    program[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SECCOMP_ARCH, 1, 0);
    program[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    program[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
    /* x32 system calls reach the same kernel code under other numbers: refuse them all. */
    program[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1);
    program[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
#endif
    for (size_t i = 0; i < sizeof always_denied / sizeof always_denied[0]; i++) {
        struct sock_filter pair[2] = { DENY((unsigned)always_denied[i]) };
        program[n++] = pair[0];
        program[n++] = pair[1];
    }
    if (!spec->allow_exec) {
        for (size_t i = 0; i < sizeof exec_denied / sizeof exec_denied[0]; i++) {
            struct sock_filter pair[2] = { DENY((unsigned)exec_denied[i]) };
            program[n++] = pair[0];
            program[n++] = pair[1];
        }
        /* clone3 passes its flags in memory a filter cannot read: say ENOSYS so libc
         * falls back to clone, whose flags it can. Threads (CLONE_THREAD) only. */
        program[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1);
        program[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
        program[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 4);
        program[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));
        program[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x00010000 /* CLONE_THREAD */, 0, 1);
        program[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        program[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
    }
    program[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = { (unsigned short)n, program };
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        snprintf(error, error_cap, "seccomp: %s", strerror(errno));
        return -1;
    }
    APPEND("\"seccomp\":{\"instructions\":%d,\"exec\":%s},", n, spec->allow_exec ? "true" : "false");
    return 0;
#endif
}

static int set_limit(int resource, uint64_t value, const char *name, char *error, size_t error_cap) {
    struct rlimit limit = { (rlim_t)value, (rlim_t)value };
    if (setrlimit(resource, &limit) != 0) {
        snprintf(error, error_cap, "setrlimit %s: %s", name, strerror(errno));
        return -1;
    }
    return 0;
}

int sandbox_apply(const sandbox_spec *spec, char *report, size_t report_cap, char *error, size_t error_cap) {
    report[0] = 0;
    if (spec->net_mode == 0) {
        /* As root a network namespace needs no user namespace; as anyone else it does. */
        if (unshare(CLONE_NEWNET) != 0 && unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) {
            snprintf(error, error_cap, "no network grant, but a network namespace could not be made: %s "
                     "(user namespaces may be disabled: sysctl kernel.unprivileged_userns_clone / user.max_user_namespaces)",
                     strerror(errno));
            return -1;
        }
        APPEND("\"network\":\"own empty namespace\",");
    } else {
        APPEND("\"network\":\"%s\",", spec->net_mode == 1 ? "granted ports" : "any port");
    }
    if (spec->memory_mb && set_limit(RLIMIT_AS, spec->memory_mb << 20, "RLIMIT_AS", error, error_cap)) return -1;
    if (spec->open_files && set_limit(RLIMIT_NOFILE, spec->open_files, "RLIMIT_NOFILE", error, error_cap)) return -1;
    if (spec->file_size_mb && set_limit(RLIMIT_FSIZE, spec->file_size_mb << 20, "RLIMIT_FSIZE", error, error_cap)) return -1;
    if (set_limit(RLIMIT_CORE, 0, "RLIMIT_CORE", error, error_cap)) return -1;
    if (spec->allow_exec && spec->processes && set_limit(RLIMIT_NPROC, spec->processes, "RLIMIT_NPROC", error, error_cap)) return -1;
    APPEND("\"rlimits\":{\"memory_mb\":%llu,\"open_files\":%llu,\"file_size_mb\":%llu},",
           (unsigned long long)spec->memory_mb, (unsigned long long)spec->open_files, (unsigned long long)spec->file_size_mb);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        snprintf(error, error_cap, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
        return -1;
    }
    if (spec->landlock && apply_landlock(spec, report, report_cap, error, error_cap)) return -1;
    if (!spec->landlock) APPEND("\"landlock\":false,");
    if (spec->seccomp && apply_seccomp(spec, report, report_cap, error, error_cap)) return -1;
    if (!spec->seccomp) APPEND("\"seccomp\":false,");
    size_t used = strlen(report);
    if (used && report[used - 1] == ',') report[used - 1] = 0;
    return 0;
}

void sandbox_probe(char *out, size_t cap) {
    const char *why = NULL;
    int abi = sandbox_landlock_abi(&why);
    int netns = unshare(CLONE_NEWNET) == 0 || unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0;
    const char *netns_why = netns ? "" : strerror(errno);
    int nnp = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0;
    int seccomp = 0;
    const char *seccomp_why = "";
#ifdef SECCOMP_ARCH
    struct sock_filter allow[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
    struct sock_fprog prog = { 1, allow };
    seccomp = nnp && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
    if (!seccomp) seccomp_why = strerror(errno);
#else
    seccomp_why = "no filter for this CPU architecture";
#endif
    snprintf(out, cap,
             "{\"landlock_abi\":%d,\"landlock_problem\":\"%s\",\"seccomp\":%s,\"seccomp_problem\":\"%s\","
             "\"network_namespace\":%s,\"network_namespace_problem\":\"%s\",\"no_new_privs\":%s}",
             abi, abi > 0 ? "" : (why ? why : ""), seccomp ? "true" : "false", seccomp_why,
             netns ? "true" : "false", netns_why, nnp ? "true" : "false");
}
