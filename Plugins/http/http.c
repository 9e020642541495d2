/*
 * http — HTTP GET and POST for models (manifests/http.yaml), in plain C.
 *
 * The driver never opens a socket: every request is the kernel's `net.fetch`
 * system call, so the operator's net.connect grants decide every host, every
 * redirect hop and the address actually connected, and each decision is
 * audited. What the driver adds is what a model needs from a page: HTML turned
 * into readable text (scripts and styles dropped, block elements as line
 * breaks, entities decoded, links kept as "text (url)"), with size and time
 * limits of its own on top of the manifest's.
 *
 * Threading: no mutable global state, so the manifest declares `concurrent`.
 * Cancellation: the wait happens inside net.fetch, which is bounded by the
 * call's own timeout_ms; nothing here loops long enough to need polling.
 */
#include <llmos/llmos.h>
#include <llmos/llmos_json.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTTP_DEFAULT_MAX_BYTES (1L << 20)
#define HTTP_LIMIT_MAX_BYTES (4L << 20)
#define HTTP_DEFAULT_TIMEOUT_MS 15000
#define HTTP_LIMIT_TIMEOUT_MS 60000
#define HTTP_MAX_URL 8192
#define HTTP_MAX_HEADERS 64

/* ---------------------------------------------------------------------------
 * Replying
 * ------------------------------------------------------------------------- */

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static llmos_status fail(const llmos_host *host, llmos_call_ctx *ctx, llmos_status code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    host->set_error(ctx, code, msg);
    return code;
}

/* A system call whose failure becomes this call's error, with the kernel's own
 * message (which names the rule that decided). */
static llmos_status syscall_json(const llmos_host *host, llmos_call_ctx *ctx, const char *service,
                                 const llmos_json_writer *request, const char **response, size_t *response_len)
{
    const char *error;
    size_t error_len;
    char message[1024];
    llmos_status status = host->syscall(ctx, service, request->buf, request->len, response, response_len);
    if (status == LLMOS_OK)
        return LLMOS_OK;
    if (llmos_json_find(*response, *response_len, "error", &error, &error_len)
        && llmos_json_get_string(error, error_len, "message", message, sizeof message) >= 0)
        host->set_error(ctx, status, message);
    else
        host->set_error(ctx, status, "net.fetch failed and gave no message");
    return status;
}

/* ---------------------------------------------------------------------------
 * A growing text buffer (the converted page)
 * ------------------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} text_buf;

static void tb_put(text_buf *t, const char *s, size_t n)
{
    if (t->failed || n == 0)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *grown = (char *)realloc(t->buf, cap);
        if (!grown) {
            t->failed = 1;
            return;
        }
        t->buf = grown;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = 0;
}

/* ---------------------------------------------------------------------------
 * HTML to text
 *
 * Not a conforming HTML parser: a tolerant scanner that is good enough to read
 * a page. Whitespace collapses to one space outside <pre>; block elements end
 * the line (paragraph-like ones leave a blank line); <li> starts "- "; headings
 * start with "#"s; <a href> text is followed by " (url)" with the url made
 * absolute against the final URL; script, style, noscript, template, svg and
 * the head (except its <title>, returned apart) are dropped; entities decode.
 * ------------------------------------------------------------------------- */

typedef struct {
    text_buf out;
    int pending_space;
    int pre;           /* inside <pre>: whitespace kept */
    const char *base;  /* the final URL, for relative links */
    char href[HTTP_MAX_URL];
    size_t link_start; /* where the link's text began in out */
    int in_link;
    text_buf title;
} html_state;

static int ends_with_newlines(const text_buf *t)
{
    int n = 0;
    for (size_t i = t->len; i > 0 && t->buf[i - 1] == '\n'; i--)
        n++;
    return n;
}

