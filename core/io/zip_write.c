/* zip_write.c — the ZIP writer of torsh/zip.h: stored entries laid out the
 * way PyTorch's PyTorchStreamWriter does (aligned data behind an "FB"
 * padding field, data descriptors, ZIP64 fields when sizes or offsets need
 * them, ZIP64 end records), written to a temp file that is synced and
 * renamed over the target. Uses POSIX I/O and zlib (CRC-32). */
#include "torsh/zip.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "zip_internal.h"

#define BUF_CAP ((size_t)1 << 16)
#define WRITE_MAX ((size_t)1 << 30)

typedef struct wentry {
    char *name;
    uint64_t offset, size;
    uint32_t crc;
    bool big;
} wentry;

struct ts_zip_writer {
    int fd;
    char *tmp, *target;
    ts_zip_write_opts opts;
    uint64_t pos;               /* bytes written so far (including the buffer) */
    unsigned char *buf;
    size_t buffered;
    wentry *entries;
    size_t n, cap;
    bool open_entry;            /* between begin and end */
    uint64_t want, got;         /* size of the open entry; bytes written to it */
    uLong crc;
    bool failed;
};

/* ---- low-level output ----------------------------------------------------------------- */

static ts_status raw_write(ts_zip_writer *w, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t k = write(w->fd, p, n < WRITE_MAX ? n : WRITE_MAX);
        if (k < 0) {
            if (errno == EINTR) continue;
            return ts_fail(TS_ERR_IO, "zip: cannot write '%s': %s", w->tmp, strerror(errno));
        }
        p += k;
        n -= (size_t)k;
    }
    return TS_OK;
}

static ts_status flush_buf(ts_zip_writer *w)
{
    ts_status st = raw_write(w, w->buf, w->buffered);
    w->buffered = 0;
    return st;
}

static ts_status out(ts_zip_writer *w, const void *data, size_t n)
{
    if (n == 0) return TS_OK;
    w->pos += n;
    if (w->buffered + n <= BUF_CAP) {
        memcpy(w->buf + w->buffered, data, n);
        w->buffered += n;
        return TS_OK;
    }
    if (flush_buf(w)) return ts_last_status();
    if (n < BUF_CAP) {
        memcpy(w->buf, data, n);
        w->buffered = n;
        return TS_OK;
    }
    return raw_write(w, data, n);
}

/* Marks the writer failed and passes the status on. */
static ts_status failed(ts_zip_writer *w, ts_status st)
{
    if (st != TS_OK) w->failed = true;
    return st;
}

/* ---- the temp file ---------------------------------------------------------------------- */

/* "<path>.tmp.<pid>.<16 hex digits>", created with O_EXCL. */
static int create_temp(const char *path, char **tmp_out)
{
    size_t cap = strlen(path) + 48;
    char *tmp = malloc(cap);
    if (!tmp) { ts_fail(TS_ERR_MEMORY, "zip: out of memory (temp name)"); return -1; }
    for (int attempt = 0; attempt < 16; attempt++) {
        uint64_t r = 0;
        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            r = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec ^ ((uint64_t)attempt << 56);
        }
        snprintf(tmp, cap, "%s.tmp.%ld.%016llx", path, (long)getpid(), (unsigned long long)r);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) { *tmp_out = tmp; return fd; }
        if (errno != EEXIST) {
            ts_fail(TS_ERR_IO, "zip: '%s': cannot create the temporary file '%s': %s", path, tmp, strerror(errno));
            free(tmp);
            return -1;
        }
    }
    ts_fail(TS_ERR_IO, "zip: '%s': cannot find a free temporary file name", path);
    free(tmp);
    return -1;
}

static ts_status sync_folder(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return ts_fail(TS_ERR_MEMORY, "zip: out of memory (folder name)");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ts_status st = TS_OK;
    if (fd < 0) st = ts_fail(TS_ERR_IO, "zip: '%s': saved, but cannot open its folder to sync it: %s", path, strerror(errno));
    else {
        if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS && errno != ENOTSUP)
            st = ts_fail(TS_ERR_IO, "zip: '%s': saved, but syncing its folder failed: %s", path, strerror(errno));
        close(fd);
    }
    free(dir);
    return st;
}

/* The file a save replaces: the target of a symlink, so the link survives. */
static char *resolve_target(const char *path, struct stat *old, bool *exists)
{
    struct stat ls;
    *exists = false;
    if (lstat(path, &ls) == 0 && S_ISLNK(ls.st_mode)) {
        char *real = realpath(path, NULL);
        if (real && stat(real, old) == 0) { *exists = true; return real; }
        free(real);
    } else if (stat(path, old) == 0) {
        *exists = true;
    }
    return strdup(path);
}

