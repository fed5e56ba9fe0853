/* torsh_file.c — reader and writer of the native `.torsh` file (see
 * torsh/torsh_file.h and docs/FORMAT_TORSH.md): layout and CRC-32 of tensor
 * data (zlib, chunked over the thread pool), the writer (atomic through
 * io_atomic.h: temp file, fsync, rename, folder fsync) and the reader (one
 * read-only mapping of the whole file; tensors are views of it or heap
 * copies). Uses POSIX I/O and zlib; no JSON here. */
#include "torsh/torsh_file.h"

#include "io_atomic.h"
#include "io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define CRC_CHUNK ((size_t)4 << 20)     /* bytes per parallel CRC task */
#define CRC_SLICE ((size_t)256 << 10)   /* copy+CRC step that stays in cache */

struct ts_torsh_file {
    char *path;
    ts_storage *map;            /* the whole file, read-only (shared by tensors) */
    const unsigned char *base;
    ts_torsh_info info;
};

static bool host_is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

static uint64_t align_up(uint64_t x) { return (x + TS_TORSH_ALIGN - 1) / TS_TORSH_ALIGN * TS_TORSH_ALIGN; }

static void put_u16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void put_u32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put_u64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint16_t get_u16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* ---- CRC-32, optionally fused with a copy ------------------------------------ */

typedef struct crc_job {
    const unsigned char *src;
    unsigned char *dst;         /* NULL: checksum only */
    size_t n;
    uint32_t *crcs;             /* one per chunk */
} crc_job;

static void crc_chunks(int64_t begin, int64_t end, void *ctx)
{
    const crc_job *j = ctx;
    for (int64_t c = begin; c < end; c++) {
        size_t off = (size_t)c * CRC_CHUNK, len = j->n - off < CRC_CHUNK ? j->n - off : CRC_CHUNK;
        uLong crc = crc32_z(0L, Z_NULL, 0);
        for (size_t s = 0; s < len; s += CRC_SLICE) {
            size_t k = len - s < CRC_SLICE ? len - s : CRC_SLICE;
            const unsigned char *p = j->src + off + s;
            if (j->dst) {
                memcpy(j->dst + off + s, p, k);
                p = j->dst + off + s;
            }
            crc = crc32_z(crc, p, k);
        }
        j->crcs[c] = (uint32_t)crc;
    }
}

/* CRC-32 of n bytes at src; copies them to dst too when dst is not NULL.
 * Chunks run on the thread pool and are combined in order, so the result
 * does not depend on the thread count. */
static ts_status crc_copy(const void *src, void *dst, size_t n, uint32_t *out)
{
    size_t nchunks = n / CRC_CHUNK + (n % CRC_CHUNK != 0);
    uint32_t one;
    uint32_t *crcs = nchunks <= 1 ? &one : malloc(nchunks * sizeof *crcs);
    if (!crcs) return ts_fail(TS_ERR_MEMORY, "out of memory (CRC table)");
    crc_job j = { src, dst, n, crcs };
    if (nchunks == 0) crcs[0] = 0;
    else if (nchunks == 1) crc_chunks(0, 1, &j);
    else ts_parallel_for((int64_t)nchunks, 1, crc_chunks, &j);
    uLong crc = crcs[0];
    for (size_t c = 1; c < nchunks; c++) {
        size_t len = c + 1 < nchunks ? CRC_CHUNK : n - c * CRC_CHUNK;
        crc = crc32_combine(crc, crcs[c], (z_off_t)len);
    }
    if (crcs != &one) free(crcs);
    *out = (uint32_t)crc;
    return TS_OK;
}

static ts_status require_cpu(const char *op, const ts_tensor *t, size_t i)
{
    if (t->storage->device.type != TS_CPU)
        return ts_fail(TS_ERR_UNSUPPORTED, "%s: tensor %zu is not on the CPU; copy it to the CPU first", op, i);
    return TS_OK;
}

ts_status ts_torsh_crc32(const ts_tensor *t, uint32_t *crc)
{
    if (!host_is_little_endian()) return ts_fail(TS_ERR_UNSUPPORTED, "crc32: big-endian hosts are not supported");
    if (require_cpu("crc32", t, 0)) return ts_last_status();
    ts_tensor *c = ts_contiguous(t);      /* t itself (retained) when already contiguous */
    if (!c) return ts_last_status();
    ts_status st = crc_copy(ts_tensor_data(c), NULL, ts_tensor_nbytes(c), crc);
    ts_tensor_release(c);
    return st;
}

