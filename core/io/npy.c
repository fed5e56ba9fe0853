/* npy.c — the NumPy .npy reader (torsh/io.h: ts_npy_read), format
 * versions 1.0, 2.0 and 3.0.
 *
 * Layout: "\x93NUMPY", major, minor, the header length (u16 little-endian
 * for 1.x, u32 for 2.x/3.x), the header — a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } — then the
 * raw data. The header is parsed by a small strict tokenizer (strings,
 * True/False, tuples of integers; nothing is evaluated). The data size must
 * equal the shape's; it is checked against the file size before the tensor
 * is allocated. Fortran-ordered data is read with the reversed shape and
 * transposed into a C-ordered copy. */
#include "io_internal.h"

#include <errno.h>
#include <stdlib.h>

#define NPY_MAX_HEADER ((uint32_t)1 << 20)
#define NPY_MAX_DIMS TS_MAX_DIMS

typedef struct npy_header {
    char descr[16];
    bool fortran;
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    bool have_descr, have_fortran, have_shape;
} npy_header;

typedef struct npy_parser {
    const char *begin, *p, *end, *path;
} npy_parser;

static ts_status bad_header(const npy_parser *ps, const char *what)
{
    return ts_fail(TS_ERR_FORMAT, "npy_read: %s: malformed header: %s at byte %lld of the header", ps->path, what,
                   (long long)(ps->p - ps->begin));
}

static void skip_space(npy_parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static bool accept(npy_parser *ps, char c)
{
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == c) { ps->p++; return true; }
    return false;
}

/* A quoted string ('...' or "...") without escapes into out (cap bytes). */
static ts_status parse_string(npy_parser *ps, char *out, size_t cap)
{
    skip_space(ps);
    if (ps->p >= ps->end || (*ps->p != '\'' && *ps->p != '"')) return bad_header(ps, "expected a quoted string");
    char q = *ps->p++;
    size_t n = 0;
    while (ps->p < ps->end && *ps->p != q) {
        if (*ps->p == '\\') return bad_header(ps, "escapes in strings are not supported");
        if (n + 1 >= cap) return bad_header(ps, "string too long");
        out[n++] = *ps->p++;
    }
    if (ps->p >= ps->end) return bad_header(ps, "unterminated string");
    ps->p++;
    out[n] = '\0';
    return TS_OK;
}

static ts_status parse_bool(npy_parser *ps, bool *out)
{
    skip_space(ps);
    size_t left = (size_t)(ps->end - ps->p);
    if (left >= 4 && memcmp(ps->p, "True", 4) == 0) { *out = true; ps->p += 4; return TS_OK; }
    if (left >= 5 && memcmp(ps->p, "False", 5) == 0) { *out = false; ps->p += 5; return TS_OK; }
    return bad_header(ps, "fortran_order must be True or False");
}

static ts_status parse_int(npy_parser *ps, int64_t *out)
{
    skip_space(ps);
    int64_t v = 0;
    const char *start = ps->p;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
        if (v > (INT64_MAX - 9) / 10) return bad_header(ps, "dimension too large");
        v = v * 10 + (*ps->p++ - '0');
    }
    if (ps->p == start) return bad_header(ps, "expected a non-negative integer in the shape");
    if (ps->p < ps->end && *ps->p == 'L') ps->p++;        /* Python 2 longs */
    *out = v;
    return TS_OK;
}

/* "(3, 4)", "(3,)", "()" */
static ts_status parse_shape(npy_parser *ps, npy_header *h)
{
    if (!accept(ps, '(')) return bad_header(ps, "shape must be a tuple");
    h->ndim = 0;
    while (!accept(ps, ')')) {
        if (h->ndim == NPY_MAX_DIMS)
            return ts_fail(TS_ERR_FORMAT, "npy_read: %s: more than %d dims", ps->path, NPY_MAX_DIMS);
        if (parse_int(ps, &h->shape[h->ndim])) return ts_last_status();
        h->ndim++;
        if (!accept(ps, ',')) {
            if (!accept(ps, ')')) return bad_header(ps, "expected ',' or ')' in the shape");
            break;
        }
    }
    return TS_OK;
}

