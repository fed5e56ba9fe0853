/* download.c — ts_hub_download: a GET that streams into "<dest>.incomplete"
 * while hashing, resumes with Range + If-Range from any process, restarts
 * cleanly when the server's version changed or it ignores ranges, retries
 * through transfer.c's loop, verifies size and SHA-256, then fsyncs and
 * renames to the final name.
 *
 * Speed: libcurl's thread only copies each chunk into a ring of 1 MiB
 * slots; a hasher thread (SHA-NI where the CPU has it) and a writer thread
 * (pwrite, write-back started early so the final fsync is short) consume
 * the slots in order, so receiving, hashing and writing overlap and the
 * data is never read back from the file. */
#include "transfer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the ring and its two consumers ------------------------------------------------ */

/* libcurl's thread copies each chunk into a ring of slots; a writer thread
 * pwrites the slots in order (starting write-back every WRITEBACK_BYTES), a
 * hasher thread feeds them to SHA-256 in order. A slot is reused once both
 * are done with it, so the bytes are read from memory once by each. */
enum { SLOT_BYTES = 1 << 20, NSLOTS = 32 };  /* 32 MiB in flight: rides out a descheduled consumer */
enum { WRITER, HASHER, NCONSUMERS };
#define WRITEBACK_BYTES ((int64_t)32 << 20)

typedef struct sink sink;
typedef struct consumer { sink *s; int who; pthread_t th; bool started; } consumer;

