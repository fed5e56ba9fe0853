/* zip_read.c — the ZIP reader of torsh/zip.h: maps the file read-only,
 * finds the end records (classic and ZIP64), reads and checks the central
 * directory against each local header and the file size, and hands out
 * entries as pointers into the mapping, storages (views of the mapping or
 * heap copies) or inflated copies (zlib). Also the CRC-32 helper shared with
 * the writer (zip_write.c). Uses POSIX mmap and zlib. */
#include "torsh/zip.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io_internal.h"
#include "zip_internal.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u
#define EOCD_SIZE 22
#define LOCATOR64_SIZE 20
#define EOCD64_SIZE 56
#define CENTRAL_SIZE 46
#define LOCAL_SIZE 30
#define MAX_COMMENT 65535
#define DEFLATE_MAX_RATIO 1032u  /* deflate cannot expand one byte into more */

struct ts_zip {
    char *path;
    ts_storage *map;             /* the whole file (NULL for an empty file) */
    const unsigned char *base;
    uint64_t size;
    ts_zip_entry *entries;
    size_t n;
    char *names;                 /* all names, NUL-terminated, back to back */
    size_t *sorted;              /* entry indices sorted by name */
};

/* ---- CRC-32, in parallel for large buffers --------------------------------------- */

#define CRC_CHUNK ((size_t)4 << 20)

typedef struct crc_job { const unsigned char *p; size_t n; uint32_t *crcs; } crc_job;

static void crc_chunks(int64_t begin, int64_t end, void *ctx)
{
    const crc_job *j = ctx;
    for (int64_t c = begin; c < end; c++) {
        size_t off = (size_t)c * CRC_CHUNK, len = j->n - off < CRC_CHUNK ? j->n - off : CRC_CHUNK;
        j->crcs[c] = (uint32_t)crc32_z(0L, j->p + off, len);
    }
}

uint32_t ts_zip_crc32(const void *data, size_t n)
{
    size_t nchunks = n / CRC_CHUNK + (n % CRC_CHUNK != 0);
    if (nchunks <= 1) return (uint32_t)crc32_z(0L, data, n);
    uint32_t *crcs = malloc(nchunks * sizeof *crcs);
    if (!crcs) return (uint32_t)crc32_z(0L, data, n);     /* serial fallback */
    crc_job j = { data, n, crcs };
    ts_parallel_for((int64_t)nchunks, 1, crc_chunks, &j);
    uLong crc = crcs[0];
    for (size_t c = 1; c < nchunks; c++) {
        size_t len = c + 1 < nchunks ? CRC_CHUNK : n - c * CRC_CHUNK;
        crc = crc32_combine(crc, crcs[c], (z_off_t)len);
    }
    free(crcs);
    return (uint32_t)crc;
}

/* ---- names ------------------------------------------------------------------------ */

ts_status ts_zip_check_name(const char *name, size_t len, const char *what)
{
    if (len == 0) return ts_fail(TS_ERR_FORMAT, "zip: '%s': an entry has an empty name", what);
    if (len > 65535) return ts_fail(TS_ERR_FORMAT, "zip: '%s': an entry name is longer than 65535 bytes", what);
    if (memchr(name, '\0', len)) return ts_fail(TS_ERR_FORMAT, "zip: '%s': an entry name contains a NUL byte", what);
    int shown = len > 200 ? 200 : (int)len;
    if (memchr(name, '\\', len))
        return ts_fail(TS_ERR_FORMAT, "zip: '%s': entry name '%.*s' contains a backslash", what, shown, name);
    if (name[0] == '/')
        return ts_fail(TS_ERR_FORMAT, "zip: '%s': entry name '%.*s' is an absolute path", what, shown, name);
    if (len >= 2 && name[1] == ':')
        return ts_fail(TS_ERR_FORMAT, "zip: '%s': entry name '%.*s' starts with a drive letter", what, shown, name);
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && name[i] != '/') continue;
        size_t k = i - start;
        if (k == 0 && !(i == len && start > 0))     /* only "folder/" may end with an empty component */
            return ts_fail(TS_ERR_FORMAT, "zip: '%s': entry name '%.*s' has an empty path component", what, shown, name);
        if ((k == 1 && name[start] == '.') || (k == 2 && name[start] == '.' && name[start + 1] == '.'))
            return ts_fail(TS_ERR_FORMAT, "zip: '%s': entry name '%.*s' contains a '%.*s' component", what, shown,
                           name, (int)k, name + start);
        start = i + 1;
    }
    return TS_OK;
}

