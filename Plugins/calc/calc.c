/*
 * calc — the arithmetic driver (manifests/calc.yaml): add, sub, mul, div and
 * eval, written in plain C against the llmos ABI (sdk/include/llmos/llmos.h).
 *
 * It is the reference C driver, so it stays small and does everything the
 * contract asks: it keeps no mutable global state (the manifest declares
 * `threading: concurrent`, so any number of threads may be inside `calc_call`
 * at once), it never lets a non-finite number escape (JSON cannot express
 * one), and every error message says what was wrong and where.
 *
 * Calls are instant, so nothing polls host->is_cancelled.
 */
#include <llmos/llmos.h>
#include <llmos/llmos_json.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exported so the benchmark can call it through a plain function pointer as
 * the "direct call" baseline; the `add` tool uses the very same function, so
 * the difference the benchmark measures is the cost of the ABI round trip. */
LLMOS_EXPORT double llmos_calc_add(double a, double b);

double llmos_calc_add(double a, double b)
{
    return a + b;
}

/* ---------------------------------------------------------------------------
 * Replying
 * ------------------------------------------------------------------------- */

/* Formats the message, reports it and returns `code`, so error paths read
 * `return fail(...)`. set_error copies the message, so a stack buffer will do. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static llmos_status fail(const llmos_host *host, llmos_call_ctx *ctx, llmos_status code,
                         const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    host->set_error(ctx, code, msg);
    return code;
}

#define OVERFLOW_MESSAGE "overflow: the result is too large to represent as a double"

/* Replies {"result": r}. */
static llmos_status reply_number(const llmos_host *host, llmos_call_ctx *ctx, double r)
{
    llmos_json_writer w = LLMOS_JSON_WRITER_INIT;
    llmos_status status;

    /* The inputs are finite (JSON has no infinity), so a non-finite result
     * can only be an overflow; writing it would produce null, not a number. */
    if (!isfinite(r))
        return fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, OVERFLOW_MESSAGE);
    /* -0 is a legitimate double but reads as a bug to people and models
     * ("-2 * 0 = -0"), and compares equal to 0 anyway. */
    if (r == 0)
        r = 0;

    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "result");
    llmos_json_write_double(&w, r);
    llmos_json_write_end_object(&w);
    if (w.failed) {
        llmos_json_writer_free(&w);
        return fail(host, ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    }
    status = host->set_output(ctx, w.buf, w.len);
    llmos_json_writer_free(&w);
    return status;
}

/* ---------------------------------------------------------------------------
 * add, sub, mul, div
 * ------------------------------------------------------------------------- */

static llmos_status binary_op(const llmos_host *host, llmos_call_ctx *ctx, char op,
                              const char *input, size_t len)
{
    double a, b, r;

    /* The kernel has validated the input against the schema already; these
     * checks only keep a misconfigured host from producing nonsense. */
    if (!llmos_json_get_double(input, len, "a", &a))
        return fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "'a' must be a number");
    if (!llmos_json_get_double(input, len, "b", &b))
        return fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "'b' must be a number");

    switch (op) {
    case '+': r = llmos_calc_add(a, b); break;
    case '-': r = a - b; break;
    case '*': r = a * b; break;
    default:
        if (b == 0)
            return fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "division by zero: b must not be 0");
        r = a / b;
        break;
    }
    return reply_number(host, ctx, r);
}

/* ---------------------------------------------------------------------------
 * eval: a recursive-descent parser that evaluates as it parses.
 *
 *   expr    := term    (('+' | '-') term)*
 *   term    := unary   (('*' | '/' | '%') unary)*
 *   unary   := ('-' | '+') unary | power
 *   power   := primary ('^' unary)?
 *   primary := number | '(' expr ')'
 *
 * `power` takes a `unary` on its right, which makes ^ right-associative
 * (2^3^2 = 2^9) and allows 2^-1, while a sign on its left applies to the whole
 * power: -2^2 = -(2^2) = -4, as in mathematics. % is the C remainder (fmod:
 * the result has the sign of the dividend, -7 % 3 = -1).
 * ------------------------------------------------------------------------- */

/* Every recursive cycle of the grammar passes through `unary` (signs, the
 * exponent of ^, and parentheses via expr -> term -> unary), so counting
 * depth there bounds the stack whatever the input: "((((...", "------1" and
 * "2^2^2^..." are all refused cleanly instead of overflowing the stack. */
#define EVAL_MAX_DEPTH 200

typedef struct {
    const char *src; /* the decoded expression; not NUL-terminated */
    size_t len;
    size_t pos;      /* byte offset of the next unread character */
    int depth;
    int failed;      /* the first error wins: later ones are consequences */
    char err[384];
} parser;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static double parse_error(parser *p, const char *fmt, ...)
{
    va_list ap;
    if (!p->failed) {
        p->failed = 1;
        va_start(ap, fmt);
        vsnprintf(p->err, sizeof p->err, fmt, ap);
        va_end(ap);
    }
    return 0;
}

/* 1-based column of byte offset `pos`, counted in characters rather than
 * bytes, so it matches what a person sees even after non-ASCII text. */