static void emit_text(html_state *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!s->pre && (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f')) {
            s->pending_space = 1;
            continue;
        }
        if (s->pending_space) {
            if (s->out.len > 0 && s->out.buf[s->out.len - 1] != '\n' && s->out.buf[s->out.len - 1] != ' ')
                tb_put(&s->out, " ", 1);
            s->pending_space = 0;
        }
        tb_put(&s->out, &c, 1);
    }
}

/* Ends the line: `lines` 1 for a line break, 2 for a blank line (never more). */
static void emit_break(html_state *s, int lines)
{
    s->pending_space = 0;
    while (s->out.len > 0 && s->out.buf[s->out.len - 1] == ' ')
        s->out.len--;
    if (s->out.len == 0)
        return;
    for (int have = ends_with_newlines(&s->out); have < lines; have++)
        tb_put(&s->out, "\n", 1);
}

typedef struct { const char *name; const char *text; } entity;

static const entity entities[] = {
    {"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""}, {"apos", "'"}, {"nbsp", " "},
    {"copy", "\xC2\xA9"}, {"reg", "\xC2\xAE"}, {"trade", "\xE2\x84\xA2"}, {"mdash", "\xE2\x80\x94"},
    {"ndash", "\xE2\x80\x93"}, {"hellip", "\xE2\x80\xA6"}, {"lsquo", "\xE2\x80\x98"}, {"rsquo", "\xE2\x80\x99"},
    {"ldquo", "\xE2\x80\x9C"}, {"rdquo", "\xE2\x80\x9D"}, {"laquo", "\xC2\xAB"}, {"raquo", "\xC2\xBB"},
    {"middot", "\xC2\xB7"}, {"bull", "\xE2\x80\xA2"}, {"euro", "\xE2\x82\xAC"}, {"pound", "\xC2\xA3"},
    {"times", "\xC3\x97"}, {"deg", "\xC2\xB0"}, {"eacute", "\xC3\xA9"}, {"egrave", "\xC3\xA8"},
    {"uuml", "\xC3\xBC"}, {"ouml", "\xC3\xB6"}, {"auml", "\xC3\xA4"}, {"szlig", "\xC3\x9F"},
};

static size_t utf8_encode(unsigned long cp, char out[4])
{
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the entity at p ('&'); returns the bytes consumed (0: not an entity). */
static size_t decode_entity(const char *p, const char *end, char out[8], size_t *out_len)
{
    const char *q = p + 1;
    if (q < end && *q == '#') {
        unsigned long cp = 0;
        int hex = 0, digits = 0;
        q++;
        if (q < end && (*q == 'x' || *q == 'X')) { hex = 1; q++; }
        for (; q < end && digits < 8; q++, digits++) {
            char c = *q;
            int v = c >= '0' && c <= '9' ? c - '0'
                  : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (v < 0) break;
            cp = cp * (hex ? 16 : 10) + (unsigned long)v;
        }
        if (digits == 0) return 0;
        if (q < end && *q == ';') q++;
        *out_len = utf8_encode(cp, out);
        return (size_t)(q - p);
    }
    for (size_t i = 0; i < sizeof entities / sizeof entities[0]; i++) {
        size_t n = strlen(entities[i].name);
        if ((size_t)(end - q) > n && memcmp(q, entities[i].name, n) == 0 && q[n] == ';') {
            *out_len = strlen(entities[i].text);
            memcpy(out, entities[i].text, *out_len);
            return n + 2;
        }
    }
    return 0;
}

/* Text with entities decoded, into the page or the title. */
static void emit_decoded(html_state *s, const char *p, const char *end, int into_title)
{
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if (into_title) tb_put(&s->title, p, (size_t)(stop - p)); else emit_text(s, p, (size_t)(stop - p));
        if (!amp) break;
        char decoded[8];
        size_t decoded_len = 0, used = decode_entity(amp, end, decoded, &decoded_len);
        if (used == 0) { decoded[0] = '&'; decoded_len = 1; used = 1; }
        if (into_title) tb_put(&s->title, decoded, decoded_len);
        else if (decoded_len == 1 && decoded[0] == ' ') { /* &nbsp; keeps a space, even collapsed */
            s->pending_space = 0;
            tb_put(&s->out, " ", 1);
        } else emit_text(s, decoded, decoded_len);
        p = amp + used;
    }
}

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == ':' || c == '_';
}