/* ---- opening ---------------------------------------------------------------------- */


typedef struct end_info {
    uint64_t count;      /* entries */
    uint64_t cd_offset, cd_size;
    uint64_t cd_limit;   /* where the end records start: the directory must end by then */
} end_info;

static ts_status find_end(const ts_zip *z, end_info *out)
{
    const unsigned char *b = z->base;
    uint64_t size = z->size;
    const char *path = z->path;
    if (size < EOCD_SIZE)
        return ts_fail(TS_ERR_FORMAT, "zip: '%s' is too small to be a zip archive (%llu bytes)", path, (unsigned long long)size);
    uint64_t lowest = size - EOCD_SIZE > MAX_COMMENT ? size - EOCD_SIZE - MAX_COMMENT : 0;
    uint64_t pos = size - EOCD_SIZE;
    for (;;) {
        if (get_u32(b + pos) == SIG_EOCD && pos + EOCD_SIZE + get_u16(b + pos + 20) == size) break;
        if (pos == lowest)
            return ts_fail(TS_ERR_FORMAT, "zip: '%s': no end-of-central-directory record (not a zip archive, or truncated)", path);
        pos--;
    }
    const unsigned char *e = b + pos;
    uint16_t disk = get_u16(e + 4), cd_disk = get_u16(e + 6);
    uint64_t n_disk = get_u16(e + 8), n_total = get_u16(e + 10);
    uint64_t cd_size = get_u32(e + 12), cd_offset = get_u32(e + 16);
    uint64_t limit = pos;
    if (pos >= LOCATOR64_SIZE && get_u32(b + pos - LOCATOR64_SIZE) == SIG_LOCATOR64) {
        const unsigned char *loc = b + pos - LOCATOR64_SIZE;
        uint64_t off64 = get_u64(loc + 8);
        if (get_u32(loc + 4) != 0 || get_u32(loc + 16) > 1)
            return ts_fail(TS_ERR_FORMAT, "zip: '%s': multi-disk archives are not supported", path);
        if (off64 > pos - LOCATOR64_SIZE || pos - LOCATOR64_SIZE - off64 < EOCD64_SIZE)
            return ts_fail(TS_ERR_FORMAT, "zip: '%s': the ZIP64 end record offset %llu is outside the file",
                           path, (unsigned long long)off64);
        const unsigned char *e64 = b + off64;
        if (get_u32(e64) != SIG_EOCD64)
            return ts_fail(TS_ERR_FORMAT, "zip: '%s': no ZIP64 end record at offset %llu", path, (unsigned long long)off64);
        uint64_t rec = get_u64(e64 + 4);
        if (rec < EOCD64_SIZE - 12 || rec > pos - LOCATOR64_SIZE - off64 - 12)
            return ts_fail(TS_ERR_FORMAT, "zip: '%s': the ZIP64 end record claims %llu bytes", path, (unsigned long long)rec);
        disk = (uint16_t)(get_u32(e64 + 16) != 0);
        cd_disk = (uint16_t)(get_u32(e64 + 20) != 0);
        n_disk = get_u64(e64 + 24);
        n_total = get_u64(e64 + 32);
        cd_size = get_u64(e64 + 40);
        cd_offset = get_u64(e64 + 48);
        limit = off64;
    }
    if (disk != 0 || cd_disk != 0 || n_disk != n_total)
        return ts_fail(TS_ERR_FORMAT, "zip: '%s': multi-disk archives are not supported", path);
    if (cd_offset > limit || cd_size > limit - cd_offset)
        return ts_fail(TS_ERR_FORMAT, "zip: '%s': the central directory [%llu, +%llu) lies outside the file (%llu bytes before the end records)",
                       path, (unsigned long long)cd_offset, (unsigned long long)cd_size, (unsigned long long)limit);
    if (n_total > cd_size / CENTRAL_SIZE)
        return ts_fail(TS_ERR_FORMAT, "zip: '%s': %llu entries cannot fit in a %llu-byte central directory",
                       path, (unsigned long long)n_total, (unsigned long long)cd_size);
    out->count = n_total;
    out->cd_offset = cd_offset;
    out->cd_size = cd_size;
    out->cd_limit = limit;
    return TS_OK;
}