static size_t column(const parser *p, size_t pos)
{
    size_t col = 1, i;
    for (i = 0; i < pos && i < p->len; i++)
        if (((unsigned char)p->src[i] & 0xC0) != 0x80)
            col++;
    return col;
}

/* Describes the character at `pos` for an error message: '*', 'é',
 * "end of expression", or a code point for invisible characters. */
static const char *describe(const parser *p, size_t pos, char *buf, size_t cap)
{
    const unsigned char *s = (const unsigned char *)p->src + pos;
    size_t n, i;
    if (pos >= p->len) {
        snprintf(buf, cap, "end of expression");
        return buf;
    }
    if (s[0] > 0x20 && s[0] < 0x7F) {
        snprintf(buf, cap, "'%c'", s[0]);
        return buf;
    }
    if (s[0] < 0x80) {
        snprintf(buf, cap, "character U+%04X", (unsigned)s[0]);
        return buf;
    }
    /* A multi-byte UTF-8 character: show it whole, if it is whole. */
    n = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 0;
    if (n == 0 || pos + n > p->len) {
        snprintf(buf, cap, "byte 0x%02X", (unsigned)s[0]);
        return buf;
    }
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            snprintf(buf, cap, "byte 0x%02X", (unsigned)s[0]);
            return buf;
        }
    }
    snprintf(buf, cap, "'%.*s'", (int)n, (const char *)s);
    return buf;
}

