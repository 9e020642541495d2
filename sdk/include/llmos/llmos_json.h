/*
 * llmos_json.h — a tiny JSON reader and writer for C drivers.
 *
 * Header-only: every function is `static inline`, so there is nothing to link.
 * Plain C99 (also compiles as C++), no dependencies beyond libc, no global state,
 * safe to use from many threads at once. It is deliberately small: enough to read
 * the members of the flat JSON object the kernel passes as a tool's input, and to
 * write a result object, not a general-purpose JSON library.
 *
 *     #include <llmos/llmos_json.h>
 *
 *     double a, b;
 *     if (!llmos_json_get_double(input, len, "a", &a) ||
 *         !llmos_json_get_double(input, len, "b", &b))
 *         return host->set_error(ctx, LLMOS_ERR_INVALID_ARGUMENT, "a and b must be numbers"),
 *                LLMOS_ERR_INVALID_ARGUMENT;
 *     llmos_json_writer w = LLMOS_JSON_WRITER_INIT;
 *     llmos_json_write_begin_object(&w);
 *     llmos_json_write_key(&w, "sum");
 *     llmos_json_write_double(&w, a + b);
 *     llmos_json_write_end_object(&w);
 *     if (w.failed) { ... out of memory ... }
 *     host->set_output(ctx, w.buf, w.len);   // set_output copies
 *     llmos_json_writer_free(&w);
 *
 * ---------------------------------------------------------------------------
 * Reading
 * ---------------------------------------------------------------------------
 * - The reader never allocates and never reads outside [json, json+len), even
 *   when the text is not NUL-terminated or is garbage: malformed input makes a
 *   function return "absent" (0 or -1), never crash. Nesting deeper than
 *   LLMOS_JSON_MAX_DEPTH (default 128; #define it before including to change)
 *   counts as malformed, so hostile input cannot exhaust the stack.
 * - A lookup validates the whole object it searches, not just the member it
 *   finds. If a key occurs more than once, the LAST occurrence is returned (as
 *   in most JSON parsers). Keys are compared after decoding escapes, so "a" also
 *   finds "\u0061".
 * - Pointers returned through `value` point INTO the caller's json buffer: they
 *   stay valid exactly as long as that buffer (for tool input: until `call`
 *   returns). Nothing returned needs freeing.
 * - `json` may be NULL only if `len` is 0. `key` must be a NUL-terminated string
 *   (NULL means "absent"). Out-parameters may be NULL when you only want to know
 *   whether a member is there.
 * - Numbers are converted independently of the C locale ("1.5" is one and a
 *   half even where the decimal separator is a comma).
 * - Escapes in strings are decoded; other bytes are passed through as they are
 *   (the kernel only ever hands drivers valid UTF-8).
 *
 * ---------------------------------------------------------------------------
 * Writing
 * ---------------------------------------------------------------------------
 * - An llmos_json_writer owns a growing heap buffer. Start from
 *   LLMOS_JSON_WRITER_INIT (or all zeros) and always end with
 *   llmos_json_writer_free(), which is safe on a writer that never wrote and
 *   may be called twice.
 * - While the writer has not failed, w.buf holds w.len bytes of JSON followed
 *   by a NUL (not counted in w.len), ready for host->set_output(ctx, w.buf,
 *   w.len). If an allocation fails, w.failed becomes 1 and every later write is
 *   a no-op: check `failed` once at the end instead of after every call.
 * - Commas between members and elements are inserted automatically. The writer
 *   does not check structure: write a key before each value inside an object,
 *   none inside an array, and balance begin/end yourself.
 * - Strings are escaped as JSON requires, and invalid UTF-8 is replaced by
 *   U+FFFD, so the output is always well-formed. NaN and infinities, which JSON
 *   cannot express, are written as null.
 */
#ifndef LLMOS_JSON_H
#define LLMOS_JSON_H

