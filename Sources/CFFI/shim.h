/* libffi for the kernel's zero-code drivers (Sources/LLMOSKernel/FFI).
 *
 * Swift 6 refuses `&ffi_type_sint32` (a mutable global is not concurrency-safe),
 * so each built-in type descriptor is handed out by a static inline function.
 * The descriptors are libffi's own, never written to: sharing them across
 * threads is safe. */
#ifndef LLMOS_CFFI_SHIM_H
#define LLMOS_CFFI_SHIM_H
#include <ffi.h>

static inline ffi_type *llmos_ffi_type_void(void) { return &ffi_type_void; }
static inline ffi_type *llmos_ffi_type_uint8(void) { return &ffi_type_uint8; }
static inline ffi_type *llmos_ffi_type_sint8(void) { return &ffi_type_sint8; }
static inline ffi_type *llmos_ffi_type_uint16(void) { return &ffi_type_uint16; }
static inline ffi_type *llmos_ffi_type_sint16(void) { return &ffi_type_sint16; }
static inline ffi_type *llmos_ffi_type_uint32(void) { return &ffi_type_uint32; }
static inline ffi_type *llmos_ffi_type_sint32(void) { return &ffi_type_sint32; }
static inline ffi_type *llmos_ffi_type_uint64(void) { return &ffi_type_uint64; }
static inline ffi_type *llmos_ffi_type_sint64(void) { return &ffi_type_sint64; }
static inline ffi_type *llmos_ffi_type_float(void) { return &ffi_type_float; }
static inline ffi_type *llmos_ffi_type_double(void) { return &ffi_type_double; }
static inline ffi_type *llmos_ffi_type_pointer(void) { return &ffi_type_pointer; }

/* C's bool (_Bool) is one byte on every ABI llmos runs on: passed as uint8. */
static inline ffi_type *llmos_ffi_type_bool(void) { return &ffi_type_uint8; }

/* ffi_prep_cif for a non-variadic function with the default ABI. */
static inline int llmos_ffi_prep(ffi_cif *cif, unsigned nargs, ffi_type *rtype, ffi_type **atypes) {
    return (int)ffi_prep_cif(cif, FFI_DEFAULT_ABI, nargs, rtype, atypes);
}

/* ffi_call with the function as a plain data pointer (what dlsym returns).
 * `rvalue` must hold at least sizeof(ffi_arg) bytes: libffi widens integer
 * results narrower than a register to ffi_arg. */
static inline void llmos_ffi_call(ffi_cif *cif, void *fn, void *rvalue, void **avalues) {
    ffi_call(cif, (void (*)(void))fn, rvalue, avalues);
}

static inline int llmos_ffi_ok(void) { return (int)FFI_OK; }
static inline size_t llmos_ffi_arg_size(void) { return sizeof(ffi_arg); }

#endif
