#define _GNU_SOURCE
#include "CLLMOSSystem.h"

/* The file of the loaded image that defines `symbol` (global scope), or NULL. */
const char *llmos_image_defining(const char *symbol) {
    void *address = dlsym(RTLD_DEFAULT, symbol);
    Dl_info info;
    if (!address || !dladdr(address, &info)) return NULL;
    return info.dli_fname;
}
