#include <curl/curl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
/* curl_easy_setopt is variadic, which Swift cannot call: one typed wrapper per argument kind. */
static inline CURLcode llmos_curl_setopt_long(CURL *c, CURLoption o, long v) { return curl_easy_setopt(c, o, v); }
static inline CURLcode llmos_curl_setopt_string(CURL *c, CURLoption o, const char *v) { return curl_easy_setopt(c, o, v); }
static inline CURLcode llmos_curl_setopt_pointer(CURL *c, CURLoption o, void *v) { return curl_easy_setopt(c, o, v); }
static inline CURLcode llmos_curl_getinfo_long(CURL *c, CURLINFO i, long *v) { return curl_easy_getinfo(c, i, v); }
static inline CURLcode llmos_curl_getinfo_string(CURL *c, CURLINFO i, char **v) { return curl_easy_getinfo(c, i, v); }

/* For LLMOSNet (net.fetch). */
static inline CURLcode llmos_curl_setopt_off(CURL *c, CURLoption o, curl_off_t v) { return curl_easy_setopt(c, o, v); }
static inline CURLcode llmos_curl_setopt_slist(CURL *c, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(c, o, v); }
static inline CURLcode llmos_curl_setopt_curlu(CURL *c, CURLU *v) { return curl_easy_setopt(c, CURLOPT_CURLU, v); }
/* CURLOPT_WRITEFUNCTION and CURLOPT_HEADERFUNCTION share the curl_write_callback type. */
static inline CURLcode llmos_curl_setopt_write_function(CURL *c, CURLoption o, curl_write_callback f) { return curl_easy_setopt(c, o, f); }
static inline CURLcode llmos_curl_setopt_opensocket_function(CURL *c, curl_opensocket_callback f) { return curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, f); }
static inline CURLcode llmos_curl_getinfo_off(CURL *c, CURLINFO i, curl_off_t *v) { return curl_easy_getinfo(c, i, v); }

/* The IP address of a curl_sockaddr (as curl is about to connect to it) as text, with its port.
   An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is given in its IPv4 form. Returns 4 or 6 for
   the family of the text, 0 when the address is not an IP address (or the buffer is too small).
   A C helper because `addr` is declared as a 16-byte struct sockaddr while an IPv6 address
   runs past it (curl allocates room for the whole address). */
static inline int llmos_curl_sockaddr_text(const struct curl_sockaddr *a, char *buf, size_t len, int *port) {
    if (a->family == AF_INET && a->addrlen >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)&a->addr;
        *port = ntohs(in->sin_port);
        return inet_ntop(AF_INET, &in->sin_addr, buf, (socklen_t)len) ? 4 : 0;
    }
    if (a->family == AF_INET6 && a->addrlen >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)&a->addr;
        *port = ntohs(in6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            return inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf, (socklen_t)len) ? 4 : 0;
        return inet_ntop(AF_INET6, &in6->sin6_addr, buf, (socklen_t)len) ? 6 : 0;
    }
    return 0;
}

/* The canonical text of an IPv6 literal (no brackets, no zone): lowercase, zeros compressed
   (RFC 5952, as inet_ntop writes it). An IPv4-mapped address is written in its IPv4 form and
   4 is returned; 6 for any other IPv6 address; 0 when `text` is not an IPv6 address. */
static inline int llmos_ipv6_canonical(const char *text, char *buf, size_t len) {
    struct in6_addr a;
    if (inet_pton(AF_INET6, text, &a) != 1) return 0;
    if (IN6_IS_ADDR_V4MAPPED(&a))
        return inet_ntop(AF_INET, &a.s6_addr[12], buf, (socklen_t)len) ? 4 : 0;
    return inet_ntop(AF_INET6, &a, buf, (socklen_t)len) ? 6 : 0;
}

/* For LLMOSNet's net.stream.*: a transfer driven by a multi handle on the caller's thread.
   Returns 1 and the result when `easy` has finished (CURLMSG_DONE), else 0. */
static inline int llmos_curl_multi_done(CURLM *m, CURLcode *result) {
    int queued;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(m, &queued))) {
        if (msg->msg == CURLMSG_DONE) {
            *result = msg->data.result;
            return 1;
        }
    }
    return 0;
}