static int name_is(const char *name, size_t n, const char *word)
{
    size_t w = strlen(word);
    if (n != w) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != word[i]) return 0;
    }
    return 1;
}

static int in_list(const char *name, size_t n, const char *const *words)
{
    for (; *words; words++)
        if (name_is(name, n, *words)) return 1;
    return 0;
}

static const char *const dropped_elements[] = { "script", "style", "noscript", "template", "svg", "head", "iframe", "object", NULL };
static const char *const paragraph_elements[] = {
    "p", "pre", "blockquote", "table", "ul", "ol", "dl", "h1", "h2", "h3", "h4", "h5", "h6", "section",
    "article", "header", "footer", "nav", "aside", "main", "figure", "form", "address", "details", NULL };
static const char *const line_elements[] = {
    "div", "br", "tr", "dt", "dd", "hr", "figcaption", "summary", "caption", "fieldset", "legend", "option", "body", "html", NULL };

/* Finds attribute `want` in the tag text [p, end) and decodes its value into buf. */
static int attribute(const char *p, const char *end, const char *want, char *buf, size_t cap)
{
    while (p < end) {
        while (p < end && !is_name_char(*p)) p++;
        const char *name = p;
        while (p < end && is_name_char(*p)) p++;
        size_t name_len = (size_t)(p - name);
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
        if (p >= end || *p != '=') continue;
        p++;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
        const char *value = p, *value_end;
        if (p < end && (*p == '"' || *p == '\'')) {
            char quote = *p++;
            value = p;
            while (p < end && *p != quote) p++;
            value_end = p;
            if (p < end) p++;
        } else {
            while (p < end && *p != ' ' && *p != '\t' && *p != '\n' && *p != '>') p++;
            value_end = p;
        }
        if (name_len && name_is(name, name_len, want)) {
            /* Entities in attributes (&amp; in query strings) decode too. */
            size_t n = 0;
            for (const char *q = value; q < value_end && n + 8 < cap;) {
                char decoded[8];
                size_t decoded_len = 0, used = *q == '&' ? decode_entity(q, value_end, decoded, &decoded_len) : 0;
                if (used) { memcpy(buf + n, decoded, decoded_len); n += decoded_len; q += used; }
                else buf[n++] = *q++;
            }
            buf[n] = 0;
            while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\n')) buf[--n] = 0;
            return 1;
        }
    }
    return 0;
}

/* Makes href absolute against base (scheme://host[:port]/path...). Writes into out. */
static void absolute_url(const char *base, const char *href, char *out, size_t cap)
{
    const char *colon = strchr(href, ':');
    const char *slash = strchr(href, '/');
    if (colon && (!slash || colon < slash)) { snprintf(out, cap, "%s", href); return; }   /* has a scheme */
    const char *scheme_end = strstr(base, "://");
    if (!scheme_end) { snprintf(out, cap, "%s", href); return; }
    if (href[0] == '/' && href[1] == '/') {
        snprintf(out, cap, "%.*s:%s", (int)(scheme_end - base), base, href);
        return;
    }
    const char *host = scheme_end + 3;
    const char *path = strchr(host, '/');
    size_t origin_len = path ? (size_t)(path - base) : strlen(base);
    if (href[0] == '/') { snprintf(out, cap, "%.*s%s", (int)origin_len, base, href); return; }
    if (href[0] == '?' ) {
        const char *query = strchr(base, '?');
        size_t keep = query ? (size_t)(query - base) : strlen(base);
        snprintf(out, cap, "%.*s%s", (int)keep, base, href);
        return;
    }
    /* Relative to the base's directory (the part up to its last '/', query dropped). */
    size_t dir_len = origin_len;
    if (path) {
        const char *query = strpbrk(path, "?#");
        const char *last = path;
        for (const char *q = path; *q && (!query || q < query); q++)
            if (*q == '/') last = q;
        dir_len = (size_t)(last - base) + 1;
        snprintf(out, cap, "%.*s%s", (int)dir_len, base, href);
    } else {
        snprintf(out, cap, "%.*s/%s", (int)dir_len, base, href);
    }
}