ts_status ts_torsh_plan(ts_tensor *const *tensors, size_t n, ts_torsh_entry *entries, bool checksum)
{
    uint64_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        const ts_tensor *t = tensors[i];
        ts_torsh_entry *e = &entries[i];
        if (!t) return ts_fail(TS_ERR_ARG, "torsh plan: tensor %zu is NULL", i);
        if (require_cpu("torsh plan", t, i)) return ts_last_status();
        memset(e, 0, sizeof *e);
        e->dtype = t->dtype;
        e->ndim = t->ndim;
        memcpy(e->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
        e->offset = align_up(pos);
        e->nbytes = ts_tensor_nbytes(t);
        pos = e->offset + e->nbytes;
        if (checksum) {
            if (ts_torsh_crc32(t, &e->crc32)) return ts_last_status();
            e->has_crc = true;
        }
    }
    return TS_OK;
}

/* ---- the atomic writer ------------------------------------------------------ */

/* Checks entries against the tensors: sizes, alignment, order. */
static ts_status check_entries(ts_tensor *const *tensors, const ts_torsh_entry *entries, size_t n)
{
    uint64_t end = 0;
    for (size_t i = 0; i < n; i++) {
        const ts_tensor *t = tensors[i];
        const ts_torsh_entry *e = &entries[i];
        if (!t) return ts_fail(TS_ERR_ARG, "torsh write: tensor %zu is NULL", i);
        if (require_cpu("torsh write", t, i)) return ts_last_status();
        if (e->nbytes != ts_tensor_nbytes(t))
            return ts_fail(TS_ERR_ARG, "torsh write: entry %zu says %llu bytes, the tensor has %zu", i,
                           (unsigned long long)e->nbytes, ts_tensor_nbytes(t));
        if (e->offset % TS_TORSH_ALIGN || e->offset < end)
            return ts_fail(TS_ERR_ARG, "torsh write: entry %zu: offset %llu is unaligned or overlaps the previous tensor",
                           i, (unsigned long long)e->offset);
        end = e->offset + e->nbytes;
    }
    return TS_OK;
}

/* Everything between creating the temp file and committing it. */
static ts_status write_body(ts_io_atomic *a, const char *json, size_t json_len,
                            ts_tensor *const *tensors, const ts_torsh_entry *entries, size_t n)
{
    uint64_t data_offset = align_up(TS_TORSH_FIXED_HEADER + (uint64_t)json_len);
    unsigned char head[TS_TORSH_FIXED_HEADER];
    memcpy(head, TS_TORSH_MAGIC, 8);
    put_u16(head + 8, TS_TORSH_MAJOR);
    put_u16(head + 10, TS_TORSH_MINOR);
    put_u32(head + 12, 0);
    put_u64(head + 16, json_len);
    put_u64(head + 24, data_offset);
    if (ts_io_atomic_write(a, head, sizeof head) || ts_io_atomic_write(a, json, json_len) ||
        ts_io_atomic_zeros(a, data_offset - TS_TORSH_FIXED_HEADER - json_len))
        return ts_last_status();
    uint64_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (ts_io_atomic_zeros(a, entries[i].offset - pos) || ts_io_atomic_write_tensor(a, tensors[i]))
            return ts_last_status();
        pos = entries[i].offset + entries[i].nbytes;
    }
    return TS_OK;
}

ts_status ts_torsh_write(const char *path, const char *json, size_t json_len,
                         ts_tensor *const *tensors, const ts_torsh_entry *entries, size_t n)
{
    if (!host_is_little_endian()) return ts_fail(TS_ERR_UNSUPPORTED, "torsh write: big-endian hosts are not supported");
    if (!path || !*path) return ts_fail(TS_ERR_ARG, "torsh write: empty path");
    if (!json && json_len) return ts_fail(TS_ERR_ARG, "torsh write: NULL JSON header");
    if (check_entries(tensors, entries, n)) return ts_last_status();
    ts_io_atomic a;
    if (ts_io_atomic_begin(&a, path, NULL)) return ts_last_status();   /* NULL: torsh.save prefixes messages */
    if (write_body(&a, json, json_len, tensors, entries, n)) {
        ts_io_atomic_abort(&a);
        return ts_last_status();
    }
    return ts_io_atomic_commit(&a);
}