ts_zip_writer *ts_zip_writer_open(const char *path, const ts_zip_write_opts *opts)
{
    if (!path || !*path) return ts_fail_null(TS_ERR_ARG, "zip: empty path");
    ts_zip_write_opts o = opts ? *opts : (ts_zip_write_opts){ 0 };
    if (o.align == 0) o.align = 64;
    if (o.align > 4096 || (o.align & (o.align - 1)))
        return ts_fail_null(TS_ERR_ARG, "zip: alignment %u is not a power of two <= 4096", o.align);
    if (o.zip64_at == 0 || o.zip64_at > 0xFFFFFFFFu) o.zip64_at = 0xFFFFFFFFu;
    struct stat old;
    bool exists;
    char *target = resolve_target(path, &old, &exists);
    if (!target) return ts_fail_null(TS_ERR_MEMORY, "zip: out of memory (path)");
    if (exists && S_ISDIR(old.st_mode)) {
        free(target);
        return ts_fail_null(TS_ERR_IO, "zip: '%s' is a folder; give a file name to save to", path);
    }
    ts_zip_writer *w = calloc(1, sizeof *w);
    unsigned char *buf = malloc(BUF_CAP);
    if (!w || !buf) {
        free(w); free(buf); free(target);
        return ts_fail_null(TS_ERR_MEMORY, "zip: out of memory (writer)");
    }
    w->buf = buf;
    w->target = target;
    w->opts = o;
    w->fd = create_temp(target, &w->tmp);
    if (w->fd < 0) { free(buf); free(target); free(w); return NULL; }
    if (exists && S_ISREG(old.st_mode)) (void)fchmod(w->fd, old.st_mode & 07777);   /* keep the old file's mode */
    return w;
}

void ts_zip_writer_abort(ts_zip_writer *w)
{
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    if (w->tmp) unlink(w->tmp);
    for (size_t i = 0; i < w->n; i++) free(w->entries[i].name);
    free(w->entries);
    free(w->buf);
    free(w->tmp);
    free(w->target);
    free(w);
}

/* ---- entries --------------------------------------------------------------------------------- */

ts_status ts_zip_writer_begin(ts_zip_writer *w, const char *name, uint64_t size)
{
    if (w->failed) return ts_fail(TS_ERR_ARG, "zip: '%s': an earlier write failed", w->target);
    if (w->open_entry) return failed(w, ts_fail(TS_ERR_ARG, "zip: '%s': entry '%s' begun inside another entry", w->target, name));
    size_t nlen = strlen(name);
    if (nlen > 60000) return failed(w, ts_fail(TS_ERR_ARG, "zip: '%s': entry name is too long", w->target));
    if (ts_zip_check_name(name, nlen, w->target)) return failed(w, ts_last_status());
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        wentry *e = realloc(w->entries, cap * sizeof *e);
        if (!e) return failed(w, ts_fail(TS_ERR_MEMORY, "zip: out of memory (entries)"));
        w->entries = e;
        w->cap = cap;
    }
    wentry *e = &w->entries[w->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(name))) return failed(w, ts_fail(TS_ERR_MEMORY, "zip: out of memory (entry name)"));
    w->n++;
    uint64_t zat = w->opts.zip64_at;
    e->offset = w->pos;
    e->size = size;
    e->big = size >= zat || e->offset >= zat;
    size_t z64 = e->big ? 20 : 0;
    uint64_t start = e->offset + 30 + nlen + z64 + 4;
    size_t pad = (size_t)((w->opts.align - start % w->opts.align) % w->opts.align);
    unsigned char h[30 + 20 + 4];
    put_u32(h, 0x04034b50u);
    put_u16(h + 4, e->big ? 45 : 0);
    put_u16(h + 6, 0x0808);
    put_u16(h + 8, 0);                       /* stored */
    put_u16(h + 10, 0);
    put_u16(h + 12, 0);
    put_u32(h + 14, 0);                      /* CRC and sizes follow in the descriptor */
    put_u32(h + 18, e->big ? 0xFFFFFFFFu : 0);
    put_u32(h + 22, e->big ? 0xFFFFFFFFu : 0);
    put_u16(h + 26, (uint16_t)nlen);
    put_u16(h + 28, (uint16_t)(z64 + 4 + pad));
    if (out(w, h, 30) || out(w, name, nlen)) return failed(w, ts_last_status());
    unsigned char x[24];
    if (e->big) {
        put_u16(x, 1);
        put_u16(x + 2, 16);
        put_u64(x + 4, size);
        put_u64(x + 12, size);
        if (out(w, x, 20)) return failed(w, ts_last_status());
    }
    put_u16(x, 0x4246);                      /* "FB" */
    put_u16(x + 2, (uint16_t)pad);
    if (out(w, x, 4)) return failed(w, ts_last_status());
    char zs[4096];
    memset(zs, 'Z', pad);
    if (out(w, zs, pad)) return failed(w, ts_last_status());
    w->open_entry = true;
    w->want = size;
    w->got = 0;
    w->crc = crc32_z(0L, Z_NULL, 0);
    return TS_OK;
}