#include <math.h> /* isnan, isinf: macros, no need to link libm */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef LLMOS_JSON_MAX_DEPTH
#define LLMOS_JSON_MAX_DEPTH 128
#endif

/* Longest number text the reader converts (JSON allows arbitrarily many
 * digits; no double needs more than a few hundred). Longer numbers read as
 * absent. */
#define LLMOS_JSON_NUMBER_MAX 400

/* ===========================================================================
 * Internals (names with a double underscore are not part of the API).
 * ========================================================================= */

static inline const char *llmos_json__ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static inline int llmos_json__hex4(const char *p, const char *end, uint32_t *out)
{
    uint32_t v = 0;
    int i;
    if (end - p < 4)
        return 0;
    for (i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

static inline int llmos_json__utf8(uint32_t cp, char out[4])
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes one character of a string body at *pp into out (UTF-8 bytes).
 * Returns the byte count (1..4), 0 at the closing quote (consumed), or -1 if
 * the text is not a valid string. Raw bytes pass through one at a time. A lone
 * surrogate escape decodes to U+FFFD rather than to invalid UTF-8. */
static inline int llmos_json__str_unit(const char **pp, const char *end, char out[4])
{
    const char *p = *pp;
    uint32_t cp, lo;
    unsigned char c;
    if (p >= end)
        return -1;
    c = (unsigned char)*p;
    if (c == '"') { *pp = p + 1; return 0; }
    if (c < 0x20)
        return -1; /* JSON forbids raw control characters in strings */
    if (c != '\\') { out[0] = (char)c; *pp = p + 1; return 1; }
    if (++p >= end)
        return -1;
    switch (*p) {
    case '"':  out[0] = '"';  break;
    case '\\': out[0] = '\\'; break;
    case '/':  out[0] = '/';  break;
    case 'b':  out[0] = '\b'; break;
    case 'f':  out[0] = '\f'; break;
    case 'n':  out[0] = '\n'; break;
    case 'r':  out[0] = '\r'; break;
    case 't':  out[0] = '\t'; break;
    case 'u':
        if (!llmos_json__hex4(p + 1, end, &cp))
            return -1;
        p += 5;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
                llmos_json__hex4(p + 2, end, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            } else {
                cp = 0xFFFD;
            }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            cp = 0xFFFD;
        }
        *pp = p;
        return llmos_json__utf8(cp, out);
    default:
        return -1;
    }
    *pp = p + 1;
    return 1;
}

/* p points at the opening quote; returns the position after the closing one. */
static inline const char *llmos_json__skip_string(const char *p, const char *end)
{
    char u[4];
    int n;
    if (p >= end || *p != '"')
        return NULL;
    p++;
    while ((n = llmos_json__str_unit(&p, end, u)) > 0)
        ;
    return n == 0 ? p : NULL;
}

static inline const char *llmos_json__skip_number(const char *p, const char *end)
{
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') p++;
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        const char *d = ++p;
        while (p < end && *p >= '0' && *p <= '9') p++;
        if (p == d) return NULL;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        const char *d;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        d = p;
        while (p < end && *p >= '0' && *p <= '9') p++;
        if (p == d) return NULL;
    }
    return p;
}

static inline const char *llmos_json__skip_literal(const char *p, const char *end, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(end - p) < n || memcmp(p, word, n) != 0)
        return NULL;
    return p + n;
}

/* Validates one JSON value at p (no leading whitespace) and returns the
 * position just after it, or NULL. Recursion is bounded by `depth`. */