static void skip_space(parser *p)
{
    while (p->pos < p->len) {
        char c = p->src[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v')
            break;
        p->pos++;
    }
}

/* The next non-space character, or 0 at the end (a NUL inside the
 * expression is not an operator either, so the ambiguity is harmless). */
static char peek(parser *p)
{
    skip_space(p);
    return p->pos < p->len ? p->src[p->pos] : 0;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Applies binary operator `op` (found at byte offset `at`) and checks the
 * result, so a problem is reported where it happens rather than surfacing
 * later as inf or nan (1/(10^400) would otherwise quietly be 0). */
static double apply(parser *p, char op, size_t at, double a, double b)
{
    double r;
    switch (op) {
    case '+': r = a + b; break;
    case '-': r = a - b; break;
    case '*': r = a * b; break;
    case '/':
        if (b == 0)
            return parse_error(p, "division by zero at column %zu", column(p, at));
        r = a / b;
        break;
    case '%':
        if (b == 0)
            return parse_error(p, "modulo by zero at column %zu", column(p, at));
        r = fmod(a, b);
        break;
    default: /* '^' */
        if (a == 0 && b < 0)
            return parse_error(p, "division by zero at column %zu: 0 cannot be raised to a negative power",
                               column(p, at));
        r = pow(a, b);
        if (isnan(r))
            return parse_error(p, "math error at column %zu: a negative number raised to a "
                                  "non-integer power has no real value", column(p, at));
        break;
    }
    if (!isfinite(r))
        return parse_error(p, "overflow at column %zu: the result is too large to represent as a double",
                           column(p, at));
    return r;
}

static double parse_expr(parser *p);
static double parse_unary(parser *p);

static double parse_number(parser *p)
{
    size_t start = p->pos, i = p->pos;
    double v;

    while (i < p->len && is_digit(p->src[i])) i++;
    if (i < p->len && p->src[i] == '.') {
        i++;
        while (i < p->len && is_digit(p->src[i])) i++;
    }
    if (i < p->len && (p->src[i] == 'e' || p->src[i] == 'E')) {
        size_t d;
        i++;
        if (i < p->len && (p->src[i] == '+' || p->src[i] == '-')) i++;
        d = i;
        while (i < p->len && is_digit(p->src[i])) i++;
        if (i == d)
            return parse_error(p, "syntax error at column %zu: malformed number '%.*s': the exponent has no digits",
                               column(p, start), (int)(i - start), p->src + start);
    }
    p->pos = i;
    if (i - start > LLMOS_JSON_NUMBER_MAX)
        return parse_error(p, "number too long at column %zu", column(p, start));
    if (!llmos_json_parse_double(p->src + start, i - start, &v))
        return parse_error(p, "syntax error at column %zu: malformed number", column(p, start));
    if (!isfinite(v))
        return parse_error(p, "number out of range at column %zu", column(p, start));
    return v;
}

static double parse_primary(parser *p)
{
    char c = peek(p), found[32];

    if (is_digit(c) || (c == '.' && p->pos + 1 < p->len && is_digit(p->src[p->pos + 1])))
        return parse_number(p);
    if (c == '(') {
        size_t open = p->pos++;
        double v = parse_expr(p);
        if (p->failed)
            return 0;
        c = peek(p);
        if (p->pos >= p->len)
            return parse_error(p, "unbalanced parentheses: missing ')' for '(' at column %zu",
                               column(p, open));
        if (c != ')')
            return parse_error(p, "syntax error at column %zu: expected an operator or ')' but found %s",
                               column(p, p->pos), describe(p, p->pos, found, sizeof found));
        p->pos++;
        return v;
    }
    return parse_error(p, "syntax error at column %zu: expected a number or '(' but found %s",
                       column(p, p->pos), describe(p, p->pos, found, sizeof found));
}

static double parse_power(parser *p)
{
    double base = parse_primary(p), exponent;
    size_t at;
    if (p->failed || peek(p) != '^')
        return base;
    at = p->pos++;
    exponent = parse_unary(p);
    if (p->failed)
        return 0;
    return apply(p, '^', at, base, exponent);
}

static double parse_unary(parser *p)
{
    char c;
    double v;
    if (p->depth >= EVAL_MAX_DEPTH)
        return parse_error(p, "expression too deeply nested at column %zu (the limit is %d levels)",
                           column(p, p->pos), EVAL_MAX_DEPTH);
    p->depth++;
    c = peek(p);
    if (c == '-' || c == '+') {
        p->pos++;
        v = parse_unary(p);
        if (c == '-')
            v = -v;
    } else {
        v = parse_power(p);
    }
    p->depth--;
    return v;
}

static double parse_term(parser *p)
{
    double v = parse_unary(p);
    for (;;) {
        char op = p->failed ? 0 : peek(p);
        size_t at;
        double rhs;
        if (op != '*' && op != '/' && op != '%')
            return v;
        at = p->pos++;
        rhs = parse_unary(p);
        if (p->failed)
            return 0;
        v = apply(p, op, at, v, rhs);
    }
}

static double parse_expr(parser *p)
{
    double v = parse_term(p);
    for (;;) {
        char op = p->failed ? 0 : peek(p);
        size_t at;
        double rhs;
        if (op != '+' && op != '-')
            return v;
        at = p->pos++;
        rhs = parse_term(p);
        if (p->failed)
            return 0;
        v = apply(p, op, at, v, rhs);
    }
}

/* Evaluates [src, src+len). Returns 1 and *out, or 0 with the message in p->err. */
static int evaluate(parser *p, const char *src, size_t len, double *out)
{
    char found[32];
    double v;

    memset(p, 0, sizeof *p);
    p->src = src;
    p->len = len;
    if (peek(p) == 0 && p->pos >= p->len) {
        parse_error(p, "empty expression");
        return 0;
    }
    v = parse_expr(p);
    if (!p->failed && peek(p) == ')')
        parse_error(p, "unexpected ')' at column %zu", column(p, p->pos));
    else if (!p->failed && p->pos < p->len)
        parse_error(p, "syntax error at column %zu: expected an operator but found %s",
                    column(p, p->pos), describe(p, p->pos, found, sizeof found));
    if (p->failed)
        return 0;
    *out = v;
    return 1;
}

static llmos_status eval_op(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len)
{
    const char *raw;
    size_t raw_len;
    long n;
    char *expr;
    parser p;
    double v;
    int ok;

    if (!llmos_json_find(input, len, "expression", &raw, &raw_len) ||
        (n = llmos_json_decode_string(raw, raw_len, NULL, 0)) < 0)
        return fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "'expression' must be a string");
    /* Decoded text is never longer than its JSON form, which bounds n. */
    expr = (char *)malloc((size_t)n + 1);
    if (!expr)
        return fail(host, ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    llmos_json_decode_string(raw, raw_len, expr, (size_t)n + 1);

    ok = evaluate(&p, expr, (size_t)n, &v);
    free(expr);
    if (!ok)
        return fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "%s", p.err);
    return reply_number(host, ctx, v);
}

/* ---------------------------------------------------------------------------
 * The driver
 * ------------------------------------------------------------------------- */

/* calc has no state of its own, but `call` needs the host functions: the host
 * pointer itself serves as the instance, which spares a global. */
static llmos_status calc_create(const llmos_host *host, const char *config_json,
                                size_t config_len, void **instance)
{
    (void)config_json;
    (void)config_len;
    *instance = (void *)host;
    return LLMOS_OK;
}

static llmos_status calc_call(void *instance, llmos_call_ctx *ctx, const char *op,
                              const char *input, size_t len)
{
    const llmos_host *host = (const llmos_host *)instance;

    if (strcmp(op, "add") == 0) return binary_op(host, ctx, '+', input, len);
    if (strcmp(op, "sub") == 0) return binary_op(host, ctx, '-', input, len);
    if (strcmp(op, "mul") == 0) return binary_op(host, ctx, '*', input, len);
    if (strcmp(op, "div") == 0) return binary_op(host, ctx, '/', input, len);
    if (strcmp(op, "eval") == 0) return eval_op(host, ctx, input, len);
    return fail(host, ctx, LLMOS_ERR_UNSUPPORTED, "calc has no operation '%s'", op);
}

static const char *const calc_operations[] = { "add", "sub", "mul", "div", "eval", NULL };

static const llmos_driver calc_driver = {
    LLMOS_DRIVER_HEADER,
    "calc",
    "1.0.0",
    calc_operations,
    calc_create,
    NULL, /* destroy: the instance is the host's, nothing to release */
    calc_call,
    { NULL },
};

LLMOS_EXPORT llmos_status llmos_driver_entry_v1(const llmos_host *host, const llmos_driver **driver)
{
    (void)host; /* any 1.x host offers everything calc uses */
    *driver = &calc_driver;
    return LLMOS_OK;
}
