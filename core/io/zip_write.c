/* zip_write.c — the ZIP writer of torsh/zip.h: stored entries laid out the
 * way PyTorch's PyTorchStreamWriter does (aligned data behind an "FB"
 * padding field, data descriptors, ZIP64 fields when sizes or offsets need
 * them, ZIP64 end records), written atomically through io_atomic.h (a
 * temp file that is synced and renamed over the target). Uses POSIX I/O
 * and zlib (CRC-32). */
#include "torsh/zip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io_atomic.h"
#include "zip_internal.h"

#define BUF_CAP ((size_t)1 << 16)

typedef struct wentry {
    char *name;
    uint64_t offset, size;
    uint32_t crc;
    bool big;
} wentry;

struct ts_zip_writer {
    ts_io_atomic file;          /* the temp file; file.target is the path being replaced */
    ts_zip_write_opts opts;
    uint64_t pos;               /* bytes written so far (including the buffer) */
    unsigned char *buf;
    size_t buffered;
    wentry *entries;
    size_t n, cap;
    size_t *names;              /* hash set of entry names: index + 1 per slot, 0 = free */
    size_t names_cap;           /* slots, a power of two > 2 n (0 before the first entry) */
    bool open_entry;            /* between begin and end */
    uint64_t want, got;         /* size of the open entry; bytes written to it */
    uLong crc;
    bool failed;
};

/* ---- low-level output ----------------------------------------------------------------- */

static ts_status flush_buf(ts_zip_writer *w)
{
    ts_status st = ts_io_atomic_write(&w->file, w->buf, w->buffered);
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
    return ts_io_atomic_write(&w->file, data, n);
}

/* Marks the writer failed and passes the status on. */
static ts_status failed(ts_zip_writer *w, ts_status st)
{
    if (st != TS_OK) w->failed = true;
    return st;
}

/* ---- the set of names (zip.h: a name "must be new") --------------------------------------- */

static size_t name_hash(const char *s)
{
    uint64_t h = 14695981039346656037ull;                   /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)(h ^ h >> 32);
}

/* The slot holding `name`, or the free slot where it would go. */
static size_t *name_slot(const ts_zip_writer *w, const char *name)
{
    size_t mask = w->names_cap - 1;
    for (size_t i = name_hash(name) & mask;; i = (i + 1) & mask)
        if (w->names[i] == 0 || strcmp(w->entries[w->names[i] - 1].name, name) == 0) return &w->names[i];
}

/* Makes room for one more name (the set stays at most half full). */
static ts_status names_reserve(ts_zip_writer *w)
{
    if (2 * (w->n + 1) < w->names_cap) return TS_OK;
    size_t cap = w->names_cap ? 2 * w->names_cap : 64;
    size_t *slots = calloc(cap, sizeof *slots);
    if (!slots) return ts_fail(TS_ERR_MEMORY, "zip: out of memory (entry names)");
    free(w->names);
    w->names = slots;
    w->names_cap = cap;
    for (size_t i = 0; i < w->n; i++) *name_slot(w, w->entries[i].name) = i + 1;
    return TS_OK;
}

/* ---- the writer ------------------------------------------------------------------------- */

ts_zip_writer *ts_zip_writer_open(const char *path, const ts_zip_write_opts *opts)
{
    if (!path || !*path) return ts_fail_null(TS_ERR_ARG, "zip: empty path");
    ts_zip_write_opts o = opts ? *opts : (ts_zip_write_opts){ 0 };
    if (o.align == 0) o.align = 64;
    if (o.align > 4096 || (o.align & (o.align - 1)))
        return ts_fail_null(TS_ERR_ARG, "zip: alignment %u is not a power of two <= 4096", o.align);
    if (o.zip64_at == 0 || o.zip64_at > 0xFFFFFFFFu) o.zip64_at = 0xFFFFFFFFu;
    ts_zip_writer *w = calloc(1, sizeof *w);
    unsigned char *buf = malloc(BUF_CAP);
    if (!w || !buf) {
        free(w); free(buf);
        return ts_fail_null(TS_ERR_MEMORY, "zip: out of memory (writer)");
    }
    if (ts_io_atomic_begin(&w->file, path, "zip")) { free(buf); free(w); return NULL; }
    w->buf = buf;
    w->opts = o;
    return w;
}

