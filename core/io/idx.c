/* idx.c — the IDX reader (torsh/io.h: ts_idx_read), the format of MNIST
 * and Fashion-MNIST, plain or gzip-compressed (read through zlib).
 *
 * Layout: 0x00 0x00 TYPE NDIMS, NDIMS big-endian u32 sizes, then the
 * elements big-endian in row-major order. The reader checks the magic, the
 * type code and the dims, then reads the data:
 *  - plain file: its size is known, so a header declaring more (or less)
 *    data than the file holds fails before any allocation;
 *  - gzip: the decompressed size is unknown until the end, so the data goes
 *    into a buffer that grows only as bytes actually arrive (capped at the
 *    declared size), and the tensor is allocated once all of it is there.
 * Uses zlib (gzdopen/gzread) and the core's tensors; never maps the file. */
#include "io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_MAX_DIMS 8
#define IDX_FIRST_CHUNK ((size_t)1 << 20)
#define IDX_GZ_BUFFER (1u << 17)

typedef struct idx_type { unsigned char code; ts_dtype dtype; const char *name; } idx_type;

static const idx_type IDX_TYPES[] = {
    { 0x08, TS_U8, "u8" }, { 0x09, TS_I8, "i8" }, { 0x0B, TS_I16, "i16" },
    { 0x0C, TS_I32, "i32" }, { 0x0D, TS_F32, "f32" }, { 0x0E, TS_F64, "f64" },
};

static const idx_type *find_type(unsigned char code)
{
    for (size_t i = 0; i < sizeof IDX_TYPES / sizeof *IDX_TYPES; i++)
        if (IDX_TYPES[i].code == code) return &IDX_TYPES[i];
    return NULL;
}

/* An open IDX file: a zlib stream (transparent for plain files). */
typedef struct idx_file {
    const char *path;
    gzFile gz;
    bool compressed;
    int64_t file_size;      /* bytes on disk */
} idx_file;

/* zlib's message without the "<fd:N>: " it puts in front for gzdopen'ed files. */
static const char *zlib_message(gzFile gz, int *zerr)
{
    const char *msg = gzerror(gz, zerr);
    if (msg && strncmp(msg, "<fd:", 4) == 0) {
        const char *colon = strstr(msg, ": ");
        if (colon) msg = colon + 2;
    }
    return msg ? msg : "";
}

/* Reads up to n bytes; returns the count, or -1 after recording a zlib error. */
static int64_t read_some(idx_file *f, void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        size_t want = n - done < ((size_t)1 << 30) ? n - done : ((size_t)1 << 30);
        int got = gzread(f->gz, (char *)buf + done, (unsigned)want);
        if (got < 0) {
            int zerr;
            const char *msg = zlib_message(f->gz, &zerr);
            ts_fail(zerr == Z_ERRNO ? TS_ERR_IO : TS_ERR_FORMAT, "idx_read: %s: %s (%s)", f->path,
                    zerr == Z_ERRNO ? "read error" : "corrupt gzip data", zerr == Z_ERRNO ? strerror(errno) : msg);
            return -1;
        }
        if (got == 0) break;
        done += (size_t)got;
    }
    return (int64_t)done;
}

/* Why the stream ended early: "" for a plain end of file, or zlib's reason. */
static const char *gz_end_reason(idx_file *f)
{
    int zerr;
    const char *msg = zlib_message(f->gz, &zerr);
    return zerr != Z_OK ? msg : "";
}