/* Replaces 0xFFFFFFFF sizes/offset with the values of the ZIP64 extra field. */
static ts_status read_zip64_extra(const ts_zip *z, const unsigned char *x, size_t xlen, ts_zip_entry *e,
                                  bool need_u, bool need_c, bool need_o, const char *shown)
{
    size_t i = 0;
    while (i + 4 <= xlen) {
        uint16_t id = get_u16(x + i), len = get_u16(x + i + 2);
        if (len > xlen - i - 4) break;
        if (id == 1) {
            const unsigned char *p = x + i + 4;
            size_t k = 0, need = 8 * ((size_t)need_u + need_c + need_o);
            if (len < need)
                return ts_fail(TS_ERR_FORMAT, "zip: '%s': entry '%s': its ZIP64 field is %u bytes, %zu needed", z->path, shown, len, need);
            if (need_u) { e->usize = get_u64(p + k); k += 8; }
            if (need_c) { e->csize = get_u64(p + k); k += 8; }
            if (need_o) { e->header_offset = get_u64(p + k); k += 8; }
            return TS_OK;
        }
        i += 4 + (size_t)len;
    }
    return ts_fail(TS_ERR_FORMAT, "zip: '%s': entry '%s': sizes are deferred to a ZIP64 field that is missing", z->path, shown);
}

/* Checks entry e against its local header and the file. */
static ts_status check_local(const ts_zip *z, ts_zip_entry *e, uint64_t cd_offset)
{
    const char *path = z->path, *name = e->name;
    size_t nlen = strlen(name);
    if (e->header_offset > cd_offset || cd_offset - e->header_offset < LOCAL_SIZE)
        return ts_fail(TS_ERR_FORMAT, "zip: '%s': entry '%s': local header offset %llu is not before the central directory (at %llu)",
                       path, name, (unsigned long long)e->header_offset, (unsigned long long)cd_offset);
    const unsigned char *h = z->base + e->header_offset;
    if (get_u32(h) != SIG_LOCAL)
        return ts_fail(TS_ERR_FORMAT, "zip: '%s': entry '%s': no local header at offset %llu", path, name,
                       (unsigned long long)e->header_offset);
    uint16_t flags = get_u16(h + 6), method = get_u16(h + 8);
    uint64_t csize = get_u32(h + 18), usize = get_u32(h + 22);
    uint16_t ln = get_u16(h + 26), lx = get_u16(h + 28);
    uint64_t data = e->header_offset + LOCAL_SIZE + ln + lx;
    if (data > cd_offset)
        return ts_fail(TS_ERR_FORMAT, "zip: '%s': entry '%s': local header runs past the central directory", path, name);
    if (ln != nlen || memcmp(h + LOCAL_SIZE, name, nlen) != 0)
        return ts_fail(TS_ERR_FORMAT, "zip: '%s': entry '%s': the local header names it differently", path, name);
    if (method != e->method)
        return ts_fail(TS_ERR_FORMAT, "zip: '%s': entry '%s': the local header says method %u, the directory %u",
                       path, name, method, e->method);
    if (!(flags & 8)) {   /* sizes are in the local header (or its ZIP64 field) */
        if (csize == 0xFFFFFFFFu || usize == 0xFFFFFFFFu) {
            ts_zip_entry tmp = *e;
            if (read_zip64_extra(z, h + LOCAL_SIZE + ln, lx, &tmp, usize == 0xFFFFFFFFu, csize == 0xFFFFFFFFu, false, name))
                return ts_last_status();
            if (usize == 0xFFFFFFFFu) usize = tmp.usize;
            if (csize == 0xFFFFFFFFu) csize = tmp.csize;
        }
        if (csize != e->csize || usize != e->usize)
            return ts_fail(TS_ERR_FORMAT, "zip: '%s': entry '%s': the local header says %llu/%llu bytes, the directory %llu/%llu",
                           path, name, (unsigned long long)csize, (unsigned long long)usize,
                           (unsigned long long)e->csize, (unsigned long long)e->usize);
    }
    if (e->csize > cd_offset - data)
        return ts_fail(TS_ERR_FORMAT, "zip: '%s': entry '%s': its %llu bytes of data at offset %llu run past the central directory (at %llu)",
                       path, name, (unsigned long long)e->csize, (unsigned long long)data, (unsigned long long)cd_offset);
    e->data_offset = data;
    return TS_OK;
}