struct sink {
    int fd;
    ts_sha256 *sha;             /* the hasher's state, owned by the download */
    uint8_t *buf[NSLOTS];
    size_t len[NSLOTS];
    int64_t off[NSLOTS];
    uint64_t submitted;         /* slots handed over so far */
    uint64_t done[NCONSUMERS];  /* slots each consumer has finished */
    size_t fill;                /* bytes in the slot being filled */
    int64_t pos;                /* file offset of the next byte put */
    int64_t synced;             /* write-back started up to here (writer's) */
    int err;                    /* errno of a failed write */
    bool stop, started;
    consumer c[NCONSUMERS];
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static uint64_t slowest(const sink *s) { return s->done[WRITER] < s->done[HASHER] ? s->done[WRITER] : s->done[HASHER]; }

/* Writes slot i; returns 0 or an errno. */
static int write_slot(sink *s, int i)
{
    const uint8_t *p = s->buf[i];
    size_t left = s->len[i];
    int64_t off = s->off[i];
    while (left) {
        ssize_t w = pwrite(s->fd, p, left, off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? errno : EIO;
        p += w; left -= (size_t)w; off += w;
    }
    if (off - s->synced >= WRITEBACK_BYTES) {
        sync_file_range(s->fd, s->synced, off - s->synced, SYNC_FILE_RANGE_WRITE);
        s->synced = off;
    }
    return 0;
}

static void *consumer_main(void *arg)
{
    consumer *c = arg;
    sink *s = c->s;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->done[c->who] == s->submitted && !s->stop) pthread_cond_wait(&s->cv, &s->mu);
        if (s->done[c->who] == s->submitted) break;           /* stopping, nothing left */
        int i = (int)(s->done[c->who] % NSLOTS);
        int failed = s->err;
        pthread_mutex_unlock(&s->mu);
        int err = 0;
        if (c->who == HASHER) ts_sha256_update(s->sha, s->buf[i], s->len[i]);
        else if (!failed) err = write_slot(s, i);
        pthread_mutex_lock(&s->mu);
        if (err && !s->err) s->err = err;
        s->done[c->who]++;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void sink_close(sink *s);

static ts_status sink_open(sink *s, int fd, ts_sha256 *sha)
{
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->sha = sha;
    for (int i = 0; i < NSLOTS; i++) {
        s->buf[i] = malloc(SLOT_BYTES);
        if (!s->buf[i]) {
            for (int j = 0; j < i; j++) free(s->buf[j]);
            return ts_fail(TS_ERR_MEMORY, "download: out of memory for buffers");
        }
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->started = true;
    for (int k = 0; k < NCONSUMERS; k++) {
        s->c[k] = (consumer){ s, k, 0, false };
        if (pthread_create(&s->c[k].th, NULL, consumer_main, &s->c[k]) != 0) {
            sink_close(s);
            return ts_fail(TS_ERR_INTERNAL, "download: cannot start the writer threads");
        }
        s->c[k].started = true;
    }
    return TS_OK;
}

static void sink_submit(sink *s)
{
    pthread_mutex_lock(&s->mu);
    int i = (int)(s->submitted % NSLOTS);
    s->len[i] = s->fill;
    s->off[i] = s->pos - (int64_t)s->fill;
    s->submitted++;
    s->fill = 0;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Copies n bytes into the ring; 0 or the errno of an earlier failed write. */
static int sink_put(sink *s, const uint8_t *p, size_t n)
{
    while (n) {
        if (s->fill == 0) {            /* the next slot must be free: both consumers past it */
            pthread_mutex_lock(&s->mu);
            while (s->submitted - slowest(s) == NSLOTS) pthread_cond_wait(&s->cv, &s->mu);
            int err = s->err;
            pthread_mutex_unlock(&s->mu);
            if (err) return err;
        }
        uint8_t *slot = s->buf[s->submitted % NSLOTS];
        size_t take = SLOT_BYTES - s->fill < n ? SLOT_BYTES - s->fill : n;
        memcpy(slot + s->fill, p, take);
        s->fill += take; s->pos += (int64_t)take; p += take; n -= take;
        if (s->fill == SLOT_BYTES) sink_submit(s);
    }
    return 0;
}

/* Waits until everything put so far is written and hashed; 0 or an errno. */
static int sink_flush(sink *s)
{
    if (!s->started) return 0;
    if (s->fill) sink_submit(s);
    pthread_mutex_lock(&s->mu);
    while (slowest(s) < s->submitted) pthread_cond_wait(&s->cv, &s->mu);
    int err = s->err;
    pthread_mutex_unlock(&s->mu);
    return err;
}

/* After a flush: the next byte goes to offset pos. */
static void sink_seek(sink *s, int64_t pos) { s->pos = pos; s->synced = pos; }

static void sink_close(sink *s)
{
    if (!s->started) return;
    sink_flush(s);
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int k = 0; k < NCONSUMERS; k++)
        if (s->c[k].started) pthread_join(s->c[k].th, NULL);
    for (int i = 0; i < NSLOTS; i++) free(s->buf[i]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    s->started = false;
}

/* ---- the sidecar: where the partial data came from ----------------------------- */

typedef struct sidecar {
    char url_sha[65];          /* digest of the full URL (it may carry secrets) */
    char url[1024];            /* redacted, for people */
    char etag[256];
    char last_modified[128];
    int64_t total;             /* -1 unknown */
    char sha256[65];           /* expected digest, "" none */
} sidecar;

static void sidecar_read(const char *path, sidecar *sc)
{
    memset(sc, 0, sizeof *sc);
    sc->total = -1;
    FILE *f = fopen(path, "re");
    if (!f) return;
    char line[1400];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *sp = strchr(line, ' ');
        if (!sp) continue;
        *sp = '\0';
        const char *k = line, *v = sp + 1;
        if (!strcmp(k, "url_sha256")) snprintf(sc->url_sha, sizeof sc->url_sha, "%s", v);
        else if (!strcmp(k, "url")) snprintf(sc->url, sizeof sc->url, "%s", v);
        else if (!strcmp(k, "etag")) snprintf(sc->etag, sizeof sc->etag, "%s", v);
        else if (!strcmp(k, "last_modified")) snprintf(sc->last_modified, sizeof sc->last_modified, "%s", v);
        else if (!strcmp(k, "size")) sc->total = strtoll(v, NULL, 10);
        else if (!strcmp(k, "sha256")) snprintf(sc->sha256, sizeof sc->sha256, "%s", strcmp(v, "-") ? v : "");
    }
    fclose(f);
}

static ts_status sidecar_write(const char *path, const sidecar *sc)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "we");
    if (!f) return ts_fail(TS_ERR_IO, "download: cannot write '%s': %s", tmp, strerror(errno));
    fprintf(f, "torsh-partial 1\nurl_sha256 %s\nurl %s\netag %s\nlast_modified %s\nsize %lld\nsha256 %s\n",
            sc->url_sha, sc->url, sc->etag, sc->last_modified, (long long)sc->total, sc->sha256[0] ? sc->sha256 : "-");
    bool ok = fflush(f) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return ts_fail(TS_ERR_IO, "download: cannot write '%s'", path);
    }
    return TS_OK;
}

/* ---- one download ----------------------------------------------------------------- */

