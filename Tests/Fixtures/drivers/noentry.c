/*
 * noentry — a shared library that exports a function, but no driver entry
 * point at all: the loader must refuse it, naming the missing symbol.
 */
#include <llmos/llmos.h>

LLMOS_EXPORT int noentry_answer(void);

int noentry_answer(void)
{
    return 42;
}