static inline const char *llmos_json__skip_value(const char *p, const char *end, int depth)
{
    if (p >= end)
        return NULL;
    switch (*p) {
    case '{':
    case '[': {
        char close = *p == '{' ? '}' : ']';
        if (depth >= LLMOS_JSON_MAX_DEPTH)
            return NULL;
        p = llmos_json__ws(p + 1, end);
        if (p < end && *p == close)
            return p + 1;
        for (;;) {
            if (close == '}') {
                p = llmos_json__skip_string(p, end);
                if (!p) return NULL;
                p = llmos_json__ws(p, end);
                if (p >= end || *p != ':') return NULL;
                p = llmos_json__ws(p + 1, end);
            }
            p = llmos_json__skip_value(p, end, depth + 1);
            if (!p) return NULL;
            p = llmos_json__ws(p, end);
            if (p >= end) return NULL;
            if (*p == close) return p + 1;
            if (*p != ',') return NULL;
            p = llmos_json__ws(p + 1, end);
        }
    }
    case '"': return llmos_json__skip_string(p, end);
    case 't': return llmos_json__skip_literal(p, end, "true");
    case 'f': return llmos_json__skip_literal(p, end, "false");
    case 'n': return llmos_json__skip_literal(p, end, "null");
    default:  return llmos_json__skip_number(p, end);
    }
}

/* Does the string token at p (opening quote) decode to exactly `key`? */
static inline int llmos_json__key_equals(const char *p, const char *end, const char *key)
{
    char u[4];
    int n, i;
    p++;
    while ((n = llmos_json__str_unit(&p, end, u)) > 0) {
        for (i = 0; i < n; i++)
            if (*key == '\0' || *key++ != u[i])
                return 0;
    }
    return n == 0 && *key == '\0';
}

/* The C library's decimal separator in the current locale (usually "."),
 * learnt through snprintf because, unlike localeconv(), it is thread-safe. */
static inline size_t llmos_json__decimal_point(char dp[8])
{
    char tmp[16];
    int n = snprintf(tmp, sizeof tmp, "%.1f", 1.5);
    size_t k;
    if (n < 3 || n > 9) { dp[0] = '.'; return 1; }
    k = (size_t)n - 2; /* the bytes between "1" and "5" */
    memcpy(dp, tmp + 1, k);
    return k;
}

/* ===========================================================================
 * Reading
 * ========================================================================= */

/* 1 if [json, json+len) is exactly one well-formed JSON value (surrounding
 * whitespace allowed), else 0. Use it before handing text you did not produce
 * to host->set_output. */
static inline int llmos_json_validate(const char *json, size_t len)
{
    const char *end, *p;
    if (!json)
        return 0;
    end = json + len;
    p = llmos_json__skip_value(llmos_json__ws(json, end), end, 0);
    return p != NULL && llmos_json__ws(p, end) == end;
}

/* Finds top-level member `key` of the JSON object in [json, json+len).
 * Returns 1 and sets *value / *value_len to the member's raw value text (a
 * pointer into json: `"text"` with its quotes, `12.5`, `{...}`, `true`...);
 * returns 0 if the member is absent, or the text is not a well-formed object.
 * Works on any object text, so a nested object found this way can be searched
 * in turn. */
static inline int llmos_json_find(const char *json, size_t len, const char *key,
                                  const char **value, size_t *value_len)
{
    const char *end, *p, *found = NULL, *found_end = NULL;
    if (!json || !key)
        return 0;
    end = json + len;
    p = llmos_json__ws(json, end);
    if (p >= end || *p != '{')
        return 0;
    p = llmos_json__ws(p + 1, end);
    if (p < end && *p == '}')
        return 0;
    for (;;) {
        const char *k = p, *v;
        p = llmos_json__skip_string(p, end);
        if (!p) return 0;
        p = llmos_json__ws(p, end);
        if (p >= end || *p != ':') return 0;
        v = llmos_json__ws(p + 1, end);
        p = llmos_json__skip_value(v, end, 1);
        if (!p) return 0;
        if (llmos_json__key_equals(k, end, key)) {
            found = v;
            found_end = p;
        }
        p = llmos_json__ws(p, end);
        if (p >= end) return 0;
        if (*p == '}') break;
        if (*p != ',') return 0;
        p = llmos_json__ws(p + 1, end);
    }
    if (llmos_json__ws(p + 1, end) != end || !found)
        return 0; /* trailing garbage after the object, or not there */
    if (value) *value = found;
    if (value_len) *value_len = (size_t)(found_end - found);
    return 1;
}