ts_status ts_zip_writer_write(ts_zip_writer *w, const void *data, size_t n)
{
    if (w->failed) return ts_fail(TS_ERR_ARG, "zip: '%s': an earlier write failed", w->target);
    if (!w->open_entry) return failed(w, ts_fail(TS_ERR_ARG, "zip: '%s': write outside an entry", w->target));
    if (n > w->want - w->got)
        return failed(w, ts_fail(TS_ERR_ARG, "zip: '%s': entry '%s' was begun with %llu bytes; more are written",
                                 w->target, w->entries[w->n - 1].name, (unsigned long long)w->want));
    if (!w->opts.no_crc) {
        if (n >= ((size_t)8 << 20) && w->got == 0 && n == w->want) w->crc = ts_zip_crc32(data, n);
        else w->crc = crc32_z(w->crc, data, n);
    }
    w->got += n;
    return failed(w, out(w, data, n));
}

ts_status ts_zip_writer_end(ts_zip_writer *w)
{
    if (w->failed) return ts_fail(TS_ERR_ARG, "zip: '%s': an earlier write failed", w->target);
    if (!w->open_entry) return failed(w, ts_fail(TS_ERR_ARG, "zip: '%s': end without an entry", w->target));
    wentry *e = &w->entries[w->n - 1];
    if (w->got != w->want)
        return failed(w, ts_fail(TS_ERR_ARG, "zip: '%s': entry '%s' was begun with %llu bytes, %llu were written",
                                 w->target, e->name, (unsigned long long)w->want, (unsigned long long)w->got));
    e->crc = w->opts.no_crc ? 0 : (uint32_t)w->crc;
    unsigned char d[24];
    put_u32(d, 0x08074b50u);
    put_u32(d + 4, e->crc);
    size_t k;
    if (e->big) {
        put_u64(d + 8, e->size);
        put_u64(d + 16, e->size);
        k = 24;
    } else {
        put_u32(d + 8, (uint32_t)e->size);
        put_u32(d + 12, (uint32_t)e->size);
        k = 16;
    }
    w->open_entry = false;
    return failed(w, out(w, d, k));
}

ts_status ts_zip_writer_add(ts_zip_writer *w, const char *name, const void *data, size_t n)
{
    if (ts_zip_writer_begin(w, name, n) || ts_zip_writer_write(w, data, n) || ts_zip_writer_end(w)) return ts_last_status();
    return TS_OK;
}

/* ---- the end ------------------------------------------------------------------------------------ */

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const wentry *const *)a)->name, (*(const wentry *const *)b)->name);
}

static ts_status check_unique(ts_zip_writer *w)
{
    const wentry **v = malloc((w->n ? w->n : 1) * sizeof *v);
    if (!v) return ts_fail(TS_ERR_MEMORY, "zip: out of memory");
    for (size_t i = 0; i < w->n; i++) v[i] = &w->entries[i];
    qsort(v, w->n, sizeof *v, by_name);
    ts_status st = TS_OK;
    for (size_t i = 1; i < w->n && st == TS_OK; i++)
        if (strcmp(v[i - 1]->name, v[i]->name) == 0)
            st = ts_fail(TS_ERR_ARG, "zip: '%s': two entries are named '%s'", w->target, v[i]->name);
    free(v);
    return st;
}

