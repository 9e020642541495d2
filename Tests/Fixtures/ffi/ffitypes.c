/* A plain C library (no llmos header, no entry point) with a function of every
 * type an ffi manifest can declare, for Tests/LLMOSKernelTests/Peripherals/FFITests.swift.
 * Built by the test with cc, like the fixture drivers. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int8_t add_i8(int8_t a, int8_t b) { return (int8_t)(a + b); }
int16_t add_i16(int16_t a, int16_t b) { return (int16_t)(a + b); }
int32_t add_i32(int32_t a, int32_t b) { return a + b; }
int64_t add_i64(int64_t a, int64_t b) { return a + b; }
uint8_t add_u8(uint8_t a, uint8_t b) { return (uint8_t)(a + b); }
uint16_t add_u16(uint16_t a, uint16_t b) { return (uint16_t)(a + b); }
uint32_t add_u32(uint32_t a, uint32_t b) { return a + b; }
uint64_t add_u64(uint64_t a, uint64_t b) { return a + b; }
float scale_f(float x, float k) { return x * k; }
double mix(int8_t a, double b, uint16_t c, float d, bool e) { return a + b + c + d + (e ? 1000 : 0); }
bool negate(bool b) { return !b; }

/* Strings and buffers. */
size_t count_bytes(const char *s) { return strlen(s); }
uint32_t sum_bytes(const unsigned char *data, size_t len) {
    uint32_t sum = 0;
    for (size_t i = 0; i < len; i++) sum += data[i];
    return sum;
}
/* Writes "Hello, NAME!" into out (at most cap bytes, NUL-terminated); returns the length it needed. */
int32_t greet(const char *name, char *out, size_t cap) {
    return (int32_t)snprintf(out, cap, "Hello, %s!", name);
}
/* out[i] = data[i] ^ key for i < len (at most cap). */
void xor_bytes(const unsigned char *data, uint32_t len, uint8_t key, unsigned char *out, size_t cap) {
    for (uint32_t i = 0; i < len && i < cap; i++) out[i] = data[i] ^ key;
}
const char *library_version(void) { return "ffitypes 1.0"; }
const char *maybe_text(bool give) { return give ? "here" : NULL; }

/* A data symbol: naming it as a tool must be refused at load. */
int ffitypes_counter = 42;