/* Converts decimal number text occupying exactly [text, text+len) (digits,
 * optional sign, '.', exponent; no "inf", "nan" or hex) to the nearest double,
 * whatever the C locale. Returns 1 on success, 0 if the text is not such a
 * number. Out-of-range values give +-HUGE_VAL (infinity), as strtod does.
 * Accepts a little more than JSON (".5", "5.", "+1"), which suits expression
 * parsers; use llmos_json_get_double for strict JSON. */
static inline int llmos_json_parse_double(const char *text, size_t len, double *out)
{
    char buf[LLMOS_JSON_NUMBER_MAX + 8];
    char dp[8];
    size_t dpn = 0, i, n = 0;
    char *stop;
    double d;
    if (!text || len == 0 || len > LLMOS_JSON_NUMBER_MAX)
        return 0;
    for (i = 0; i < len; i++) {
        char c = text[i];
        if (c == '.') {
            if (!dpn) dpn = llmos_json__decimal_point(dp);
            if (n + dpn >= sizeof buf) return 0;
            memcpy(buf + n, dp, dpn);
            n += dpn;
        } else if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == 'e' || c == 'E') {
            if (n + 1 >= sizeof buf) return 0;
            buf[n++] = c;
        } else {
            return 0;
        }
    }
    buf[n] = '\0';
    d = strtod(buf, &stop);
    if (stop != buf + n)
        return 0;
    if (out) *out = d;
    return 1;
}

/* 1 and *out set if member `key` is present and a number; else 0. */
static inline int llmos_json_get_double(const char *json, size_t len, const char *key, double *out)
{
    const char *v;
    size_t n;
    if (!llmos_json_find(json, len, key, &v, &n) || !(*v == '-' || (*v >= '0' && *v <= '9')))
        return 0;
    return llmos_json_parse_double(v, n, out);
}

/* 1 and *out set if member `key` is present and an integer that fits in
 * int64_t; else 0. Integers written with a fraction or exponent ("3.0", "1e3",
 * "2.5e1") are accepted, as JSON Schema's "integer" accepts them; 3.5 is not.
 * The decision is made on the decimal digits, exactly, never through a double:
 * 9007199254740993 and 4503599627370496.5 are told apart correctly. */
static inline int llmos_json_get_int64(const char *json, size_t len, const char *key, int64_t *out)
{
    const char *v, *p, *end, *is, *ie, *fs, *fe;
    size_t n;
    long long exp = 0, scale, keep, k, ni, ndigits;
    int neg, eneg = 0;
    uint64_t acc = 0, limit;
    if (!llmos_json_find(json, len, key, &v, &n) || !(*v == '-' || (*v >= '0' && *v <= '9')))
        return 0;
    /* llmos_json_find validated the grammar: -?int(.frac)?([eE][+-]?exp)? */
    p = v;
    end = v + n;
    neg = *p == '-';
    if (neg) p++;
    is = p;
    while (p < end && *p >= '0' && *p <= '9') p++;
    ie = fs = fe = p;
    if (p < end && *p == '.') {
        fs = ++p;
        while (p < end && *p >= '0' && *p <= '9') p++;
        fe = p;
    }
    if (p < end) { /* the exponent, saturated: anything near the cap is out of range anyway */
        p++;
        if (*p == '+' || *p == '-') eneg = *p++ == '-';
        for (; p < end; p++)
            if (exp < 100000000) exp = exp * 10 + (*p - '0');
        if (eneg) exp = -exp;
    }
    /* The value is (int digits ++ frac digits) x 10^scale; the first `keep`
     * digits are the integer part and the others must all be zero. */
    ni = (long long)(ie - is);
    ndigits = ni + (long long)(fe - fs);
    scale = exp - (long long)(fe - fs);
    keep = ndigits + scale;
    limit = neg ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1;
    for (k = 0; k < ndigits; k++) {
        unsigned d = (unsigned)((k < ni ? is[k] : fs[k - ni]) - '0');
        if (k >= keep) {
            if (d != 0) return 0;
            continue;
        }
        if (acc > (limit - d) / 10) return 0;
        acc = acc * 10 + d;
    }
    for (k = 0; acc != 0 && k < scale; k++) {
        if (acc > limit / 10) return 0;
        acc *= 10;
    }
    if (out) *out = !neg ? (int64_t)acc : acc == limit ? INT64_MIN : -(int64_t)acc;
    return 1;
}

