/* requests.c — the hub's small transfers: ts_hub_fetch (GET into memory,
 * for registry indexes), ts_hub_head (one HEAD, for mirror probes) and
 * ts_hub_upload (PUT of a file with its SHA-256 in the headers). They share
 * transfer.c's handle setup, header parsing and retry loop. */
#include "transfer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static ts_status refuse_offline(const char *what, const char *url, ts_hub_result *res)
{
    char shown[1024];
    snprintf(res->reason, sizeof res->reason, "offline");
    return ts_fail(TS_ERR_IO, "%s: %s: offline mode (TORSH_OFFLINE is set), no network access", what,
                   ts_hub_redact_url(url, shown, sizeof shown));
}

/* ---- fetch into memory --------------------------------------------------------- */

typedef struct fetch {
    tx_conn conn;
    tx_resp r;
    char shown[1024];
    char *buf;
    size_t len, cap;
    int64_t max;
    tx_outcome *oc;
    tx_prog prog;
} fetch;

static size_t fetch_on_body(char *p, size_t size, size_t nitems, void *ud)
{
    fetch *f = ud;
    size_t n = size * nitems;
    if ((int64_t)(f->len + n) > f->max) {
        tx_fail(f->oc, TS_ERR_FORMAT, "size", false, "fetch: %s: larger than %lld bytes", f->shown, (long long)f->max);
        return CURL_WRITEFUNC_ERROR;
    }
    if (f->len + n + 1 > f->cap) {
        size_t cap = f->cap ? f->cap : 65536;
        while (cap < f->len + n + 1) cap *= 2;
        char *more = realloc(f->buf, cap);
        if (!more) {
            tx_fail(f->oc, TS_ERR_MEMORY, "io", false, "fetch: out of memory");
            return CURL_WRITEFUNC_ERROR;
        }
        f->buf = more;
        f->cap = cap;
    }
    memcpy(f->buf + f->len, p, n);
    f->len += n;
    f->buf[f->len] = '\0';
    return n;
}

static int fetch_on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)ut; (void)un;
    fetch *f = ud;
    if (tx_progress(&f->prog, (int64_t)dn, dt > 0 ? (int64_t)dt : -1, false)) return 0;
    tx_fail(f->oc, TS_ERR_IO, "cancelled", false, "fetch: %s: cancelled", f->shown);
    return 1;
}

static void fetch_attempt(void *ctx, tx_outcome *oc)
{
    fetch *f = ctx;
    f->oc = oc;
    f->len = 0;
    f->conn.errbuf[0] = '\0';
    CURLcode rc = curl_easy_perform(f->conn.curl);
    if (oc->msg[0]) return;
    if (rc == CURLE_OK) { oc->code = TS_OK; return; }
    tx_classify(rc, &f->conn, &f->r, "fetch", f->shown, oc);
}

ts_status ts_hub_fetch(const char *url, const ts_hub_options *opt, int64_t max_bytes, char **body, size_t *len,
                       ts_hub_result *res)
{
    memset(res, 0, sizeof *res);
    res->size = -1;
    *body = NULL;
    *len = 0;
    if (ts_hub_offline() && !tx_is_file_url(url)) return refuse_offline("fetch", url, res);
    ts_status st = tx_init();
    if (st != TS_OK) return st;
    fetch f;
    memset(&f, 0, sizeof f);
    f.max = max_bytes > 0 ? max_bytes : (int64_t)64 << 20;
    ts_hub_redact_url(url, f.shown, sizeof f.shown);
    f.prog = (tx_prog){ opt->progress, opt->progress_user, 0, false };
    CURL *c = tx_easy(url, opt, &f.conn);
    if (!c) return ts_last_status();
    tx_easy_headers(&f.conn, NULL, NULL);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, tx_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &f.r);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fetch_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, fetch_on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &f);
    st = tx_run(opt, fetch_attempt, &f, &f.prog, res);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    res->http_status = status;
    snprintf(res->etag, sizeof res->etag, "%s", f.r.etag);
    tx_easy_close(&f.conn);
    if (st != TS_OK) {
        free(f.buf);
        return st;
    }
    if (!f.buf) {
        f.buf = malloc(1);
        if (!f.buf) return ts_fail(TS_ERR_MEMORY, "fetch: out of memory");
        f.buf[0] = '\0';
    }
    ts_sha256_hex_of(f.buf, f.len, res->sha256);
    res->size = (int64_t)f.len;
    res->received = (int64_t)f.len;
    *body = f.buf;
    *len = f.len;
    return TS_OK;
}

/* ---- HEAD ------------------------------------------------------------------------ */