typedef struct dl {
    const ts_hub_request *rq;
    ts_hub_result *res;
    char partial[PATH_MAX], meta[PATH_MAX + 8];
    char shown[1024];           /* redacted URL for messages */
    char url_sha[65];
    bool file_url;
    int fd;
    sink sk;
    ts_sha256 sha;
    int64_t have;               /* bytes in the partial file, all hashed */
    bool mixed;                 /* the data did not come from one fresh response */
    bool fresh_retry_done;      /* one clean retry after a digest mismatch of mixed data */
    sidecar side;               /* origin of the partial data */
    bool validator;             /* this attempt sent If-Range */
    /* per attempt */
    tx_conn conn;
    tx_resp r;
    bool begun;                 /* first body byte of the final response seen */
    int64_t total;              /* whole-file size, -1 unknown */
    int64_t got;                /* bytes received in this attempt */
    tx_outcome *oc;             /* set by callbacks that abort */
    tx_prog prog;
} dl;

static int64_t dl_total(const dl *d)
{
    if (d->total >= 0) return d->total;
    return d->rq->size > 0 ? d->rq->size : -1;
}

/* Empties the partial file: a clean restart. */
static int dl_truncate(dl *d)
{
    int err = sink_flush(&d->sk);
    if (!err && ftruncate(d->fd, 0) != 0) err = errno;
    sink_seek(&d->sk, 0);
    ts_sha256_init(&d->sha);
    if (d->have > 0) d->res->restarted = true;
    d->have = 0;
    d->mixed = false;
    return err;
}

static bool strong_etag(const char *e) { return e[0] && strncmp(e, "W/", 2) != 0; }

/* Called at the first body byte of the final response: decides whether the
 * bytes continue the partial data or replace it, records their origin. */
static bool dl_begin_body(dl *d)
{
    d->begun = true;
    int err = 0;
    long status = d->r.status;
    if (d->file_url) status = 200;
    if (status == 206) {
        if (d->r.range_start != d->have) {
            if ((err = dl_truncate(d)) != 0) goto io_error;
            tx_fail(d->oc, TS_ERR_IO, "network", true, "download: %s: server sent a range from %lld, asked from %lld",
                    d->shown, (long long)d->r.range_start, (long long)d->have);
            d->oc->no_wait = true;
            return false;
        }
        d->total = d->r.range_total;
        d->mixed = true;
    } else if (status == 200 || status == 203) {
        if (d->have > 0 && (err = dl_truncate(d)) != 0) goto io_error;   /* range ignored or version changed: start over */
        curl_off_t cl = -1;
        curl_easy_getinfo(d->conn.curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        d->total = d->r.content_length >= 0 ? d->r.content_length : cl;
    } else {
        tx_fail(d->oc, TS_ERR_IO, "http", false, "download: %s: unexpected HTTP %ld", d->shown, status);
        return false;
    }
    if (d->rq->size > 0 && d->total >= 0 && d->total != d->rq->size) {
        tx_fail(d->oc, TS_ERR_FORMAT, "size", false, "download: %s: the server has %lld bytes, expected %lld",
                d->shown, (long long)d->total, (long long)d->rq->size);
        return false;
    }
    sidecar sc;
    memset(&sc, 0, sizeof sc);
    snprintf(sc.url_sha, sizeof sc.url_sha, "%s", d->url_sha);
    snprintf(sc.url, sizeof sc.url, "%s", d->shown);
    snprintf(sc.etag, sizeof sc.etag, "%s", d->r.etag);
    snprintf(sc.last_modified, sizeof sc.last_modified, "%s", d->r.last_modified);
    sc.total = d->total;
    snprintf(sc.sha256, sizeof sc.sha256, "%s", d->rq->sha256 ? d->rq->sha256 : "");
    d->side = sc;
    if (sidecar_write(d->meta, &sc) != TS_OK) {
        tx_fail(d->oc, TS_ERR_IO, "io", false, "%s", ts_last_error());
        return false;
    }
    snprintf(d->res->etag, sizeof d->res->etag, "%s", d->r.etag);
    return true;
io_error:
    tx_fail(d->oc, TS_ERR_IO, "io", false, "download: cannot write '%s': %s", d->partial, strerror(err));
    return false;
}

static size_t dl_on_body(char *p, size_t size, size_t nitems, void *ud)
{
    dl *d = ud;
    size_t n = size * nitems;
    if (!d->begun && !dl_begin_body(d)) return CURL_WRITEFUNC_ERROR;
    if (d->total >= 0 && d->have + (int64_t)n > d->total) {
        tx_fail(d->oc, TS_ERR_FORMAT, "size", true, "download: %s: the server sent more than the %lld bytes it announced",
                d->shown, (long long)d->total);
        return CURL_WRITEFUNC_ERROR;
    }
    int err = sink_put(&d->sk, (const uint8_t *)p, n);     /* hashed and written by the consumers */
    if (err) {
        tx_fail(d->oc, TS_ERR_IO, "io", false, "download: cannot write '%s': %s", d->partial, strerror(err));
        return CURL_WRITEFUNC_ERROR;
    }
    d->have += (int64_t)n;
    d->got += (int64_t)n;
    d->res->received += (int64_t)n;
    return n;
}

static int dl_on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt; (void)dn; (void)ut; (void)un;
    dl *d = ud;
    if (tx_progress(&d->prog, d->have, dl_total(d), false)) return 0;
    tx_fail(d->oc, TS_ERR_IO, "cancelled", false, "download: %s: cancelled", d->shown);
    return 1;
}