/* 1 and *out set to 0 or 1 if member `key` is present and true or false. */
static inline int llmos_json_get_bool(const char *json, size_t len, const char *key, int *out)
{
    const char *v;
    size_t n;
    if (!llmos_json_find(json, len, key, &v, &n))
        return 0;
    if (n == 4 && memcmp(v, "true", 4) == 0) { if (out) *out = 1; return 1; }
    if (n == 5 && memcmp(v, "false", 5) == 0) { if (out) *out = 0; return 1; }
    return 0;
}

/* 1 if member `key` is present and null. */
static inline int llmos_json_is_null(const char *json, size_t len, const char *key)
{
    const char *v;
    size_t n;
    return llmos_json_find(json, len, key, &v, &n) && n == 4 && memcmp(v, "null", 4) == 0;
}

/* Decodes the raw string value text [value, value+value_len) (with its quotes,
 * as returned by llmos_json_find) into buf as UTF-8, NUL-terminated. Escapes
 * are decoded, \uXXXX surrogate pairs combined (lone surrogates become
 * U+FFFD). Returns the full decoded length in bytes; if that is >= cap the
 * text was truncated (at a character boundary) and the return value is the
 * capacity needed minus one, like snprintf. Returns -1 if the value is not a
 * string. buf may be NULL when cap is 0, to measure. The result may contain
 * NUL bytes if the JSON had \u0000: rely on the returned length. */
static inline long llmos_json_decode_string(const char *value, size_t value_len, char *buf, size_t cap)
{
    const char *p, *end;
    size_t total = 0, written = 0;
    int full = cap == 0;
    char u[4];
    int n;
    if (!value || value_len < 2 || *value != '"')
        return -1;
    p = value + 1;
    end = value + value_len;
    while ((n = llmos_json__str_unit(&p, end, u)) > 0) {
        if (!full) {
            /* Raw UTF-8 arrives a byte at a time: reserve room for the whole
             * character at its lead byte, so the prefix never ends mid-way. */
            unsigned char c = (unsigned char)u[0];
            size_t need = (size_t)n;
            if (n == 1 && c >= 0xC0)
                need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            if (written + need < cap) {
                memcpy(buf + written, u, (size_t)n);
                written += (size_t)n;
            } else {
                full = 1;
            }
        }
        total += (size_t)n;
    }
    if (n < 0 || p != end)
        return -1;
    if (cap > 0)
        buf[written] = '\0';
    return (long)total;
}

/* Copies the decoded string member `key` into buf, as llmos_json_decode_string
 * does: returns the decoded length, -1 if absent or not a string, or a length
 * >= cap if truncated. */
static inline long llmos_json_get_string(const char *json, size_t len, const char *key, char *buf, size_t cap)
{
    const char *v;
    size_t n;
    if (!llmos_json_find(json, len, key, &v, &n))
        return -1;
    return llmos_json_decode_string(v, n, buf, cap);
}

/* ===========================================================================
 * Writing
 * ========================================================================= */

typedef struct llmos_json_writer {
    char *buf;   /* w.len bytes of JSON then a NUL; owned by the writer */
    size_t len;  /* bytes written, excluding the NUL */
    size_t cap;  /* bytes allocated */
    int failed;  /* 1 after an allocation failure: output is incomplete */
} llmos_json_writer;

#define LLMOS_JSON_WRITER_INIT { NULL, 0, 0, 0 }

