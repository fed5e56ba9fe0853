/* transfer.c — what the hub's transfers share: libcurl's one-time init, a
 * configured easy handle (timeouts, redirects, HTTP/2, proxies from the
 * environment, the bearer token), response-header parsing, throttled
 * progress, the retry loop (exponential backoff with jitter, Retry-After),
 * URL redaction and the offline switch. Used by download.c and requests.c;
 * declared in transfer.h. */
#include "transfer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* ---- process-wide init (libcurl needs it once, before any thread uses it) */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;
static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

ts_status tx_init(void)
{
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return ts_fail(TS_ERR_INTERNAL, "hub: libcurl init failed: %s", curl_easy_strerror(curl_init_rc));
    return TS_OK;
}

double tx_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

bool ts_hub_offline(void)
{
    const char *v = getenv("TORSH_OFFLINE");
    return v && (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"));
}

bool tx_is_file_url(const char *url) { return strncasecmp(url, "file:", 5) == 0; }

/* ---- redaction --------------------------------------------------------------- */

typedef struct out { char *p; size_t left; } out;

static void put(out *o, const char *s, size_t n)
{
    if (o->left <= 1) return;
    if (n > o->left - 1) n = o->left - 1;
    memcpy(o->p, s, n);
    o->p += n;
    o->left -= n;
    *o->p = '\0';
}

static bool secret_key(const char *k, size_t n)
{
    static const char *const words[] = { "token", "key", "sig", "auth", "password", "passwd", "secret", "credential" };
    char low[64];
    if (n >= sizeof low) n = sizeof low - 1;
    for (size_t i = 0; i < n; i++) low[i] = (char)(k[i] >= 'A' && k[i] <= 'Z' ? k[i] + 32 : k[i]);
    low[n] = '\0';
    if (!strncmp(low, "x-amz-", 6)) return true;
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strstr(low, words[i])) return true;
    return false;
}

char *ts_hub_redact_url(const char *url, char *buf, size_t n)
{
    out o = { buf, n };
    if (n) buf[0] = '\0';
    const char *s = url;
    const char *scheme_end = strstr(s, "://");
    if (scheme_end) {
        put(&o, s, (size_t)(scheme_end + 3 - s));
        s = scheme_end + 3;
        size_t auth_len = strcspn(s, "/?#");
        const char *at = memchr(s, '@', auth_len);
        if (at) {
            put(&o, "***@", 4);
            s = at + 1;
        }
    }
    size_t path_len = strcspn(s, "?#");
    put(&o, s, path_len);
    s += path_len;
    if (*s == '?') {
        put(&o, "?", 1);
        s++;
        while (*s && *s != '#') {
            size_t plen = strcspn(s, "&#");
            const char *eq = memchr(s, '=', plen);
            if (eq && secret_key(s, (size_t)(eq - s))) {
                put(&o, s, (size_t)(eq + 1 - s));
                put(&o, "***", 3);
            } else {
                put(&o, s, plen);
            }
            s += plen;
            if (*s == '&') { put(&o, "&", 1); s++; }
        }
    }
    put(&o, s, strlen(s));
    return buf;
}

/* ---- easy handles ------------------------------------------------------------- */

CURL *tx_easy(const char *url, const ts_hub_options *o, tx_conn *conn)
{
    memset(conn, 0, sizeof *conn);
    CURL *c = curl_easy_init();
    if (!c) return ts_fail_null(TS_ERR_MEMORY, "hub: cannot create a transfer handle");
    conn->curl = c;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS | CURLPROTO_FILE));
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    double ct = o->connect_timeout_s > 0 ? o->connect_timeout_s : 10;
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(ct * 1000));
    double lst = o->low_speed_time_s > 0 ? o->low_speed_time_s : 30;
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)(lst < 1 ? 1 : lst + 0.5));
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, (long)(o->low_speed_bytes > 0 ? o->low_speed_bytes : 1));
    if (o->timeout_s > 0) curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(o->timeout_s * 1000));
    curl_easy_setopt(c, CURLOPT_USERAGENT, o->user_agent ? o->user_agent : "torsh/" TS_VERSION_STRING);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, conn->errbuf);
    if (o->token && *o->token) {
        /* the header lives only in this list; it is never formatted into a message */
        size_t n = strlen(o->token) + 32;
        char *h = malloc(n);
        if (!h) { curl_easy_cleanup(c); conn->curl = NULL; return ts_fail_null(TS_ERR_MEMORY, "hub: out of memory"); }
        snprintf(h, n, "Authorization: Bearer %s", o->token);
        conn->headers = curl_slist_append(NULL, h);
        memset(h, 0, n);
        free(h);
        conn->n_fixed = 1;
    }
    return c;
}

