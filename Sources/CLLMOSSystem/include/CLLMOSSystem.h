#ifndef CLLMOS_SYSTEM_H
#define CLLMOS_SYSTEM_H
/* System headers the kernel needs that Glibc's module does not export. */
#include <sys/inotify.h>
#include <dlfcn.h>
#include <errno.h>
#include <time.h>

static inline int llmos_sys_errno(void) { return errno; }
#endif