static inline void llmos_json_writer_init(llmos_json_writer *w)
{
    if (w) { w->buf = NULL; w->len = 0; w->cap = 0; w->failed = 0; }
}

/* Frees the buffer and resets the writer to empty; safe to call repeatedly. */
static inline void llmos_json_writer_free(llmos_json_writer *w)
{
    if (!w) return;
    free(w->buf);
    llmos_json_writer_init(w);
}

/* Ensures room for `extra` more bytes plus the terminating NUL. */
static inline int llmos_json__reserve(llmos_json_writer *w, size_t extra)
{
    size_t need, cap;
    char *nb;
    if (w->failed)
        return 0;
    if (extra > (size_t)-1 - w->len - 1) { w->failed = 1; return 0; }
    need = w->len + extra + 1;
    if (need <= w->cap)
        return 1;
    cap = w->cap ? w->cap : 64;
    while (cap < need)
        cap = cap > (size_t)-1 / 2 ? need : cap * 2;
    nb = (char *)realloc(w->buf, cap);
    if (!nb) { w->failed = 1; return 0; }
    w->buf = nb;
    w->cap = cap;
    return 1;
}

static inline void llmos_json__put(llmos_json_writer *w, const char *s, size_t n)
{
    if (!llmos_json__reserve(w, n))
        return;
    if (n) memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

/* A comma is due unless we are at the start, just inside a container or just
 * after a key: visible from the last byte, so the writer needs no stack. */
static inline void llmos_json__sep(llmos_json_writer *w)
{
    char last;
    if (w->failed || w->len == 0)
        return;
    last = w->buf[w->len - 1];
    if (last != '{' && last != '[' && last != ':')
        llmos_json__put(w, ",", 1);
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static inline size_t llmos_json__utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    size_t n, i;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;      /* overlong */
        else if (c == 0xED) hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;      /* overlong */
        else if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
    } else return 0;
    if ((size_t)(end - p) < n) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return n;
}

/* Appends `len` bytes of JSON text verbatim (a value you produced or checked
 * with llmos_json_validate), with a comma first when one is due. */
static inline void llmos_json_write_raw(llmos_json_writer *w, const char *json, size_t len)
{
    if (!w || !json) return;
    llmos_json__sep(w);
    llmos_json__put(w, json, len);
}

static inline void llmos_json__string_body(llmos_json_writer *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
    llmos_json__put(w, "\"", 1);
    while (p < end) {
        unsigned char c = *p;
        char esc[7];
        size_t k;
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) { p++; continue; }
        if (c >= 0x80 && (k = llmos_json__utf8_len(p, end)) != 0) { p += k; continue; }
        llmos_json__put(w, (const char *)run, (size_t)(p - run));
        if (c >= 0x80) {
            llmos_json__put(w, "\xEF\xBF\xBD", 3); /* U+FFFD for a bad byte */
        } else {
            esc[0] = '\\';
            switch (c) {
            case '"':  esc[1] = '"';  k = 2; break;
            case '\\': esc[1] = '\\'; k = 2; break;
            case '\n': esc[1] = 'n';  k = 2; break;
            case '\r': esc[1] = 'r';  k = 2; break;
            case '\t': esc[1] = 't';  k = 2; break;
            case '\b': esc[1] = 'b';  k = 2; break;
            case '\f': esc[1] = 'f';  k = 2; break;
            default:
                esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
                esc[4] = hex[c >> 4]; esc[5] = hex[c & 15];
                k = 6;
            }
            llmos_json__put(w, esc, k);
        }
        run = ++p;
    }
    llmos_json__put(w, (const char *)run, (size_t)(p - run));
    llmos_json__put(w, "\"", 1);
}

/* A string value of `n` bytes (UTF-8; need not be NUL-terminated). */
static inline void llmos_json_write_string_n(llmos_json_writer *w, const char *s, size_t n)
{
    if (!w) return;
    llmos_json__sep(w);
    if (!s) { llmos_json__put(w, "null", 4); return; }
    llmos_json__string_body(w, s, n);
}