/* Moves the verified partial file to its final name. */
static void dl_finalize(dl *d, const char *hex, tx_outcome *oc)
{
    const ts_hub_request *rq = d->rq;
    char final[PATH_MAX];
    if (rq->dest) snprintf(final, sizeof final, "%s", rq->dest);
    else snprintf(final, sizeof final, "%s/%s", rq->dest_dir, hex);
    if (fdatasync(d->fd) != 0) {           /* data and size on disk before the name points at them */
        tx_fail(oc, TS_ERR_IO, "io", false, "download: fsync '%s': %s", d->partial, strerror(errno));
        return;
    }
    if (rename(d->partial, final) != 0) {
        tx_fail(oc, TS_ERR_IO, "io", false, "download: cannot rename to '%s': %s", final, strerror(errno));
        return;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", final);
    char *slash = strrchr(dir, '/');
    if (slash) { *slash = '\0'; ts_hub_fsync_dir(slash == dir ? "/" : dir); }
    unlink(d->meta);
    snprintf(d->res->path, sizeof d->res->path, "%s", final);
    snprintf(d->res->sha256, sizeof d->res->sha256, "%s", hex);
    d->res->size = d->have;
    oc->code = TS_OK;
}

/* All bytes are in: check size and digest, then finalize. */
static void dl_complete(dl *d, tx_outcome *oc)
{
    int err = sink_flush(&d->sk);
    if (err) {
        tx_fail(oc, TS_ERR_IO, "io", false, "download: cannot write '%s': %s", d->partial, strerror(err));
        return;
    }
    if (d->rq->size > 0 && d->have != d->rq->size) {
        dl_truncate(d);
        unlink(d->meta);
        tx_fail(oc, TS_ERR_FORMAT, "size", false, "download: %s: got %lld bytes, expected %lld (the data was deleted)",
                d->shown, (long long)d->have, (long long)d->rq->size);
        return;
    }
    ts_sha256 s = d->sha;
    uint8_t dg[32];
    char hex[65];
    ts_sha256_final(&s, dg);
    ts_sha256_hex(dg, hex);
    if (d->rq->sha256 && strcasecmp(hex, d->rq->sha256) != 0) {
        bool mixed = d->mixed;
        dl_truncate(d);
        unlink(d->meta);
        if (mixed && !d->fresh_retry_done) {     /* resumed data may be the culprit: one clean try */
            d->fresh_retry_done = true;
            tx_fail(oc, TS_ERR_FORMAT, "checksum", true, "download: %s: sha256 mismatch after a resume, starting over", d->shown);
            oc->no_wait = true;
            return;
        }
        tx_fail(oc, TS_ERR_FORMAT, "checksum", false,
                "download: %s: sha256 mismatch: expected %s, got %s (the data was deleted)", d->shown, d->rq->sha256, hex);
        return;
    }
    dl_finalize(d, hex, oc);
}

/* Range + validator headers for continuing `have` bytes; false: start over. */
static bool dl_plan_resume(dl *d, char *range, size_t rn, char *ifrange, size_t in)
{
    d->validator = false;
    ifrange[0] = '\0';
    if (d->have == 0 || d->file_url || d->rq->no_resume) return false;
    bool same_url = !strcmp(d->side.url_sha, d->url_sha);
    if (same_url && strong_etag(d->side.etag)) {
        snprintf(ifrange, in, "If-Range: %s", d->side.etag);
        d->validator = true;
    } else if (same_url && d->side.last_modified[0]) {
        snprintf(ifrange, in, "If-Range: %s", d->side.last_modified);
        d->validator = true;
    } else if (!(d->rq->sha256 && !strcasecmp(d->side.sha256, d->rq->sha256))) {
        return false;           /* no way to know the bytes belong together */
    }
    snprintf(range, rn, "%lld-", (long long)d->have);
    return true;
}

static void dl_attempt(void *ctx, tx_outcome *oc)
{
    dl *d = ctx;
    d->oc = oc;
    d->begun = false;
    d->got = 0;
    d->total = -1;
    if (d->rq->size > 0 && d->have == d->rq->size && d->rq->sha256) {  /* all there already (killed before the rename) */
        dl_complete(d, oc);
        if (oc->code == TS_OK || !oc->retry) return;
        memset(oc, 0, sizeof *oc);
        oc->retry_after = -1;
    }
    char range[32], ifrange[400];
    int terr = 0;
    if (!dl_plan_resume(d, range, sizeof range, ifrange, sizeof ifrange) && d->have > 0 && (terr = dl_truncate(d)) != 0) {
        tx_fail(oc, TS_ERR_IO, "io", false, "download: cannot truncate '%s': %s", d->partial, strerror(terr));
        return;
    }
    if (d->have > 0 && !d->res->resumed_from) d->res->resumed_from = d->have;
    curl_easy_setopt(d->conn.curl, CURLOPT_RANGE, d->have > 0 ? range : NULL);
    tx_easy_headers(&d->conn, d->validator ? ifrange : NULL, NULL);
    d->conn.errbuf[0] = '\0';
    memset(&d->r, 0, sizeof d->r);
    CURLcode rc = curl_easy_perform(d->conn.curl);
    int err = sink_flush(&d->sk);
    oc->progressed = d->got > 0;
    oc->done = d->have;
    oc->total = dl_total(d);
    long status = 0;
    curl_easy_getinfo(d->conn.curl, CURLINFO_RESPONSE_CODE, &status);
    d->res->http_status = status;
    if (oc->msg[0]) return;                 /* a callback already said why it stopped */
    if (err) {
        tx_fail(oc, TS_ERR_IO, "io", false, "download: cannot write '%s': %s", d->partial, strerror(err));
        return;
    }
    if (rc == CURLE_OK) {
        if (!d->begun && !dl_begin_body(d)) return;    /* an empty body */
        if (d->total >= 0 && d->have != d->total) {
            tx_fail(oc, TS_ERR_IO, "network", true, "download: %s: connection ended after %lld of %lld bytes",
                    d->shown, (long long)d->have, (long long)d->total);
            return;
        }
        dl_complete(d, oc);
        return;
    }
    if (rc == CURLE_HTTP_RETURNED_ERROR && d->r.status == 416 && d->have > 0) {
        if (d->validator && d->r.range_total == d->have) { dl_complete(d, oc); return; }  /* nothing was missing */
        if ((terr = dl_truncate(d)) != 0) {
            tx_fail(oc, TS_ERR_IO, "io", false, "download: cannot truncate '%s': %s", d->partial, strerror(terr));
            return;
        }
        tx_fail(oc, TS_ERR_IO, "http", true, "download: %s: HTTP 416 for a resume, starting over", d->shown);
        oc->no_wait = true;
        return;
    }
    tx_classify(rc, &d->conn, &d->r, "download", d->shown, oc);
}

/* Opens the partial file and decides what of it can be kept. */
static ts_status dl_open(dl *d)
{
    const ts_hub_request *rq = d->rq;
    d->fd = open(d->partial, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (d->fd < 0) return ts_fail(TS_ERR_IO, "download: cannot open '%s': %s", d->partial, strerror(errno));
    sidecar_read(d->meta, &d->side);
    struct stat sb;
    if (fstat(d->fd, &sb) != 0) return ts_fail(TS_ERR_IO, "download: stat '%s': %s", d->partial, strerror(errno));
    int64_t size = (int64_t)sb.st_size;
    bool same_url = !strcmp(d->side.url_sha, d->url_sha);
    bool same_sha = rq->sha256 && !strcasecmp(d->side.sha256, rq->sha256);
    bool keep = size > 0 && !rq->no_resume && !d->file_url && (same_url || same_sha)
                && !(rq->size > 0 && size > rq->size) && !(d->side.total >= 0 && size > d->side.total)
                && !(rq->sha256 && d->side.sha256[0] && !same_sha);
    ts_sha256_init(&d->sha);
    d->have = 0;
    if (!keep) {
        if (size > 0) d->res->restarted = true;
        if (ftruncate(d->fd, 0) != 0) return ts_fail(TS_ERR_IO, "download: truncate '%s': %s", d->partial, strerror(errno));
        return TS_OK;
    }
    /* re-hash what is there (the part only, once) */
    enum { CHUNK = 4 << 20 };
    uint8_t *buf = malloc(CHUNK);
    if (!buf) return ts_fail(TS_ERR_MEMORY, "download: out of memory");
    while (d->have < size) {
        ssize_t got = pread(d->fd, buf, CHUNK, d->have);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        ts_sha256_update(&d->sha, buf, (size_t)got);
        d->have += got;
    }
    free(buf);
    if (d->have != size) return ts_fail(TS_ERR_IO, "download: cannot read '%s'", d->partial);
    d->mixed = true;
    return TS_OK;
}

ts_status ts_hub_download(const ts_hub_request *rq, ts_hub_result *res)
{
    memset(res, 0, sizeof *res);
    res->size = -1;
    double t0 = tx_now();
    if (!rq || !rq->url || (!rq->dest && !rq->dest_dir) || (!rq->dest && !rq->partial)) {
        snprintf(res->reason, sizeof res->reason, "arg");
        return ts_fail(TS_ERR_ARG, "download: need url and dest (or dest_dir and partial)");
    }
    if (rq->sha256 && strlen(rq->sha256) != 64) {
        snprintf(res->reason, sizeof res->reason, "arg");
        return ts_fail(TS_ERR_ARG, "download: sha256 must be 64 hex digits, got '%s'", rq->sha256);
    }
    dl *d = calloc(1, sizeof *d);
    if (!d) return ts_fail(TS_ERR_MEMORY, "download: out of memory");
    d->rq = rq;
    d->res = res;
    d->fd = -1;
    ts_hub_redact_url(rq->url, d->shown, sizeof d->shown);
    ts_sha256_hex_of(rq->url, strlen(rq->url), d->url_sha);
    d->file_url = tx_is_file_url(rq->url);
    if (rq->partial) snprintf(d->partial, sizeof d->partial, "%s", rq->partial);
    else snprintf(d->partial, sizeof d->partial, "%s.incomplete", rq->dest);
    snprintf(d->meta, sizeof d->meta, "%s.meta", d->partial);
    d->prog = (tx_prog){ rq->opt.progress, rq->opt.progress_user, 0, false };

    ts_status st;
    if (ts_hub_offline() && !d->file_url) {
        snprintf(res->reason, sizeof res->reason, "offline");
        st = ts_fail(TS_ERR_IO, "download: %s: offline mode (TORSH_OFFLINE is set), no network access", d->shown);
    } else if ((st = tx_init()) != TS_OK || (st = dl_open(d)) != TS_OK || (st = sink_open(&d->sk, d->fd, &d->sha)) != TS_OK) {
        snprintf(res->reason, sizeof res->reason, "io");
    } else if (!tx_easy(rq->url, &rq->opt, &d->conn)) {
        st = ts_last_status();
        snprintf(res->reason, sizeof res->reason, "io");
    } else {
        sink_seek(&d->sk, d->have);
        CURL *c = d->conn.curl;
        curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, tx_on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &d->r);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, dl_on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, d);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, dl_on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, d);
        tx_progress(&d->prog, d->have, rq->size > 0 ? rq->size : -1, true);
        st = tx_run(&rq->opt, dl_attempt, d, &d->prog, res);
        if (st == TS_OK) tx_progress(&d->prog, d->have, d->have, true);
    }
    tx_easy_close(&d->conn);
    sink_close(&d->sk);
    if (d->fd >= 0) {
        close(d->fd);
        if (st != TS_OK && d->have == 0) {     /* never leave an empty partial behind */
            unlink(d->partial);
            unlink(d->meta);
        }
    }
    res->seconds = tx_now() - t0;
    free(d);
    return st;
}