static void end_link(html_state *s)
{
    if (!s->in_link) return;
    s->in_link = 0;
    if (!s->href[0] || s->href[0] == '#' || strncmp(s->href, "javascript:", 11) == 0) return;
    char url[HTTP_MAX_URL];
    absolute_url(s->base, s->href, url, sizeof url);
    size_t text_len = s->out.len - s->link_start;
    /* A link whose text is its own address needs no repeat. */
    if (text_len > 0 && (strlen(url) == text_len && memcmp(s->out.buf + s->link_start, url, text_len) == 0)) return;
    if (text_len > 0 && strlen(s->href) == text_len && memcmp(s->out.buf + s->link_start, s->href, text_len) == 0) return;
    if (s->pending_space) { tb_put(&s->out, " ", 1); s->pending_space = 0; }
    else if (text_len > 0) tb_put(&s->out, " ", 1);
    tb_put(&s->out, "(", 1);
    tb_put(&s->out, url, strlen(url));
    tb_put(&s->out, ")", 1);
}

/* Finds the end of the element `name` that starts being skipped at p. */
static const char *skip_element(const char *p, const char *end, const char *name, size_t n)
{
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (!lt || lt + 2 + n > end) return end;
        if (lt[1] == '/' && (size_t)(end - lt - 2) >= n) {
            int same = 1;
            for (size_t i = 0; i < n && same; i++) {
                char c = lt[2 + i];
                if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
                char w = name[i];
                if (w >= 'A' && w <= 'Z') w = (char)(w - 'A' + 'a');
                same = c == w;
            }
            if (same && (lt + 2 + n == end || !is_name_char(lt[2 + n]))) {
                const char *gt = memchr(lt, '>', (size_t)(end - lt));
                return gt ? gt + 1 : end;
            }
        }
        p = lt + 1;
    }
    return end;
}