void tx_easy_headers(tx_conn *conn, const char *extra1, const char *extra2)
{
    /* keep the fixed part (the token), replace the per-attempt part */
    struct curl_slist *fixed = NULL;
    struct curl_slist *h = conn->headers;
    for (int i = 0; h && i < conn->n_fixed; i++, h = h->next) fixed = curl_slist_append(fixed, h->data);
    curl_slist_free_all(conn->headers);
    conn->headers = fixed;
    if (extra1) conn->headers = curl_slist_append(conn->headers, extra1);
    if (extra2) conn->headers = curl_slist_append(conn->headers, extra2);
    curl_easy_setopt(conn->curl, CURLOPT_HTTPHEADER, conn->headers);
}

void tx_easy_close(tx_conn *conn)
{
    if (conn->curl) curl_easy_cleanup(conn->curl);
    curl_slist_free_all(conn->headers);
    conn->curl = NULL;
    conn->headers = NULL;
}

/* ---- response headers ------------------------------------------------------------- */

/* Copies a header value without surrounding blanks, cut to fit. */
static void trim_copy(char *dst, size_t n, const char *s, size_t len)
{
    while (len && (*s == ' ' || *s == '\t')) { s++; len--; }
    while (len && (s[len - 1] == '\r' || s[len - 1] == '\n' || s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
    if (len >= n) len = n - 1;
    memcpy(dst, s, len);
    dst[len] = '\0';
}

size_t tx_on_header(char *b, size_t size, size_t nitems, void *ud)
{
    tx_resp *r = ud;
    size_t len = size * nitems;
    if (len >= 5 && !strncmp(b, "HTTP/", 5)) {            /* a new response (redirects, 100-continue) */
        memset(r, 0, sizeof *r);
        r->content_length = -1;
        r->range_start = r->range_total = -1;
        r->retry_after = -1;
        const char *sp = memchr(b, ' ', len);
        if (sp) r->status = strtol(sp + 1, NULL, 10);
        return len;
    }
    const char *colon = memchr(b, ':', len);
    if (!colon) return len;
    size_t klen = (size_t)(colon - b);
    const char *v = colon + 1;
    size_t vlen = len - klen - 1;
    char val[512];
    trim_copy(val, sizeof val, v, vlen);
    if (klen == 4 && !strncasecmp(b, "ETag", 4)) {
        trim_copy(r->etag, sizeof r->etag, val, strlen(val));
    } else if (klen == 13 && !strncasecmp(b, "Last-Modified", 13)) {
        trim_copy(r->last_modified, sizeof r->last_modified, val, strlen(val));
    } else if (klen == 14 && !strncasecmp(b, "Content-Length", 14)) {
        r->content_length = strtoll(val, NULL, 10);
    } else if (klen == 13 && !strncasecmp(b, "Content-Range", 13)) {
        long long a = -1, z = -1, t = -1;
        if (sscanf(val, "bytes %lld-%lld/%lld", &a, &z, &t) >= 2) { r->range_start = a; r->range_total = t; }
        else if (sscanf(val, "bytes */%lld", &t) == 1) r->range_total = t;
    } else if (klen == 11 && !strncasecmp(b, "Retry-After", 11)) {
        char *end;
        double s = strtod(val, &end);
        if (end != val && *end == '\0') r->retry_after = s < 0 ? 0 : s;
        else {
            time_t when = curl_getdate(val, NULL);
            if (when > 0) r->retry_after = difftime(when, time(NULL)) > 0 ? difftime(when, time(NULL)) : 0;
        }
    } else if (klen == 12 && !strncasecmp(b, "Content-Type", 12)) {
        trim_copy(r->content_type, sizeof r->content_type, val, strlen(val));
    }
    return len;
}

/* ---- progress --------------------------------------------------------------------- */

bool tx_progress(tx_prog *p, int64_t done, int64_t total, bool force)
{
    if (p->cancelled) return false;
    if (!p->fn) return true;
    double t = tx_now();
    if (!force && t - p->last < 0.1) return true;
    p->last = t;
    if (p->fn(done, total, p->user) != 0) p->cancelled = true;
    return !p->cancelled;
}

/* ---- classifying a finished attempt ------------------------------------------------- */

static bool retryable_status(long s) { return s == 408 || s == 429 || (s >= 500 && s <= 599); }

void tx_fail(tx_outcome *oc, ts_status code, const char *reason, bool retry, const char *fmt, ...)
{
    oc->code = code;
    oc->retry = retry;
    snprintf(oc->reason, sizeof oc->reason, "%s", reason);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(oc->msg, sizeof oc->msg, fmt, ap);
    va_end(ap);
}

void tx_classify(CURLcode rc, const tx_conn *conn, const tx_resp *r, const char *what, const char *url_shown, tx_outcome *oc)
{
    const char *detail = conn->errbuf[0] ? conn->errbuf : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_HTTP_RETURNED_ERROR:
        oc->retry_after = r->retry_after;
        tx_fail(oc, TS_ERR_IO, "http", retryable_status(r->status), "%s: %s: HTTP %ld", what, url_shown, r->status);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        tx_fail(oc, TS_ERR_IO, "timeout", true, "%s: %s: timed out (%s)", what, url_shown, detail);
        break;
    case CURLE_COULDNT_CONNECT: case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_RECV_ERROR: case CURLE_SEND_ERROR: case CURLE_PARTIAL_FILE: case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR: case CURLE_HTTP2: case CURLE_HTTP2_STREAM: case CURLE_WEIRD_SERVER_REPLY:
        tx_fail(oc, TS_ERR_IO, "network", true, "%s: %s: %s", what, url_shown, detail);
        break;
    default:
        tx_fail(oc, TS_ERR_IO, "network", false, "%s: %s: %s", what, url_shown, detail);
        break;
    }
}

/* ---- the retry loop ----------------------------------------------------------------- */

static double jitter01(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    *state = x;
    return (double)(x >> 11) / 9007199254740992.0;
}

/* Waits `s` seconds in slices, reporting progress so a cancel (Ctrl-C in a
 * Lua callback) ends the wait. False when cancelled. */
static bool wait_s(double s, tx_prog *p, int64_t done, int64_t total)
{
    double end = tx_now() + s;
    for (;;) {
        double left = end - tx_now();
        if (left <= 0) return true;
        if (left > 0.1) left = 0.1;
        struct timespec ts = { 0, (long)(left * 1e9) };
        nanosleep(&ts, NULL);
        if (!tx_progress(p, done, total, true)) return false;
    }
}

ts_status tx_run(const ts_hub_options *o, tx_attempt_fn fn, void *ctx, tx_prog *prog, ts_hub_result *res)
{
    int tries = o->tries > 0 ? o->tries : 5;
    int max_attempts = tries * 20 < 100 ? 100 : tries * 20;
    double base = o->backoff_s > 0 ? o->backoff_s : 0.5;
    double cap = o->max_backoff_s > 0 ? o->max_backoff_s : 30;
    uint64_t rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)ctx ^ 0x9e3779b97f4a7c15ULL;
    int fails = 0;
    double t0 = tx_now();
    for (int attempt = 1;; attempt++) {
        tx_outcome oc;
        memset(&oc, 0, sizeof oc);
        oc.retry_after = -1;
        fn(ctx, &oc);
        res->attempts = attempt;
        res->seconds = tx_now() - t0;
        if (oc.code == TS_OK) {
            res->reason[0] = '\0';
            return TS_OK;
        }
        snprintf(res->reason, sizeof res->reason, "%s", oc.reason);
        if (!oc.retry) return ts_fail(oc.code, "%s", oc.msg);
        fails = oc.progressed ? 0 : fails + 1;
        if (fails >= tries || attempt >= max_attempts)
            return ts_fail(oc.code, "%s (gave up after %d attempt%s)", oc.msg, attempt, attempt == 1 ? "" : "s");
        double wait = 0;
        if (!oc.no_wait) {
            int k = fails > 0 ? fails : 1;
            wait = base * (double)(1u << (k - 1 < 16 ? k - 1 : 16));
            if (wait > cap) wait = cap;
            wait *= 0.5 + 0.5 * jitter01(&rng);
            if (oc.retry_after >= 0) wait = oc.retry_after < cap ? oc.retry_after : cap;
        }
        if (!wait_s(wait, prog, oc.done, oc.total)) {
            snprintf(res->reason, sizeof res->reason, "cancelled");
            return ts_fail(TS_ERR_IO, "%s (cancelled while waiting to retry)", oc.msg);
        }
    }
}