/* ---- the reader ------------------------------------------------------------- */

/* Validates the fixed header (32 bytes read from a file of `size` bytes). */
static ts_status check_fixed_header(const char *path, const unsigned char *h, size_t got, uint64_t size, ts_torsh_info *info)
{
    if (got < 8 || memcmp(h, TS_TORSH_MAGIC, 8) != 0)
        return ts_fail(TS_ERR_FORMAT, "'%s' is not a torsh file (bad magic; %llu bytes)", path, (unsigned long long)size);
    if (got < TS_TORSH_FIXED_HEADER)
        return ts_fail(TS_ERR_FORMAT, "'%s' is truncated: %llu bytes, the fixed header alone is %d",
                       path, (unsigned long long)size, TS_TORSH_FIXED_HEADER);
    info->major = get_u16(h + 8);
    info->minor = get_u16(h + 10);
    info->flags = get_u32(h + 12);
    info->json_len = get_u64(h + 16);
    info->data_offset = get_u64(h + 24);
    info->file_size = size;
    if (info->major > TS_TORSH_MAJOR)
        return ts_fail(TS_ERR_FORMAT, "'%s' was written by torsh format %u.%u; this torsh reads %d.x (upgrade torsh to load it)",
                       path, info->major, info->minor, TS_TORSH_MAJOR);
    if (info->major < 1)
        return ts_fail(TS_ERR_FORMAT, "'%s': unknown torsh format version %u.%u", path, info->major, info->minor);
    if (info->flags != 0)
        return ts_fail(TS_ERR_FORMAT, "'%s' uses format flags 0x%x that this torsh (format %d.%d) does not know",
                       path, (unsigned)info->flags, TS_TORSH_MAJOR, TS_TORSH_MINOR);
    if (info->json_len > size - TS_TORSH_FIXED_HEADER)
        return ts_fail(TS_ERR_FORMAT, "'%s' is truncated or corrupt: its JSON header claims %llu bytes, the file has %llu",
                       path, (unsigned long long)info->json_len, (unsigned long long)size);
    if (info->data_offset % TS_TORSH_ALIGN || info->data_offset < TS_TORSH_FIXED_HEADER + info->json_len ||
        info->data_offset > size)
        return ts_fail(TS_ERR_FORMAT, "'%s' is truncated or corrupt: bad data section offset %llu (file of %llu bytes)",
                       path, (unsigned long long)info->data_offset, (unsigned long long)size);
    return TS_OK;
}

ts_torsh_file *ts_torsh_open(const char *path)
{
    if (!host_is_little_endian()) return ts_fail_null(TS_ERR_UNSUPPORTED, "torsh open: big-endian hosts are not supported");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ts_fail_null(TS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    ts_torsh_file *f = NULL;
    if (fstat(fd, &st) != 0) { ts_fail(TS_ERR_IO, "cannot stat '%s': %s", path, strerror(errno)); goto done; }
    if (!S_ISREG(st.st_mode)) { ts_fail(TS_ERR_IO, "'%s' is not a regular file", path); goto done; }
    unsigned char head[TS_TORSH_FIXED_HEADER];
    ssize_t got;
    do got = pread(fd, head, sizeof head, 0); while (got < 0 && errno == EINTR);
    if (got < 0) { ts_fail(TS_ERR_IO, "cannot read '%s': %s", path, strerror(errno)); goto done; }
    if ((uint64_t)got > (uint64_t)st.st_size) got = (ssize_t)st.st_size;   /* grew since fstat: trust the size we map */
    ts_torsh_info info;
    if (check_fixed_header(path, head, (size_t)got, (uint64_t)st.st_size, &info)) goto done;
    f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) { ts_fail(TS_ERR_MEMORY, "out of memory (torsh file)"); goto fail; }
    f->map = io_map_fd(fd, info.file_size, NULL, path);
    if (!f->map) goto fail;
    f->base = f->map->data;
    f->info = info;
    goto done;
fail:
    ts_torsh_close(f);
    f = NULL;
done:
    close(fd);
    return f;
}

const char *ts_torsh_json(const ts_torsh_file *f, size_t *len)
{
    *len = (size_t)f->info.json_len;
    return (const char *)f->base + TS_TORSH_FIXED_HEADER;
}