/* Reads central record i at *pos into z->entries[i]; names go to *names. */
static ts_status read_central(ts_zip *z, const end_info *end, uint64_t *pos, size_t i, char **names)
{
    const char *path = z->path;
    uint64_t cd_end = end->cd_offset + end->cd_size;
    if (cd_end - *pos < CENTRAL_SIZE)
        return ts_fail(TS_ERR_FORMAT, "zip: '%s': the central directory ends inside record %zu", path, i);
    const unsigned char *c = z->base + *pos;
    if (get_u32(c) != SIG_CENTRAL)
        return ts_fail(TS_ERR_FORMAT, "zip: '%s': central directory record %zu (offset %llu) has a bad signature",
                       path, i, (unsigned long long)*pos);
    uint16_t nlen = get_u16(c + 28), xlen = get_u16(c + 30), clen = get_u16(c + 32);
    if (cd_end - *pos - CENTRAL_SIZE < (uint64_t)nlen + xlen + clen)
        return ts_fail(TS_ERR_FORMAT, "zip: '%s': central directory record %zu runs past the directory", path, i);
    const char *name = (const char *)c + CENTRAL_SIZE;
    if (ts_zip_check_name(name, nlen, path)) return ts_last_status();
    ts_zip_entry *e = &z->entries[i];
    memcpy(*names, name, nlen);
    (*names)[nlen] = '\0';
    e->name = *names;
    *names += nlen + 1;
    e->flags = get_u16(c + 8);
    e->method = get_u16(c + 10);
    e->crc32 = get_u32(c + 16);
    e->csize = get_u32(c + 20);
    e->usize = get_u32(c + 24);
    e->header_offset = get_u32(c + 42);
    uint16_t disk = get_u16(c + 34);
    bool nu = e->usize == 0xFFFFFFFFu, nc = e->csize == 0xFFFFFFFFu, no = e->header_offset == 0xFFFFFFFFu;
    if ((nu || nc || no) && read_zip64_extra(z, c + CENTRAL_SIZE + nlen, xlen, e, nu, nc, no, e->name))
        return ts_last_status();
    if (disk != 0 && disk != 0xFFFF)
        return ts_fail(TS_ERR_FORMAT, "zip: '%s': entry '%s' is on disk %u; multi-disk archives are not supported", path, e->name, disk);
    if (e->flags & 1)
        return ts_fail(TS_ERR_UNSUPPORTED, "zip: '%s': entry '%s' is encrypted", path, e->name);
    if (e->method != 0 && e->method != 8)
        return ts_fail(TS_ERR_UNSUPPORTED, "zip: '%s': entry '%s' uses compression method %u (only 0, stored, and 8, deflate, are supported)",
                       path, e->name, e->method);
    if (e->method == 0 && e->csize != e->usize)
        return ts_fail(TS_ERR_FORMAT, "zip: '%s': stored entry '%s' has compressed size %llu but size %llu",
                       path, e->name, (unsigned long long)e->csize, (unsigned long long)e->usize);
    if (e->method == 8 && e->usize / DEFLATE_MAX_RATIO > e->csize)
        return ts_fail(TS_ERR_FORMAT, "zip: '%s': entry '%s' claims %llu bytes from %llu compressed bytes, more than deflate can produce",
                       path, e->name, (unsigned long long)e->usize, (unsigned long long)e->csize);
    *pos += CENTRAL_SIZE + (uint64_t)nlen + xlen + clen;
    return check_local(z, e, end->cd_offset);
}

