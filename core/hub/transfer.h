/* transfer.h — internal to core/hub: the parts every transfer shares
 * (transfer.c) — easy-handle setup, header parsing, progress throttling,
 * attempt outcomes and the retry loop. Prefix tx_. Not installed. */
#ifndef TORSH_HUB_TRANSFER_H
#define TORSH_HUB_TRANSFER_H

#include <curl/curl.h>
#include <stdarg.h>

#include "torsh/hub.h"

/* An easy handle with its error buffer and header list. */
typedef struct tx_conn {
    CURL *curl;
    struct curl_slist *headers;   /* first n_fixed entries stay for every attempt */
    int n_fixed;
    char errbuf[CURL_ERROR_SIZE];
} tx_conn;

/* Headers of the current response (reset at each status line). */
typedef struct tx_resp {
    long status;
    char etag[256];
    char last_modified[128];
    char content_type[128];
    int64_t content_length;       /* -1 unknown */
    int64_t range_start;          /* from Content-Range, -1 none */
    int64_t range_total;          /* from Content-Range, -1 none or '*' */
    double retry_after;           /* seconds, -1 none */
} tx_resp;

/* How one attempt ended. */
typedef struct tx_outcome {
    ts_status code;               /* TS_OK: done */
    char reason[16];
    char msg[900];
    bool retry;                   /* another attempt may help */
    bool no_wait;                 /* ... and needs no backoff (a restart) */
    bool progressed;              /* data arrived in this attempt */
    double retry_after;           /* server's Retry-After, -1 none */
    int64_t done, total;          /* for progress reports while waiting */
} tx_outcome;

typedef struct tx_prog {
    ts_hub_progress_fn fn;
    void *user;
    double last;
    bool cancelled;
} tx_prog;

typedef void (*tx_attempt_fn)(void *ctx, tx_outcome *oc);

ts_status tx_init(void);
double tx_now(void);
bool tx_is_file_url(const char *url);

/* New easy handle for url with the options applied (NULL + message on failure). */
CURL *tx_easy(const char *url, const ts_hub_options *o, tx_conn *conn);
/* Sets the header list: the fixed ones plus up to two extra lines (NULL: none). */
void tx_easy_headers(tx_conn *conn, const char *extra1, const char *extra2);
void tx_easy_close(tx_conn *conn);

/* CURLOPT_HEADERFUNCTION filling a tx_resp. */
size_t tx_on_header(char *b, size_t size, size_t nitems, void *ud);

/* Reports progress at most every 0.1 s (always when force); false once cancelled. */
bool tx_progress(tx_prog *p, int64_t done, int64_t total, bool force);

void tx_fail(tx_outcome *oc, ts_status code, const char *reason, bool retry, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Outcome of a libcurl error code (HTTP errors use r->status, Retry-After). */
void tx_classify(CURLcode rc, const tx_conn *conn, const tx_resp *r, const char *what, const char *url_shown, tx_outcome *oc);

/* Runs fn until it succeeds, fails for good, or `tries` attempts in a row
 * make no progress; waits with backoff + jitter (or Retry-After) between. */
ts_status tx_run(const ts_hub_options *o, tx_attempt_fn fn, void *ctx, tx_prog *prog, ts_hub_result *res);

#endif