ts_torsh_info ts_torsh_get_info(const ts_torsh_file *f) { return f->info; }
const char *ts_torsh_path(const ts_torsh_file *f) { return f->path; }

/* Checks an entry against the file: dtype, shape, size, alignment, bounds. */
static ts_status check_entry(const ts_torsh_file *f, const ts_torsh_entry *e, const char *name)
{
    const char *path = f->path;
    if ((int)e->dtype < 0 || e->dtype >= TS_DTYPE_COUNT)
        return ts_fail(TS_ERR_FORMAT, "'%s': tensor '%s': unknown dtype %d", path, name, (int)e->dtype);
    if (e->ndim < 0 || e->ndim > TS_MAX_DIMS)
        return ts_fail(TS_ERR_FORMAT, "'%s': tensor '%s': %d dims (at most %d)", path, name, e->ndim, TS_MAX_DIMS);
    uint64_t numel = 1;
    for (int i = 0; i < e->ndim; i++) {
        if (e->shape[i] < 0)
            return ts_fail(TS_ERR_FORMAT, "'%s': tensor '%s': negative size %lld in dim %d",
                           path, name, (long long)e->shape[i], i);
        if (__builtin_mul_overflow(numel, (uint64_t)e->shape[i], &numel) || numel > INT64_MAX)
            return ts_fail(TS_ERR_FORMAT, "'%s': tensor '%s': shape is too large", path, name);
    }
    uint64_t want;
    if (__builtin_mul_overflow(numel, (uint64_t)ts_dtype_size(e->dtype), &want) || want != e->nbytes)
        return ts_fail(TS_ERR_FORMAT, "'%s': tensor '%s': %llu bytes recorded, but its shape and dtype %s need %llu",
                       path, name, (unsigned long long)e->nbytes, ts_dtype_name(e->dtype), (unsigned long long)want);
    if (e->offset % TS_TORSH_ALIGN)
        return ts_fail(TS_ERR_FORMAT, "'%s': tensor '%s': offset %llu is not a multiple of %d",
                       path, name, (unsigned long long)e->offset, TS_TORSH_ALIGN);
    uint64_t room = f->info.file_size - f->info.data_offset;
    if (e->offset > room || e->nbytes > room - e->offset)
        return ts_fail(TS_ERR_FORMAT, "'%s' is truncated or corrupt: tensor '%s' needs bytes [%llu, %llu) of the data section, which has %llu",
                       path, name, (unsigned long long)e->offset, (unsigned long long)(e->offset + e->nbytes),
                       (unsigned long long)room);
    return TS_OK;
}

ts_tensor *ts_torsh_tensor(ts_torsh_file *f, const ts_torsh_entry *e, unsigned flags)
{
    const char *name = e->name ? e->name : "?";
    if (check_entry(f, e, name)) return NULL;
    const unsigned char *src = f->base + f->info.data_offset + e->offset;
    bool verify = (flags & TS_TORSH_VERIFY) && e->has_crc;
    ts_tensor *t;
    if (flags & TS_TORSH_COPY) {
        t = ts_tensor_new(e->shape, e->ndim, e->dtype);
    } else {
        int64_t elem = (int64_t)((f->info.data_offset + e->offset) / ts_dtype_size(e->dtype));
        t = ts_tensor_from_storage(f->map, e->dtype, elem, e->shape, NULL, e->ndim);
    }
    if (!t) return NULL;
    uint32_t crc = 0;
    ts_status st = TS_OK;
    if (flags & TS_TORSH_COPY) {
        if (verify) st = crc_copy(src, ts_tensor_data(t), (size_t)e->nbytes, &crc);
        else if (e->nbytes) memcpy(ts_tensor_data(t), src, (size_t)e->nbytes);
    } else if (verify) {
        st = crc_copy(src, NULL, (size_t)e->nbytes, &crc);
    }
    if (st == TS_OK && verify && crc != e->crc32)
        st = ts_fail(TS_ERR_FORMAT, "'%s' is corrupt: tensor '%s' fails its checksum (crc32 %08x, recorded %08x)",
                     f->path, name, (unsigned)crc, (unsigned)e->crc32);
    if (st != TS_OK) { ts_tensor_release(t); return NULL; }
    return t;
}

void ts_torsh_close(ts_torsh_file *f)
{
    if (!f) return;
    ts_storage_release(f->map);
    free(f->path);
    free(f);
}