static ts_status write_directory(ts_zip_writer *w)
{
    uint64_t zat = w->opts.zip64_at, cd_start = w->pos;
    for (size_t i = 0; i < w->n; i++) {
        const wentry *e = &w->entries[i];
        bool off_big = e->offset >= zat;
        size_t nlen = strlen(e->name);
        unsigned char x[4 + 24];
        size_t xl = 0;
        if (e->big || off_big) {
            size_t k = 4;
            if (e->big) { put_u64(x + k, e->size); put_u64(x + k + 8, e->size); k += 16; }
            if (off_big) { put_u64(x + k, e->offset); k += 8; }
            put_u16(x, 1);
            put_u16(x + 2, (uint16_t)(k - 4));
            xl = k;
        }
        unsigned char c[46];
        put_u32(c, 0x02014b50u);
        put_u16(c + 4, 0);
        put_u16(c + 6, e->big ? 45 : 0);
        put_u16(c + 8, 0x0808);
        put_u16(c + 10, 0);
        put_u16(c + 12, 0);
        put_u16(c + 14, 0);
        put_u32(c + 16, e->crc);
        put_u32(c + 20, e->big ? 0xFFFFFFFFu : (uint32_t)e->size);
        put_u32(c + 24, e->big ? 0xFFFFFFFFu : (uint32_t)e->size);
        put_u16(c + 28, (uint16_t)nlen);
        put_u16(c + 30, (uint16_t)xl);
        put_u16(c + 32, 0);
        put_u16(c + 34, 0);
        put_u16(c + 36, 0);
        put_u32(c + 38, 0);
        put_u32(c + 42, off_big ? 0xFFFFFFFFu : (uint32_t)e->offset);
        if (out(w, c, 46) || out(w, e->name, nlen) || out(w, x, xl)) return ts_last_status();
    }
    uint64_t n = w->n, cd_size = w->pos - cd_start, eocd64 = w->pos;
    unsigned char r[56 + 20 + 22];
    put_u32(r, 0x06064b50u);
    put_u64(r + 4, 44);
    put_u16(r + 12, 0x031e);
    put_u16(r + 14, 0x002d);
    put_u32(r + 16, 0);
    put_u32(r + 20, 0);
    put_u64(r + 24, n);
    put_u64(r + 32, n);
    put_u64(r + 40, cd_size);
    put_u64(r + 48, cd_start);
    unsigned char *l = r + 56;
    put_u32(l, 0x07064b50u);
    put_u32(l + 4, 0);
    put_u64(l + 8, eocd64);
    put_u32(l + 16, 1);
    unsigned char *e = l + 20;
    put_u32(e, 0x06054b50u);
    put_u16(e + 4, 0);
    put_u16(e + 6, 0);
    put_u16(e + 8, (uint16_t)(n < 0xFFFF ? n : 0xFFFF));
    put_u16(e + 10, (uint16_t)(n < 0xFFFF ? n : 0xFFFF));
    put_u32(e + 12, (uint32_t)(cd_size < 0xFFFFFFFFu ? cd_size : 0xFFFFFFFFu));
    put_u32(e + 16, (uint32_t)(cd_start < 0xFFFFFFFFu ? cd_start : 0xFFFFFFFFu));
    put_u16(e + 20, 0);
    if (out(w, r, sizeof r) || flush_buf(w)) return ts_last_status();
    if (fsync(w->fd) != 0) return ts_fail(TS_ERR_IO, "zip: cannot sync '%s' to disk: %s", w->tmp, strerror(errno));
    return TS_OK;
}

ts_status ts_zip_writer_finish(ts_zip_writer *w)
{
    if (!w) return ts_fail(TS_ERR_ARG, "zip: finish without a writer");
    ts_status st;
    if (w->failed) st = ts_fail(TS_ERR_ARG, "zip: '%s': an earlier write failed; nothing was saved", w->target);
    else if (w->open_entry) st = ts_fail(TS_ERR_ARG, "zip: '%s': entry '%s' was not ended", w->target, w->entries[w->n - 1].name);
    else if ((st = check_unique(w)) == TS_OK) st = write_directory(w);
    if (st == TS_OK) {
        int fd = w->fd;
        w->fd = -1;
        if (close(fd) != 0) st = ts_fail(TS_ERR_IO, "zip: cannot close '%s': %s", w->tmp, strerror(errno));
    }
    if (st == TS_OK && rename(w->tmp, w->target) != 0)
        st = ts_fail(TS_ERR_IO, "zip: cannot rename '%s' to '%s': %s", w->tmp, w->target, strerror(errno));
    if (st != TS_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", ts_last_error());
        ts_zip_writer_abort(w);          /* removes the temp file */
        return ts_fail(st, "%s", msg);
    }
    ts_status synced = sync_folder(w->target);
    free(w->tmp);
    w->tmp = NULL;                       /* renamed: nothing to remove */
    ts_zip_writer_abort(w);
    return synced;
}