static ts_status open_idx(idx_file *f, const char *path)
{
    f->path = path;
    f->gz = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ts_fail(TS_ERR_IO, "idx_read: cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ts_fail(TS_ERR_IO, "idx_read: %s is not a regular file", path);
    }
    f->file_size = (int64_t)st.st_size;
    unsigned char magic[2] = { 0, 0 };
    f->compressed = pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    f->gz = gzdopen(fd, "rb");
    if (!f->gz) {
        close(fd);
        return ts_fail(TS_ERR_MEMORY, "idx_read: %s: cannot set up zlib", path);
    }
    gzbuffer(f->gz, IDX_GZ_BUFFER);
    return TS_OK;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads and checks the header; fills *type, shape, *ndim. */
static ts_status read_header(idx_file *f, const idx_type **type, int64_t *shape, int *ndim)
{
    unsigned char head[4 + 4 * IDX_MAX_DIMS];
    int64_t got = read_some(f, head, 4);
    if (got < 0) return ts_last_status();
    if (got < 4)
        return ts_fail(TS_ERR_FORMAT, "idx_read: %s: too short for an IDX header (%lld bytes%s%s)", f->path,
                       (long long)got, f->compressed ? ", gzip stream: " : "", f->compressed ? gz_end_reason(f) : "");
    if (head[0] != 0 || head[1] != 0)
        return ts_fail(TS_ERR_FORMAT, "idx_read: %s: not an IDX file (starts %02x %02x %02x %02x; IDX starts 00 00 TYPE NDIMS)",
                       f->path, head[0], head[1], head[2], head[3]);
    *type = find_type(head[2]);
    if (!*type)
        return ts_fail(TS_ERR_FORMAT, "idx_read: %s: unknown IDX type code 0x%02x (known: 0x08 u8, 0x09 i8, 0x0B i16, "
                       "0x0C i32, 0x0D f32, 0x0E f64)", f->path, head[2]);
    *ndim = head[3];
    if (*ndim < 1 || *ndim > IDX_MAX_DIMS)
        return ts_fail(TS_ERR_FORMAT, "idx_read: %s: declares %d dims (1 to %d are read)", f->path, *ndim, IDX_MAX_DIMS);
    got = read_some(f, head + 4, 4 * (size_t)*ndim);
    if (got < 0) return ts_last_status();
    if (got < 4 * *ndim)
        return ts_fail(TS_ERR_FORMAT, "idx_read: %s: truncated header (%d dims need %d size bytes, found %lld)", f->path,
                       *ndim, 4 * *ndim, (long long)got);
    for (int d = 0; d < *ndim; d++) shape[d] = be32(head + 4 + 4 * d);
    return TS_OK;
}

static ts_status truncated(idx_file *f, const char *shape, const idx_type *type, int64_t need, int64_t have)
{
    const char *why = f->compressed ? gz_end_reason(f) : "";
    return ts_fail(TS_ERR_FORMAT, "idx_read: %s: truncated: the header declares %s %s (%lld bytes of data) but only "
                   "%lld bytes follow%s%s%s", f->path, shape, type->name, (long long)need, (long long)have,
                   *why ? " (gzip stream: " : "", why, *why ? ")" : "");
}

static ts_status trailing(idx_file *f, const char *shape, const char *what)
{
    return ts_fail(TS_ERR_FORMAT, "idx_read: %s: %s after the %s data the header declares", f->path, what, shape);
}

/* Plain file: the data must be exactly what the header declares. */
static ts_tensor *read_plain(idx_file *f, const idx_type *type, const int64_t *shape, int ndim, int64_t need)
{
    char s[TS_SHAPE_STR_CAP];
    ts_shape_str(shape, ndim, s, sizeof s);
    int64_t avail = f->file_size - 4 - 4 * (int64_t)ndim;
    if (avail < need) { truncated(f, s, type, need, avail); return NULL; }
    if (avail > need) {
        char what[64];
        snprintf(what, sizeof what, "%lld unexpected bytes", (long long)(avail - need));
        trailing(f, s, what);
        return NULL;
    }
    ts_tensor *t = ts_tensor_new(shape, ndim, type->dtype);
    if (!t) return NULL;
    int64_t got = read_some(f, ts_tensor_data(t), (size_t)need);
    if (got != need) {
        if (got >= 0) truncated(f, s, type, need, got);   /* the file shrank under us */
        ts_tensor_release(t);
        return NULL;
    }
    return t;
}

/* gzip: grow a buffer as data arrives, never past what was read. */
static ts_tensor *read_gzip(idx_file *f, const idx_type *type, const int64_t *shape, int ndim, int64_t need)
{
    char s[TS_SHAPE_STR_CAP];
    ts_shape_str(shape, ndim, s, sizeof s);
    size_t cap = need < (int64_t)IDX_FIRST_CHUNK ? (size_t)need : IDX_FIRST_CHUNK, have = 0;
    unsigned char *buf = malloc(cap ? cap : 1);
    if (!buf) return ts_fail_null(TS_ERR_MEMORY, "idx_read: %s: out of memory", f->path);
    while (have < (size_t)need) {
        if (have == cap) {
            size_t grown = cap * 2 < (size_t)need ? cap * 2 : (size_t)need;
            unsigned char *nb = realloc(buf, grown);
            if (!nb) { free(buf); return ts_fail_null(TS_ERR_MEMORY, "idx_read: %s: out of memory", f->path); }
            buf = nb;
            cap = grown;
        }
        int64_t got = read_some(f, buf + have, cap - have);
        if (got < 0) { free(buf); return NULL; }
        if (got == 0) { truncated(f, s, type, need, (int64_t)have); free(buf); return NULL; }
        have += (size_t)got;
    }
    unsigned char extra;
    int64_t more = read_some(f, &extra, 1);
    if (more != 0) {
        if (more > 0) trailing(f, s, "unexpected bytes");
        free(buf);
        return NULL;
    }
    ts_tensor *t = ts_tensor_new(shape, ndim, type->dtype);
    if (t && need) memcpy(ts_tensor_data(t), buf, (size_t)need);
    free(buf);
    return t;
}

ts_tensor *ts_idx_read(const char *path)
{
    if (!path) return ts_fail_null(TS_ERR_ARG, "idx_read: path is NULL");
    idx_file f;
    if (open_idx(&f, path)) return NULL;
    const idx_type *type = NULL;
    int64_t shape[IDX_MAX_DIMS];
    int ndim = 0;
    ts_tensor *t = NULL;
    if (read_header(&f, &type, shape, &ndim) == TS_OK) {
        int64_t numel, need;
        size_t esize = ts_dtype_size(type->dtype);
        if (!io_checked_bytes(shape, ndim, esize, &numel, &need)) {
            char s[TS_SHAPE_STR_CAP];
            ts_fail(TS_ERR_FORMAT, "idx_read: %s: declares a %s %s array, larger than any tensor torsh allocates",
                    path, ts_shape_str(shape, ndim, s, sizeof s), type->name);
        } else {
            t = f.compressed ? read_gzip(&f, type, shape, ndim, need) : read_plain(&f, type, shape, ndim, need);
            if (t && esize > 1) io_swap_bytes(ts_tensor_data(t), numel, esize);
        }
    }
    gzclose(f.gz);
    return t;
}