static _Thread_local const ts_zip *sort_zip;   /* qsort has no context argument */
static int by_name(const void *a, const void *b)
{
    return strcmp(sort_zip->entries[*(const size_t *)a].name, sort_zip->entries[*(const size_t *)b].name);
}
static int by_offset(const void *a, const void *b)
{
    uint64_t x = sort_zip->entries[*(const size_t *)a].header_offset, y = sort_zip->entries[*(const size_t *)b].header_offset;
    return x < y ? -1 : x > y;
}

/* Unique names and non-overlapping [header, end of data) ranges. */
static ts_status check_layout(ts_zip *z)
{
    size_t *order = malloc((z->n ? z->n : 1) * sizeof *order);
    if (!order) return ts_fail(TS_ERR_MEMORY, "zip: out of memory (%zu entries)", z->n);
    for (size_t i = 0; i < z->n; i++) order[i] = z->sorted[i] = i;
    sort_zip = z;
    qsort(z->sorted, z->n, sizeof *z->sorted, by_name);
    qsort(order, z->n, sizeof *order, by_offset);
    sort_zip = NULL;
    ts_status st = TS_OK;
    for (size_t i = 1; i < z->n && st == TS_OK; i++) {
        const ts_zip_entry *a = &z->entries[z->sorted[i - 1]], *b = &z->entries[z->sorted[i]];
        if (strcmp(a->name, b->name) == 0)
            st = ts_fail(TS_ERR_FORMAT, "zip: '%s': two entries are named '%s'", z->path, a->name);
    }
    for (size_t i = 1; i < z->n && st == TS_OK; i++) {
        const ts_zip_entry *a = &z->entries[order[i - 1]], *b = &z->entries[order[i]];
        if (a->data_offset + a->csize > b->header_offset)
            st = ts_fail(TS_ERR_FORMAT, "zip: '%s': entries '%s' and '%s' overlap (bytes [%llu, %llu) and [%llu, ...))",
                         z->path, a->name, b->name, (unsigned long long)a->header_offset,
                         (unsigned long long)(a->data_offset + a->csize), (unsigned long long)b->header_offset);
    }
    free(order);
    return st;
}

static ts_status read_directory(ts_zip *z)
{
    end_info end = { 0 };
    if (find_end(z, &end)) return ts_last_status();
    z->n = (size_t)end.count;
    z->entries = calloc(z->n ? z->n : 1, sizeof *z->entries);
    z->sorted = malloc((z->n ? z->n : 1) * sizeof *z->sorted);
    z->names = malloc((size_t)end.cd_size + 1);   /* names are inside the directory: this bounds them */
    if (!z->entries || !z->sorted || !z->names) return ts_fail(TS_ERR_MEMORY, "zip: out of memory (%zu entries)", z->n);
    uint64_t pos = end.cd_offset;
    char *names = z->names;
    for (size_t i = 0; i < z->n; i++)
        if (read_central(z, &end, &pos, i, &names)) return ts_last_status();
    return check_layout(z);
}