static ts_status parse_entry(npy_parser *ps, npy_header *h)
{
    char key[32];
    if (parse_string(ps, key, sizeof key)) return ts_last_status();
    if (!accept(ps, ':')) return bad_header(ps, "expected ':' after a key");
    if (strcmp(key, "descr") == 0) {
        h->have_descr = true;
        return parse_string(ps, h->descr, sizeof h->descr);
    }
    if (strcmp(key, "fortran_order") == 0) {
        h->have_fortran = true;
        return parse_bool(ps, &h->fortran);
    }
    if (strcmp(key, "shape") == 0) {
        h->have_shape = true;
        return parse_shape(ps, h);
    }
    return ts_fail(TS_ERR_FORMAT, "npy_read: %s: unexpected header key '%s' (descr, fortran_order and shape are read)",
                   ps->path, key);
}

static ts_status parse_header(const char *text, size_t n, const char *path, npy_header *h)
{
    npy_parser ps = { text, text, text + n, path };
    memset(h, 0, sizeof *h);
    if (!accept(&ps, '{')) return bad_header(&ps, "expected '{'");
    while (!accept(&ps, '}')) {
        if (parse_entry(&ps, h)) return ts_last_status();
        if (!accept(&ps, ',')) {
            if (!accept(&ps, '}')) return bad_header(&ps, "expected ',' or '}'");
            break;
        }
    }
    skip_space(&ps);
    if (ps.p != ps.end) return bad_header(&ps, "unexpected text after the dict");
    if (!h->have_descr || !h->have_fortran || !h->have_shape)
        return ts_fail(TS_ERR_FORMAT, "npy_read: %s: the header lacks %s", path,
                       !h->have_descr ? "'descr'" : !h->have_fortran ? "'fortran_order'" : "'shape'");
    return TS_OK;
}

/* Maps a descr to a dtype; *swap when the data is big-endian. */
static ts_status parse_descr(const char *path, const char *descr, ts_dtype *dt, bool *swap)
{
    static const struct { const char *code; ts_dtype dt; } types[] = {
        { "f4", TS_F32 }, { "f8", TS_F64 }, { "f2", TS_F16 }, { "u1", TS_U8 }, { "i1", TS_I8 },
        { "i2", TS_I16 }, { "i4", TS_I32 }, { "i8", TS_I64 }, { "b1", TS_BOOL },
    };
    char order = descr[0];
    const char *code = descr + 1;
    if (order != '<' && order != '>' && order != '|' && order != '=') { order = '='; code = descr; }
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        if (strcmp(code, types[i].code) != 0) continue;
        size_t size = ts_dtype_size(types[i].dt);
        if (size > 1 && order == '|') break;
        *dt = types[i].dt;
        *swap = size > 1 && order == '>';
        return TS_OK;
    }
    return ts_fail(TS_ERR_FORMAT, "npy_read: %s: dtype '%s' is not supported (read: <f4 <f8 <f2 |u1 |i1 <i2 <i4 <i8 |b1)",
                   path, descr);
}

static uint32_t le_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads the preamble and header text; *data_start is the offset of the data. */
static ts_status read_header(FILE *f, const char *path, int64_t size, npy_header *h, int64_t *data_start)
{
    unsigned char pre[12];
    if (size < 10 || fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0)
        return ts_fail(TS_ERR_FORMAT, "npy_read: %s: not a .npy file (no \\x93NUMPY magic)", path);
    int major = pre[6], minor = pre[7];
    uint32_t hlen;
    int64_t start;
    if (major == 1) {
        hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
        start = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12 || fread(pre + 10, 1, 2, f) != 2)
            return ts_fail(TS_ERR_FORMAT, "npy_read: %s: truncated preamble", path);
        hlen = le_u32(pre + 8);
        start = 12;
    } else {
        return ts_fail(TS_ERR_FORMAT, "npy_read: %s: format version %d.%d is not supported (1.0, 2.0 and 3.0 are read)",
                       path, major, minor);
    }
    if (hlen > NPY_MAX_HEADER)
        return ts_fail(TS_ERR_FORMAT, "npy_read: %s: header length %u is implausible (over %u bytes)", path, hlen,
                       NPY_MAX_HEADER);
    if ((int64_t)hlen > size - start)
        return ts_fail(TS_ERR_FORMAT, "npy_read: %s: truncated: the header needs %u bytes, the file has %lld after the "
                       "preamble", path, hlen, (long long)(size - start));
    char *text = malloc(hlen + 1);
    if (!text) return ts_fail(TS_ERR_MEMORY, "npy_read: %s: out of memory", path);
    ts_status st = fread(text, 1, hlen, f) == hlen ? TS_OK : ts_fail(TS_ERR_IO, "npy_read: %s: read error", path);
    if (st == TS_OK) {
        text[hlen] = '\0';
        if (memchr(text, '\0', hlen)) st = ts_fail(TS_ERR_FORMAT, "npy_read: %s: NUL byte in the header", path);
        else st = parse_header(text, hlen, path, h);
    }
    free(text);
    *data_start = start + hlen;
    return st;
}