/* A string value from a NUL-terminated string; NULL writes null. */
static inline void llmos_json_write_string(llmos_json_writer *w, const char *s)
{
    llmos_json_write_string_n(w, s, s ? strlen(s) : 0);
}

/* An object member's key (NUL-terminated); write its value next. */
static inline void llmos_json_write_key(llmos_json_writer *w, const char *key)
{
    if (!w) return;
    llmos_json__sep(w);
    llmos_json__string_body(w, key ? key : "", key ? strlen(key) : 0);
    llmos_json__put(w, ":", 1);
}

static inline void llmos_json_write_begin_object(llmos_json_writer *w)
{
    if (!w) return;
    llmos_json__sep(w);
    llmos_json__put(w, "{", 1);
}

static inline void llmos_json_write_end_object(llmos_json_writer *w)
{
    if (w) llmos_json__put(w, "}", 1);
}

static inline void llmos_json_write_begin_array(llmos_json_writer *w)
{
    if (!w) return;
    llmos_json__sep(w);
    llmos_json__put(w, "[", 1);
}

static inline void llmos_json_write_end_array(llmos_json_writer *w)
{
    if (w) llmos_json__put(w, "]", 1);
}

static inline void llmos_json_write_null(llmos_json_writer *w)
{
    if (!w) return;
    llmos_json__sep(w);
    llmos_json__put(w, "null", 4);
}

static inline void llmos_json_write_bool(llmos_json_writer *w, int b)
{
    if (!w) return;
    llmos_json__sep(w);
    if (b) llmos_json__put(w, "true", 4);
    else llmos_json__put(w, "false", 5);
}

static inline void llmos_json_write_int64(llmos_json_writer *w, int64_t v)
{
    char tmp[24];
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t i = sizeof tmp;
    if (!w) return;
    do { tmp[--i] = (char)('0' + (int)(u % 10)); u /= 10; } while (u);
    if (v < 0) tmp[--i] = '-';
    llmos_json__sep(w);
    llmos_json__put(w, tmp + i, sizeof tmp - i);
}

/* The shortest decimal that reads back as exactly `d` (at most 17 significant
 * digits, e.g. 0.1 -> 0.1, 1e21 -> 1e+21); NaN and infinities -> null. */
static inline void llmos_json_write_double(llmos_json_writer *w, double d)
{
    char tmp[40], out[40], *e;
    int prec, n = 0;
    size_t i, k = 0;
    if (!w) return;
    if (isnan(d) || isinf(d)) {
        llmos_json_write_null(w);
        return;
    }
    for (prec = 1; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (n <= 0 || (size_t)n >= sizeof tmp) { w->failed = 1; return; }
        if (prec == 17 || strtod(tmp, NULL) == d)
            break; /* same locale for both, so this round-trip check is exact */
    }
    /* %g switches to an exponent once it reaches the precision, which would
     * print 100 as 1e+02: below 1e17, spell such integers out instead. */
    e = strchr(tmp, 'e');
    if (e) {
        int x = atoi(e + 1);
        if (x >= prec && x < 17) {
            char t2[40];
            int n2 = snprintf(t2, sizeof t2, "%.*g", x + 1, d);
            if (n2 > 0 && (size_t)n2 < sizeof t2 && strtod(t2, NULL) == d) {
                memcpy(tmp, t2, (size_t)n2 + 1);
                n = n2;
            }
        }
    }
    /* The C library wrote the locale's decimal separator: make it '.'. */
    for (i = 0; i < (size_t)n; i++) {
        char c = tmp[i];
        if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e' || c == 'E')
            out[k++] = c;
        else if (k == 0 || out[k - 1] != '.')
            out[k++] = '.';
    }
    llmos_json__sep(w);
    llmos_json__put(w, out, k);
}

#ifdef __cplusplus
}
#endif

#endif /* LLMOS_JSON_H */