ts_zip *ts_zip_open_fd(int fd, const char *name)
{
    struct stat st;
    if (fstat(fd, &st) != 0) return ts_fail_null(TS_ERR_IO, "zip: cannot stat '%s': %s", name, strerror(errno));
    if (!S_ISREG(st.st_mode)) return ts_fail_null(TS_ERR_IO, "zip: '%s' is not a regular file", name);
    ts_zip *z = calloc(1, sizeof *z);
    if (!z || !(z->path = strdup(name))) { free(z); return ts_fail_null(TS_ERR_MEMORY, "zip: out of memory"); }
    z->size = (uint64_t)st.st_size;
    if (z->size > 0) {                   /* an empty file is not mapped (and fails as no zip below) */
        if (!(z->map = io_map_fd(fd, z->size, "zip", name))) goto fail;
        z->base = z->map->data;
    }
    if (read_directory(z)) goto fail;
    return z;
fail:
    ts_zip_close(z);
    return NULL;
}

ts_zip *ts_zip_open(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ts_fail_null(TS_ERR_IO, "zip: cannot open '%s': %s", path, strerror(errno));
    ts_zip *z = ts_zip_open_fd(fd, path);
    close(fd);
    return z;
}

void ts_zip_close(ts_zip *z)
{
    if (!z) return;
    ts_storage_release(z->map);
    free(z->entries);
    free(z->sorted);
    free(z->names);
    free(z->path);
    free(z);
}

const char *ts_zip_path(const ts_zip *z) { return z->path; }
size_t ts_zip_count(const ts_zip *z) { return z->n; }
const ts_zip_entry *ts_zip_entry_at(const ts_zip *z, size_t i) { return i < z->n ? &z->entries[i] : NULL; }

const unsigned char *ts_zip_bytes(const ts_zip *z, uint64_t *size)
{
    *size = z->size;
    return z->base;
}