/* bool data: any non-zero byte reads as true, as NumPy does. */
static void normalize_bools(uint8_t *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++) p[i] = p[i] != 0;
}

/* Reverses the dims of a Fortran-ordered tensor into a C-ordered copy. */
static ts_tensor *from_fortran(ts_tensor *t)
{
    int dims[NPY_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) dims[d] = t->ndim - 1 - d;
    ts_tensor *v = ts_permute(t, dims, t->ndim);
    ts_tensor *c = v ? ts_clone(v) : NULL;
    ts_tensor_release(v);
    ts_tensor_release(t);
    return c;
}

static ts_tensor *read_data(FILE *f, const char *path, const npy_header *h, int64_t avail)
{
    ts_dtype dt = TS_U8;
    bool swap = false;
    if (parse_descr(path, h->descr, &dt, &swap)) return NULL;
    int64_t numel, need;
    char s[TS_SHAPE_STR_CAP];
    ts_shape_str(h->shape, h->ndim, s, sizeof s);
    if (!io_checked_bytes(h->shape, h->ndim, ts_dtype_size(dt), &numel, &need))
        return ts_fail_null(TS_ERR_FORMAT, "npy_read: %s: shape %s of %s is larger than any tensor torsh allocates", path,
                            s, h->descr);
    if (avail != need)
        return ts_fail_null(TS_ERR_FORMAT, "npy_read: %s: %s: shape %s of %s needs %lld bytes of data, the file has %lld",
                            path, avail < need ? "truncated" : "size mismatch", s, h->descr, (long long)need,
                            (long long)avail);
    int64_t shape[NPY_MAX_DIMS];
    for (int d = 0; d < h->ndim; d++) shape[d] = h->fortran ? h->shape[h->ndim - 1 - d] : h->shape[d];
    ts_tensor *t = ts_tensor_new(shape, h->ndim, dt);
    if (!t) return NULL;
    if (need && fread(ts_tensor_data(t), 1, (size_t)need, f) != (size_t)need) {
        ts_tensor_release(t);
        return ts_fail_null(TS_ERR_IO, "npy_read: %s: read error (%s)", path, ferror(f) ? strerror(errno) : "short read");
    }
    if (swap) io_swap_bytes(ts_tensor_data(t), numel, ts_dtype_size(dt));
    if (dt == TS_BOOL) normalize_bools(ts_tensor_data(t), numel);
    return h->fortran && h->ndim > 1 ? from_fortran(t) : t;
}

ts_tensor *ts_npy_read(const char *path)
{
    if (!path) return ts_fail_null(TS_ERR_ARG, "npy_read: path is NULL");
    FILE *f = fopen(path, "rbe");
    if (!f) return ts_fail_null(TS_ERR_IO, "npy_read: cannot open %s: %s", path, strerror(errno));
    int64_t size = io_file_size(f);
    ts_tensor *t = NULL;
    npy_header h;
    int64_t start = 0;
    if (size < 0) ts_fail(TS_ERR_IO, "npy_read: %s is not a regular file", path);
    else if (read_header(f, path, size, &h, &start) == TS_OK) t = read_data(f, path, &h, size - start);
    fclose(f);
    return t;
}