static void html_to_text(html_state *s, const char *p, const char *end)
{
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        emit_decoded(s, p, lt ? lt : end, 0);
        if (!lt) break;
        p = lt;
        if (end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
            const char *close = NULL;
            for (const char *q = p + 4; q + 3 <= end; q++)
                if (q[0] == '-' && q[1] == '-' && q[2] == '>') { close = q + 3; break; }
            p = close ? close : end;
            continue;
        }
        if (end - p >= 2 && (p[1] == '!' || p[1] == '?')) {   /* doctype, processing instruction */
            const char *gt = memchr(p, '>', (size_t)(end - p));
            p = gt ? gt + 1 : end;
            continue;
        }
        int closing = end - p >= 2 && p[1] == '/';
        const char *name = p + 1 + closing;
        const char *q = name;
        while (q < end && is_name_char(*q)) q++;
        size_t name_len = (size_t)(q - name);
        if (name_len == 0 || !((*name >= 'a' && *name <= 'z') || (*name >= 'A' && *name <= 'Z'))) {
            emit_text(s, "<", 1);   /* a bare "<" in text */
            p++;
            continue;
        }
        /* The tag's end, with quoted attribute values allowed to hold '>'. */
        char quote = 0;
        while (q < end && (quote || *q != '>')) {
            if (quote && *q == quote) quote = 0;
            else if (!quote && (*q == '"' || *q == '\'')) quote = *q;
            q++;
        }
        const char *tag_end = q;
        p = q < end ? q + 1 : end;

        if (!closing && name_is(name, name_len, "title")) {
            const char *stop = skip_element(p, end, "title", 5);
            const char *close = stop;
            while (close > p && *(close - 1) != '<') close--;
            if (close > p) close--;
            s->title.len = 0;
            emit_decoded(s, p, close > p ? close : p, 1);
            p = stop;
            continue;
        }
        if (!closing && in_list(name, name_len, dropped_elements)) {
            if (name_is(name, name_len, "head")) {
                /* The head holds the title: read it, drop the rest. */
                const char *stop = skip_element(p, end, "head", 4);
                const char *t = p;
                while (t < stop) {
                    const char *lt2 = memchr(t, '<', (size_t)(stop - t));
                    if (!lt2) break;
                    if (stop - lt2 > 6 && name_is(lt2 + 1, 5, "title") && !is_name_char(lt2[6])) {
                        const char *gt = memchr(lt2, '>', (size_t)(stop - lt2));
                        if (!gt) break;
                        const char *title_end = skip_element(gt + 1, stop, "title", 5);
                        const char *close = title_end;
                        while (close > gt + 1 && *(close - 1) != '<') close--;
                        if (close > gt + 1) close--;
                        s->title.len = 0;
                        emit_decoded(s, gt + 1, close, 1);
                        break;
                    }
                    t = lt2 + 1;
                }
                p = stop;
            } else {
                p = skip_element(p, end, name, name_len);
            }
            continue;
        }
        if (name_is(name, name_len, "a")) {
            if (closing) end_link(s);
            else {
                end_link(s);
                if (!attribute(name + name_len, tag_end, "href", s->href, sizeof s->href)) s->href[0] = 0;
                if (s->pending_space && s->out.len > 0 && s->out.buf[s->out.len - 1] != '\n') {
                    tb_put(&s->out, " ", 1);
                }
                s->pending_space = 0;
                s->link_start = s->out.len;
                s->in_link = 1;
            }
            continue;
        }
        if (name_is(name, name_len, "pre")) s->pre = !closing;
        if (!closing && name_is(name, name_len, "img")) {
            char alt[512];
            if (attribute(name + name_len, tag_end, "alt", alt, sizeof alt) && alt[0]) {
                emit_text(s, "[", 1);
                emit_text(s, alt, strlen(alt));
                emit_text(s, "]", 1);
            }
            continue;
        }
        if (name_is(name, name_len, "li")) {
            emit_break(s, 1);
            if (!closing) tb_put(&s->out, "- ", 2);
            continue;
        }
        if (name_is(name, name_len, "td") || name_is(name, name_len, "th")) {
            if (closing) { s->pending_space = 0; tb_put(&s->out, "\t", 1); }
            continue;
        }
        if (in_list(name, name_len, paragraph_elements)) {
            emit_break(s, 2);
            if (!closing && name_len == 2 && (name[0] == 'h' || name[0] == 'H') && name[1] >= '1' && name[1] <= '6') {
                for (char level = '1'; level <= name[1]; level++) tb_put(&s->out, "#", 1);
                tb_put(&s->out, " ", 1);
            }
            continue;
        }
        if (in_list(name, name_len, line_elements)) {
            emit_break(s, 1);
            continue;
        }
        /* Inline elements (span, b, em, code, ...) leave the text as it is. */
    }
    end_link(s);
    emit_break(s, 0);
    while (s->out.len > 0 && (s->out.buf[s->out.len - 1] == '\n' || s->out.buf[s->out.len - 1] == ' '))
        s->out.buf[--s->out.len] = 0;
}

/* ---------------------------------------------------------------------------
 * The request
 * ------------------------------------------------------------------------- */

/* Copies the input's "headers" object into the writer (as the value of the
 * current key), checking each name and value, and adding Content-Type when the
 * caller gave `content_type` and no such header. Returns 0, or -1 after fail(). */
