/*
 * syscall_error.h — how the fixtures that make system calls (syscaller, probe)
 * pass a failed call's error back: its status, and the message inside the
 * response ({"error": {"code", "message"}}), or the whole response text if it
 * has another shape. Forwarding the whole text every time would, through
 * syscaller's `recurse`, nest (and re-escape) one JSON document per level.
 */
#ifndef LLMOS_FIXTURE_SYSCALL_ERROR_H
#define LLMOS_FIXTURE_SYSCALL_ERROR_H
#include <llmos/llmos.h>
#include <llmos/llmos_json.h>
#include <stdlib.h>
#include <string.h>

static llmos_status fail_with(const llmos_host *host, llmos_call_ctx *ctx, llmos_status status,
                              const char *resp, size_t resp_len)
{
    const char *error, *message = NULL;
    size_t error_len, message_len = 0;
    char *text;
    long n = -1;

    if (!resp) {
        resp = "";
        resp_len = 0;
    }
    if (llmos_json_find(resp, resp_len, "error", &error, &error_len) &&
        llmos_json_find(error, error_len, "message", &message, &message_len))
        n = llmos_json_decode_string(message, message_len, NULL, 0);
    text = (char *)malloc((n >= 0 ? (size_t)n : resp_len) + 1);
    if (!text) {
        host->set_error(ctx, status, "syscall failed (and out of memory for its message)");
        return status;
    }
    if (n >= 0) {
        llmos_json_decode_string(message, message_len, text, (size_t)n + 1);
    } else {
        if (resp_len) memcpy(text, resp, resp_len);
        text[resp_len] = '\0';
    }
    host->set_error(ctx, status, text);
    free(text);
    return status;
}
#endif
