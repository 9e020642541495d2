#include <llmos/llmos.h>