static llmos_status write_headers(const llmos_host *host, llmos_call_ctx *ctx, const char *input, size_t len,
                                  const char *content_type, llmos_json_writer *w)
{
    const char *headers = NULL;
    size_t headers_len = 0;
    int has_content_type = 0, count = 0;
    llmos_json_write_begin_object(w);
    if (llmos_json_find(input, len, "headers", &headers, &headers_len) && headers_len && headers[0] == '{') {
        const char *p = headers + 1, *end = headers + headers_len;
        for (;;) {
            p = llmos_json__ws(p, end);
            if (p >= end || *p == '}') break;
            const char *key_end = llmos_json__skip_string(p, end);
            if (!key_end) break;
            char name[256], value[8192];
            long name_len = llmos_json_decode_string(p, (size_t)(key_end - p), name, sizeof name);
            p = llmos_json__ws(key_end, end);
            if (p >= end || *p != ':') break;
            p = llmos_json__ws(p + 1, end);
            const char *value_end = llmos_json__skip_value(p, end, 0);
            if (!value_end) break;
            long value_len = llmos_json_decode_string(p, (size_t)(value_end - p), value, sizeof value);
            if (name_len <= 0 || (size_t)name_len >= sizeof name)
                return fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "headers: a header name must be 1 to 255 characters");
            if (value_len < 0 || (size_t)value_len >= sizeof value)
                return fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "headers.%s: the value must be a string of at most 8191 bytes", name);
            for (long i = 0; i < name_len; i++) {
                char c = name[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c)))
                    return fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT,
                                "headers: \"%s\" is not a header name (letters, digits and !#$%%&'*+-.^_`|~ only)", name);
            }
            for (long i = 0; i < value_len; i++)
                if (value[i] == '\r' || value[i] == '\n' || value[i] == 0)
                    return fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT,
                                "headers.%s: the value must not contain CR, LF or NUL (one header per key)", name);
            if (++count > HTTP_MAX_HEADERS)
                return fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "headers: at most %d headers", HTTP_MAX_HEADERS);
            if (name_is(name, (size_t)name_len, "content-type")) has_content_type = 1;
            llmos_json_write_key(w, name);
            llmos_json_write_string_n(w, value, (size_t)value_len);
            p = llmos_json__ws(value_end, end);
            if (p < end && *p == ',') p++;
        }
    }
    if (content_type && !has_content_type) {
        llmos_json_write_key(w, "Content-Type");
        llmos_json_write_string(w, content_type);
    }
    llmos_json_write_end_object(w);
    return LLMOS_OK;
}