const ts_zip_entry *ts_zip_find(const ts_zip *z, const char *name)
{
    size_t lo = 0, hi = z->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(z->entries[z->sorted[mid]].name, name);
        if (c == 0) return &z->entries[z->sorted[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* ---- reading entries ----------------------------------------------------------------- */

const void *ts_zip_data(const ts_zip *z, const ts_zip_entry *e)
{
    if (e->method != 0)
        return ts_fail_null(TS_ERR_UNSUPPORTED, "zip: '%s': entry '%s' is compressed; it cannot be used in place", z->path, e->name);
    return z->base + e->data_offset;
}

static ts_status inflate_entry(const ts_zip *z, const ts_zip_entry *e, unsigned char *dst)
{
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK) return ts_fail(TS_ERR_MEMORY, "zip: cannot start zlib");
    const unsigned char *src = z->base + e->data_offset;
    uint64_t in_left = e->csize, out_left = e->usize;
    unsigned char spare;   /* a byte past the end: filling it means the data is longer than recorded */
    int rc = Z_OK;
    for (;;) {
        if (s.avail_in == 0 && in_left) {
            uInt k = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
            s.next_in = (Bytef *)(uintptr_t)src;
            s.avail_in = k;
            src += k;
            in_left -= k;
        }
        if (s.avail_out == 0) {
            if (out_left) {
                uInt k = out_left > (1u << 30) ? (1u << 30) : (uInt)out_left;
                s.next_out = dst;
                s.avail_out = k;
                dst += k;
                out_left -= k;
            } else if (s.total_out == e->usize) {
                s.next_out = &spare;
                s.avail_out = 1;
            } else {
                break;
            }
        }
        rc = inflate(&s, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) break;
        if (rc == Z_BUF_ERROR && (s.avail_in != 0 || in_left == 0)) break;   /* out of input */
        if (rc != Z_OK && rc != Z_BUF_ERROR) break;
    }
    uint64_t produced = s.total_out;
    inflateEnd(&s);
    if (produced > e->usize)
        return ts_fail(TS_ERR_FORMAT, "zip: '%s': entry '%s' inflates to more than its recorded %llu bytes",
                       z->path, e->name, (unsigned long long)e->usize);
    if (rc != Z_STREAM_END || produced != e->usize)
        return ts_fail(TS_ERR_FORMAT, "zip: '%s': entry '%s': the deflate data is corrupt or shorter than its recorded %llu bytes",
                       z->path, e->name, (unsigned long long)e->usize);
    return TS_OK;
}

static ts_status verify_crc(const ts_zip *z, const ts_zip_entry *e, const void *data)
{
    if (e->crc32 == 0) return TS_OK;        /* "no checksum" */
    uint32_t crc = ts_zip_crc32(data, (size_t)e->usize);
    if (crc != e->crc32)
        return ts_fail(TS_ERR_FORMAT, "zip: '%s' is corrupt: entry '%s' fails its checksum (crc32 %08x, recorded %08x)",
                       z->path, e->name, (unsigned)crc, (unsigned)e->crc32);
    return TS_OK;
}

ts_status ts_zip_read(const ts_zip *z, const ts_zip_entry *e, void *dst, size_t cap, bool verify)
{
    if (e->usize > cap)
        return ts_fail(TS_ERR_ARG, "zip: '%s': entry '%s' has %llu bytes, the buffer %zu", z->path, e->name,
                       (unsigned long long)e->usize, cap);
    if (e->method == 0) {
        if (e->usize) memcpy(dst, z->base + e->data_offset, (size_t)e->usize);
    } else if (inflate_entry(z, e, dst)) {
        return ts_last_status();
    }
    return verify ? verify_crc(z, e, dst) : TS_OK;
}

void *ts_zip_read_alloc(const ts_zip *z, const ts_zip_entry *e, bool verify, size_t *n)
{
    if (e->usize >= SIZE_MAX) return ts_fail_null(TS_ERR_MEMORY, "zip: '%s': entry '%s' is too large", z->path, e->name);
    unsigned char *buf = malloc((size_t)e->usize + 1);
    if (!buf) return ts_fail_null(TS_ERR_MEMORY, "zip: '%s': out of memory reading entry '%s' (%llu bytes)", z->path,
                                  e->name, (unsigned long long)e->usize);
    if (ts_zip_read(z, e, buf, (size_t)e->usize, verify)) { free(buf); return NULL; }
    buf[e->usize] = '\0';
    *n = (size_t)e->usize;
    return buf;
}

static void release_view(ts_storage *s) { ts_storage_release(s->owner); }

ts_storage *ts_zip_storage(ts_zip *z, const ts_zip_entry *e, size_t align, unsigned flags)
{
    bool verify = flags & TS_ZIP_VERIFY;
    if (align == 0) align = 1;
    if (e->usize > TS_MAX_ALLOC_BYTES)
        return ts_fail_null(TS_ERR_MEMORY, "zip: '%s': entry '%s' is too large (%llu bytes)", z->path, e->name,
                            (unsigned long long)e->usize);
    const unsigned char *p = z->base ? z->base + e->data_offset : NULL;
    if (e->method == 0 && !(flags & TS_ZIP_COPY) && z->map && (uintptr_t)p % align == 0) {
        if (verify && verify_crc(z, e, p)) return NULL;
        ts_storage *s = ts_storage_wrap((void *)(uintptr_t)p, (size_t)e->usize, release_view, z->map);
        if (!s) return NULL;
        ts_storage_retain(z->map);
        s->kind = TS_STORAGE_MMAP;
        s->readonly = true;
        return s;
    }
    ts_storage *s = ts_storage_new((size_t)e->usize);
    if (!s) return NULL;
    if (ts_zip_read(z, e, s->data, s->nbytes, verify)) { ts_storage_release(s); return NULL; }
    return s;
}