/* Frees everything but the temp file (aborted or committed before). */
static void free_writer(ts_zip_writer *w)
{
    for (size_t i = 0; i < w->n; i++) free(w->entries[i].name);
    free(w->entries);
    free(w->names);
    free(w->buf);
    free(w);
}

void ts_zip_writer_abort(ts_zip_writer *w)
{
    if (!w) return;
    ts_io_atomic_abort(&w->file);           /* closes and removes the temp file */
    free_writer(w);
}

/* ---- entries --------------------------------------------------------------------------------- */

ts_status ts_zip_writer_begin(ts_zip_writer *w, const char *name, uint64_t size)
{
    if (w->failed) return ts_fail(TS_ERR_ARG, "zip: '%s': an earlier write failed", w->file.target);
    if (w->open_entry) return failed(w, ts_fail(TS_ERR_ARG, "zip: '%s': entry '%s' begun inside another entry", w->file.target, name));
    size_t nlen = strlen(name);
    if (nlen > 60000) return failed(w, ts_fail(TS_ERR_ARG, "zip: '%s': entry name is too long", w->file.target));
    if (ts_zip_check_name(name, nlen, w->file.target)) return failed(w, ts_last_status());
    if (names_reserve(w)) return failed(w, ts_last_status());
    size_t *slot = name_slot(w, name);
    if (*slot) return failed(w, ts_fail(TS_ERR_ARG, "zip: '%s': two entries are named '%s'", w->file.target, name));
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
    *slot = w->n;
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
    if (w->failed) return ts_fail(TS_ERR_ARG, "zip: '%s': an earlier write failed", w->file.target);
    if (!w->open_entry) return failed(w, ts_fail(TS_ERR_ARG, "zip: '%s': write outside an entry", w->file.target));
    if (n > w->want - w->got)
        return failed(w, ts_fail(TS_ERR_ARG, "zip: '%s': entry '%s' was begun with %llu bytes; more are written",
                                 w->file.target, w->entries[w->n - 1].name, (unsigned long long)w->want));
    if (!w->opts.no_crc) {
        if (n >= ((size_t)8 << 20) && w->got == 0 && n == w->want) w->crc = ts_zip_crc32(data, n);
        else w->crc = crc32_z(w->crc, data, n);
    }
    w->got += n;
    return failed(w, out(w, data, n));
}

ts_status ts_zip_writer_end(ts_zip_writer *w)
{
    if (w->failed) return ts_fail(TS_ERR_ARG, "zip: '%s': an earlier write failed", w->file.target);
    if (!w->open_entry) return failed(w, ts_fail(TS_ERR_ARG, "zip: '%s': end without an entry", w->file.target));
    wentry *e = &w->entries[w->n - 1];
    if (w->got != w->want)
        return failed(w, ts_fail(TS_ERR_ARG, "zip: '%s': entry '%s' was begun with %llu bytes, %llu were written",
                                 w->file.target, e->name, (unsigned long long)w->want, (unsigned long long)w->got));
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
    return TS_OK;
}

ts_status ts_zip_writer_finish(ts_zip_writer *w)
{
    if (!w) return ts_fail(TS_ERR_ARG, "zip: finish without a writer");
    ts_status st;
    if (w->failed) st = ts_fail(TS_ERR_ARG, "zip: '%s': an earlier write failed; nothing was saved", w->file.target);
    else if (w->open_entry)
        st = ts_fail(TS_ERR_ARG, "zip: '%s': entry '%s' was not ended", w->file.target, w->entries[w->n - 1].name);
    else st = write_directory(w);
    if (st != TS_OK) {
        ts_zip_writer_abort(w);             /* removes the temp file, keeps the message */
        return st;
    }
    st = ts_io_atomic_commit(&w->file);     /* fsync, rename, folder fsync; removes the temp file on failure */
    free_writer(w);
    return st;
}