static int is_html(const char *content_type, const char *body, size_t body_len)
{
    if (content_type[0])
        return strstr(content_type, "html") != NULL;
    /* No Content-Type: sniff the start, as browsers do. */
    size_t i = 0;
    while (i < body_len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t')) i++;
    return body_len - i >= 5 && (strncmp(body + i, "<!DOC", 5) == 0 || strncmp(body + i, "<!doc", 5) == 0
                                 || strncmp(body + i, "<html", 5) == 0 || strncmp(body + i, "<HTML", 5) == 0);
}

static llmos_status fetch(const llmos_host *host, llmos_call_ctx *ctx, const char *method, const char *input, size_t len)
{
    char url[HTTP_MAX_URL], format[16] = "text", content_type_in[256];
    int64_t max_bytes = HTTP_DEFAULT_MAX_BYTES, timeout_ms = HTTP_DEFAULT_TIMEOUT_MS;
    const char *body_raw = NULL;
    size_t body_raw_len = 0;
    long n = llmos_json_get_string(input, len, "url", url, sizeof url);
    if (n <= 0 || (size_t)n >= sizeof url)
        return fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "url must be an http:// or https:// URL of at most %d bytes", HTTP_MAX_URL - 1);
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "url: only http:// and https:// URLs are fetched, got \"%.64s\"", url);
    if (llmos_json_find(input, len, "max_bytes", NULL, NULL) && !llmos_json_get_int64(input, len, "max_bytes", &max_bytes))
        return fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "max_bytes must be an integer");
    if (max_bytes < 1 || max_bytes > HTTP_LIMIT_MAX_BYTES)
        return fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "max_bytes must be between 1 and %ld, got %lld", HTTP_LIMIT_MAX_BYTES, (long long)max_bytes);
    if (llmos_json_find(input, len, "timeout_ms", NULL, NULL) && !llmos_json_get_int64(input, len, "timeout_ms", &timeout_ms))
        return fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "timeout_ms must be an integer");
    if (timeout_ms < 1 || timeout_ms > HTTP_LIMIT_TIMEOUT_MS)
        return fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "timeout_ms must be between 1 and %d, got %lld", HTTP_LIMIT_TIMEOUT_MS, (long long)timeout_ms);
    long f = llmos_json_get_string(input, len, "format", format, sizeof format);
    if (f >= 0 && strcmp(format, "text") != 0 && strcmp(format, "raw") != 0)
        return fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "format must be \"text\" (HTML made readable) or \"raw\" (the body as sent)");
    long ct = llmos_json_get_string(input, len, "content_type", content_type_in, sizeof content_type_in);
    if (ct >= (long)sizeof content_type_in)
        return fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "content_type is too long (at most 255 bytes)");
    if (strcmp(method, "POST") == 0 && !llmos_json_find(input, len, "body", &body_raw, &body_raw_len))
        return fail(host, ctx, LLMOS_ERR_INVALID_ARGUMENT, "body is required for a POST (use an empty string for none)");

    llmos_json_writer req = LLMOS_JSON_WRITER_INIT;
    llmos_json_write_begin_object(&req);
    llmos_json_write_key(&req, "url");
    llmos_json_write_string(&req, url);
    llmos_json_write_key(&req, "method");
    llmos_json_write_string(&req, method);
    llmos_json_write_key(&req, "headers");
    llmos_status status = write_headers(host, ctx, input, len,
                                        body_raw ? (ct > 0 ? content_type_in : "text/plain; charset=utf-8") : NULL, &req);
    if (status != LLMOS_OK) {
        llmos_json_writer_free(&req);
        return status;
    }
    if (body_raw) {
        llmos_json_write_key(&req, "body");
        llmos_json_write_raw(&req, body_raw, body_raw_len);   /* already a JSON string (the schema says so) */
    }
    llmos_json_write_key(&req, "max_bytes");
    llmos_json_write_int64(&req, max_bytes);
    llmos_json_write_key(&req, "truncate");
    llmos_json_write_bool(&req, 1);
    llmos_json_write_key(&req, "timeout_ms");
    llmos_json_write_int64(&req, timeout_ms);
    llmos_json_write_end_object(&req);
    if (req.failed) {
        llmos_json_writer_free(&req);
        return fail(host, ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "out of memory");
    }
    const char *response;
    size_t response_len;
    status = syscall_json(host, ctx, "net.fetch", &req, &response, &response_len);
    llmos_json_writer_free(&req);
    if (status != LLMOS_OK)
        return status;

    /* The response: status, url (final), headers, body, encoding?, truncated. */
    int64_t http_status = 0;
    int truncated = 0;
    char final_url[HTTP_MAX_URL] = "", content_type[256] = "", encoding[16] = "";
    const char *headers, *body_value;
    size_t headers_len, body_value_len;
    llmos_json_get_int64(response, response_len, "status", &http_status);
    llmos_json_get_bool(response, response_len, "truncated", &truncated);
    if (llmos_json_get_string(response, response_len, "url", final_url, sizeof final_url) >= (long)sizeof final_url)
        final_url[0] = 0;
    llmos_json_get_string(response, response_len, "encoding", encoding, sizeof encoding);
    if (llmos_json_find(response, response_len, "headers", &headers, &headers_len))
        llmos_json_get_string(headers, headers_len, "content-type", content_type, sizeof content_type);
    if (!llmos_json_find(response, response_len, "body", &body_value, &body_value_len))
        return fail(host, ctx, LLMOS_ERR_INTERNAL, "net.fetch answered without a body");
    for (char *c = content_type; *c; c++)
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');

    llmos_json_writer w = LLMOS_JSON_WRITER_INIT;
    llmos_json_write_begin_object(&w);
    llmos_json_write_key(&w, "status");
    llmos_json_write_int64(&w, http_status);
    llmos_json_write_key(&w, "url");
    llmos_json_write_string(&w, final_url);
    llmos_json_write_key(&w, "content_type");
    llmos_json_write_string(&w, content_type);
    llmos_json_write_key(&w, "truncated");
    llmos_json_write_bool(&w, truncated);
    if (strcmp(encoding, "base64") == 0) {
        /* Not text: a model cannot read it, so say what it is instead. */
        char note[512];
        snprintf(note, sizeof note, "binary content (%s) is not shown; http returns text only",
                 content_type[0] ? content_type : "no content type");
        llmos_json_write_key(&w, "text");
        llmos_json_write_string(&w, "");
        llmos_json_write_key(&w, "note");
        llmos_json_write_string(&w, note);
    } else {
        /* Decoded text is never longer than its JSON form. */
        char *body = (char *)malloc(body_value_len + 1);
        if (!body) {
            llmos_json_writer_free(&w);
            return fail(host, ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "out of memory");
        }
        long body_len = llmos_json_decode_string(body_value, body_value_len, body, body_value_len + 1);
        if (body_len < 0) body_len = 0;
        if (strcmp(format, "text") == 0 && is_html(content_type, body, (size_t)body_len)) {
            html_state s;
            memset(&s, 0, sizeof s);
            s.base = final_url[0] ? final_url : url;
            html_to_text(&s, body, body + body_len);
            if (s.out.failed || s.title.failed) {
                free(s.out.buf);
                free(s.title.buf);
                free(body);
                llmos_json_writer_free(&w);
                return fail(host, ctx, LLMOS_ERR_RESOURCE_EXHAUSTED, "out of memory converting the page");
            }
            if (s.title.len) {
                /* Collapse the title's whitespace too. */
                html_state t;
                memset(&t, 0, sizeof t);
                emit_text(&t, s.title.buf, s.title.len);
                llmos_json_write_key(&w, "title");
                llmos_json_write_string_n(&w, t.out.buf ? t.out.buf : "", t.out.len);
                free(t.out.buf);
            }
            llmos_json_write_key(&w, "text");
            llmos_json_write_string_n(&w, s.out.buf ? s.out.buf : "", s.out.len);
            free(s.out.buf);
            free(s.title.buf);
        } else {
            llmos_json_write_key(&w, "text");
            llmos_json_write_string_n(&w, body, (size_t)body_len);
        }
        free(body);
    }
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
 * The driver
 * ------------------------------------------------------------------------- */