ts_status ts_hub_head(const char *url, const ts_hub_options *opt, ts_hub_result *res)
{
    memset(res, 0, sizeof *res);
    res->size = -1;
    if (ts_hub_offline() && !tx_is_file_url(url)) return refuse_offline("probe", url, res);
    ts_status st = tx_init();
    if (st != TS_OK) return st;
    tx_conn conn;
    tx_resp r;
    memset(&r, 0, sizeof r);
    char shown[1024];
    ts_hub_redact_url(url, shown, sizeof shown);
    CURL *c = tx_easy(url, opt, &conn);
    if (!c) return ts_last_status();
    tx_easy_headers(&conn, NULL, NULL);
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, tx_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    CURLcode rc = curl_easy_perform(c);
    double secs = 0;
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &secs);
    curl_off_t cl = -1;
    curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    res->attempts = 1;
    res->seconds = secs;
    res->http_status = status;
    res->size = cl >= 0 ? (int64_t)cl : -1;
    snprintf(res->etag, sizeof res->etag, "%s", r.etag);
    if (rc != CURLE_OK) {
        tx_outcome oc;
        memset(&oc, 0, sizeof oc);
        tx_classify(rc, &conn, &r, "probe", shown, &oc);
        snprintf(res->reason, sizeof res->reason, "%s", oc.reason);
        st = ts_fail(oc.code, "%s", oc.msg);
    }
    tx_easy_close(&conn);
    return st;
}

/* ---- PUT ------------------------------------------------------------------------- */

typedef struct upload {
    tx_conn conn;
    tx_resp r;
    char shown[1024];
    FILE *file;
    int64_t size;
    tx_outcome *oc;
    tx_prog prog;
} upload;

static size_t upload_read(char *p, size_t size, size_t nitems, void *ud)
{
    upload *u = ud;
    size_t n = fread(p, 1, size * nitems, u->file);
    if (n == 0 && ferror(u->file)) return CURL_READFUNC_ABORT;
    return n;
}

static int upload_on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt; (void)dn; (void)ut;
    upload *u = ud;
    if (tx_progress(&u->prog, (int64_t)un, u->size, false)) return 0;
    tx_fail(u->oc, TS_ERR_IO, "cancelled", false, "upload: %s: cancelled", u->shown);
    return 1;
}

static void upload_attempt(void *ctx, tx_outcome *oc)
{
    upload *u = ctx;
    u->oc = oc;
    u->conn.errbuf[0] = '\0';
    rewind(u->file);
    CURLcode rc = curl_easy_perform(u->conn.curl);
    if (oc->msg[0]) return;
    if (rc == CURLE_OK) { oc->code = TS_OK; return; }
    tx_classify(rc, &u->conn, &u->r, "upload", u->shown, oc);
}

static void base64(const uint8_t *in, size_t n, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
}

ts_status ts_hub_upload(const char *path, const char *url, const ts_hub_options *opt, ts_hub_result *res)
{
    memset(res, 0, sizeof *res);
    res->size = -1;
    if (ts_hub_offline() && !tx_is_file_url(url)) return refuse_offline("upload", url, res);
    ts_status st = tx_init();
    if (st != TS_OK) return st;
    char hex[65];
    int64_t size = 0;
    if ((st = ts_sha256_file(path, hex, &size)) != TS_OK) {
        snprintf(res->reason, sizeof res->reason, "io");
        return st;
    }
    uint8_t dg[32];
    for (int i = 0; i < 32; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        dg[i] = (uint8_t)v;
    }
    char b64[48], h1[96], h2[96];
    base64(dg, 32, b64);
    snprintf(h1, sizeof h1, "X-Checksum-Sha256: %s", hex);
    snprintf(h2, sizeof h2, "Digest: sha-256=%s", b64);

    upload u;
    memset(&u, 0, sizeof u);
    ts_hub_redact_url(url, u.shown, sizeof u.shown);
    u.size = size;
    u.prog = (tx_prog){ opt->progress, opt->progress_user, 0, false };
    u.file = fopen(path, "rbe");
    if (!u.file) {
        snprintf(res->reason, sizeof res->reason, "io");
        return ts_fail(TS_ERR_IO, "upload: cannot open '%s': %s", path, strerror(errno));
    }
    CURL *c = tx_easy(url, opt, &u.conn);
    if (!c) { fclose(u.file); return ts_last_status(); }
    tx_easy_headers(&u.conn, h1, h2);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, upload_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &u);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, tx_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &u.r);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, upload_on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &u);
    st = tx_run(opt, upload_attempt, &u, &u.prog, res);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    res->http_status = status;
    snprintf(res->sha256, sizeof res->sha256, "%s", hex);
    res->size = size;
    tx_easy_close(&u.conn);
    fclose(u.file);
    return st;
}