typedef struct {
    const llmos_host *host;
} http_instance;

static llmos_status http_create(const llmos_host *host, const char *config, size_t config_len, void **out)
{
    (void)config;
    (void)config_len;
    http_instance *self = (http_instance *)calloc(1, sizeof *self);
    if (!self)
        return LLMOS_ERR_RESOURCE_EXHAUSTED;
    self->host = host;
    *out = self;
    return LLMOS_OK;
}

static void http_destroy(void *self) { free(self); }

static llmos_status http_call(void *instance, llmos_call_ctx *ctx, const char *op, const char *input, size_t len)
{
    const llmos_host *host = ((http_instance *)instance)->host;
    if (strcmp(op, "get") == 0)
        return fetch(host, ctx, "GET", input, len);
    if (strcmp(op, "post") == 0)
        return fetch(host, ctx, "POST", input, len);
    return fail(host, ctx, LLMOS_ERR_UNSUPPORTED, "no operation %s in driver http", op);
}

static const char *const operations[] = { "get", "post", NULL };

static const llmos_driver driver = {
    LLMOS_DRIVER_HEADER,
    "http",
    "1.0.0",
    operations,
    http_create,
    http_destroy,
    http_call,
    { NULL },
};

LLMOS_EXPORT llmos_status llmos_driver_entry_v1(const llmos_host *host, const llmos_driver **out)
{
    (void)host;
    *out = &driver;
    return LLMOS_OK;
}
