/* npy_mem.c — the .npy header parser of core/io (npy_internal.h), used by
 * both .npy readers, and the in-memory reader built on it (torsh/npz.h:
 * ts_npy_parse, ts_npy_from_storage) for arrays inside .npz archives; the
 * file reader ts_npy_read (npy.c) streams the data through stdio.
 *
 * Format 1.0, 2.0 and 3.0: "\x93NUMPY", major, minor, the header length
 * (u16 LE for 1.x, u32 LE otherwise), a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } read by a
 * small strict tokenizer (quoted strings, True/False, tuples of integers;
 * each key once; nothing is evaluated), then exactly the data the shape
 * needs. */
#include "npy_internal.h"

#include "io_internal.h"

#include <stdint.h>
#include <stdlib.h>

#define NPY_MAX_HEADER ((uint32_t)1 << 20)

typedef struct mparser {
    const char *begin, *p, *end;
    const npy_source *src;
} mparser;

static ts_status bad_header(const mparser *ps, const char *what)
{
    return ts_fail(TS_ERR_FORMAT, "%s: %s: malformed header: %s at byte %lld of the header", ps->src->op,
                   ps->src->name, what, (long long)(ps->p - ps->begin));
}

static void skip_space(mparser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static bool accept(mparser *ps, char c)
{
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == c) { ps->p++; return true; }
    return false;
}

/* '...' or "..." without escapes, into out (cap bytes). */
static ts_status parse_string(mparser *ps, char *out, size_t cap)
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

static ts_status parse_bool(mparser *ps, bool *out)
{
    skip_space(ps);
    size_t left = (size_t)(ps->end - ps->p);
    if (left >= 4 && memcmp(ps->p, "True", 4) == 0) { *out = true; ps->p += 4; return TS_OK; }
    if (left >= 5 && memcmp(ps->p, "False", 5) == 0) { *out = false; ps->p += 5; return TS_OK; }
    return bad_header(ps, "fortran_order must be True or False");
}

static ts_status parse_dim(mparser *ps, int64_t *out)
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
static ts_status parse_shape(mparser *ps, ts_npy_info *h)
{
    if (!accept(ps, '(')) return bad_header(ps, "shape must be a tuple");
    h->ndim = 0;
    while (!accept(ps, ')')) {
        if (h->ndim == TS_MAX_DIMS)
            return ts_fail(TS_ERR_FORMAT, "%s: %s: more than %d dims", ps->src->op, ps->src->name, TS_MAX_DIMS);
        if (parse_dim(ps, &h->shape[h->ndim])) return ts_last_status();
        h->ndim++;
        if (!accept(ps, ',')) {
            if (!accept(ps, ')')) return bad_header(ps, "expected ',' or ')' in the shape");
            break;
        }
    }
    return TS_OK;
}

/* Maps a descr to a dtype; swap when the data is big-endian. */
static ts_status parse_descr(const npy_source *src, ts_npy_info *h)
{
    static const struct { const char *code; ts_dtype dt; } types[] = {
        { "f4", TS_F32 }, { "f8", TS_F64 }, { "f2", TS_F16 }, { "u1", TS_U8 }, { "i1", TS_I8 },
        { "i2", TS_I16 }, { "i4", TS_I32 }, { "i8", TS_I64 }, { "b1", TS_BOOL },
    };
    const char *descr = h->descr;
    char order = descr[0];
    const char *code = descr + 1;
    if (order != '<' && order != '>' && order != '|' && order != '=') { order = '='; code = descr; }
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        if (strcmp(code, types[i].code) != 0) continue;
        size_t size = ts_dtype_size(types[i].dt);
        if (size > 1 && order == '|') break;
        h->dtype = types[i].dt;
        h->swap = size > 1 && order == '>';
        return TS_OK;
    }
    return ts_fail(TS_ERR_FORMAT, "%s: %s: dtype '%s' is not supported (read: <f4 <f8 <f2 |u1 |i1 <i2 <i4 <i8 |b1)",
                   src->op, src->name, descr);
}

static ts_status parse_dict(const char *text, size_t n, const npy_source *src, ts_npy_info *h)
{
    mparser ps = { text, text, text + n, src };
    bool have_descr = false, have_fortran = false, have_shape = false;
    if (!accept(&ps, '{')) return bad_header(&ps, "expected '{'");
    while (!accept(&ps, '}')) {
        char key[32];
        if (parse_string(&ps, key, sizeof key)) return ts_last_status();
        if (!accept(&ps, ':')) return bad_header(&ps, "expected ':' after a key");
        ts_status st;
        if (strcmp(key, "descr") == 0 && !have_descr) {
            have_descr = true;
            st = parse_string(&ps, h->descr, sizeof h->descr);
        } else if (strcmp(key, "fortran_order") == 0 && !have_fortran) {
            have_fortran = true;
            st = parse_bool(&ps, &h->fortran);
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            have_shape = true;
            st = parse_shape(&ps, h);
        } else {
            return ts_fail(TS_ERR_FORMAT, "%s: %s: unexpected or repeated header key '%s' (descr, fortran_order and "
                           "shape are read, once each)", src->op, src->name, key);
        }
        if (st) return st;
        if (!accept(&ps, ',')) {
            if (!accept(&ps, '}')) return bad_header(&ps, "expected ',' or '}'");
            break;
        }
    }
    skip_space(&ps);
    if (ps.p != ps.end) return bad_header(&ps, "unexpected text after the dict");
    if (!have_descr || !have_fortran || !have_shape)
        return ts_fail(TS_ERR_FORMAT, "%s: %s: the header lacks %s", src->op, src->name,
                       !have_descr ? "'descr'" : !have_fortran ? "'fortran_order'" : "'shape'");
    return parse_descr(src, h);
}

/* The preamble: where the header starts and how long it is. */
static ts_status parse_preamble(const unsigned char *b, size_t n, uint64_t total, const npy_source *src,
                                uint64_t *start, uint64_t *hlen)
{
    if (n < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return ts_fail(TS_ERR_FORMAT, "%s: %s: not a .npy %s (no \\x93NUMPY magic; %llu bytes)", src->op, src->name,
                       src->noun, (unsigned long long)total);
    int major = b[6], minor = b[7];
    if (major == 1) {
        *hlen = (uint64_t)b[8] | (uint64_t)b[9] << 8;
        *start = 10;
    } else if (major == 2 || major == 3) {
        if (n < 12)
            return ts_fail(TS_ERR_FORMAT, "%s: %s: truncated preamble (%llu bytes)", src->op, src->name,
                           (unsigned long long)total);
        *hlen = (uint64_t)b[8] | (uint64_t)b[9] << 8 | (uint64_t)b[10] << 16 | (uint64_t)b[11] << 24;
        *start = 12;
    } else {
        return ts_fail(TS_ERR_FORMAT, "%s: %s: format version %d.%d is not supported (1.0, 2.0 and 3.0 are read)",
                       src->op, src->name, major, minor);
    }
    if (*hlen > NPY_MAX_HEADER)
        return ts_fail(TS_ERR_FORMAT, "%s: %s: header length %llu is implausible (over %u bytes)", src->op, src->name,
                       (unsigned long long)*hlen, NPY_MAX_HEADER);
    if (*hlen > total - *start)
        return ts_fail(TS_ERR_FORMAT, "%s: %s: truncated: the header needs %llu bytes, %s %llu after the "
                       "preamble", src->op, src->name, (unsigned long long)*hlen, src->has,
                       (unsigned long long)(total - *start));
    return TS_OK;
}

ts_status npy_head_len(const unsigned char *b, size_t n, uint64_t total, const npy_source *src, uint64_t *len)
{
    uint64_t start = 0, hlen = 0;
    if (parse_preamble(b, n, total, src, &start, &hlen)) return ts_last_status();
    *len = start + hlen;
    return TS_OK;
}

ts_status npy_parse_head(const unsigned char *b, size_t n, uint64_t total, const npy_source *src, ts_npy_info *h)
{
    memset(h, 0, sizeof *h);
    uint64_t start = 0, hlen = 0;
    if (parse_preamble(b, n, total, src, &start, &hlen)) return ts_last_status();
    if (hlen > n - start)       /* a caller's mistake: the header was not handed over */
        return ts_fail(TS_ERR_ARG, "%s: %s: %llu header bytes were given, %llu are needed", src->op, src->name,
                       (unsigned long long)(n - start), (unsigned long long)hlen);
    const char *text = (const char *)b + start;
    if (memchr(text, '\0', (size_t)hlen))
        return ts_fail(TS_ERR_FORMAT, "%s: %s: NUL byte in the header", src->op, src->name);
    if (parse_dict(text, (size_t)hlen, src, h)) return ts_last_status();
    h->data_offset = start + hlen;
    int64_t numel, need;
    char s[TS_SHAPE_STR_CAP];
    ts_shape_str(h->shape, h->ndim, s, sizeof s);
    if (!io_checked_bytes(h->shape, h->ndim, ts_dtype_size(h->dtype), &numel, &need))
        return ts_fail(TS_ERR_FORMAT, "%s: %s: shape %s of %s is larger than any tensor torsh allocates", src->op,
                       src->name, s, h->descr);
    uint64_t avail = total - h->data_offset;
    if (avail != (uint64_t)need)
        return ts_fail(TS_ERR_FORMAT, "%s: %s: %s: shape %s of %s needs %lld bytes of data, %s %llu", src->op,
                       src->name, avail < (uint64_t)need ? "truncated" : "size mismatch", s, h->descr,
                       (long long)need, src->has, (unsigned long long)avail);
    h->nbytes = (uint64_t)need;
    return TS_OK;
}

/* The shape of the data as stored: Fortran order keeps the dims reversed. */
static void stored_shape(const ts_npy_info *h, int64_t *shape)
{
    for (int d = 0; d < h->ndim; d++) shape[d] = h->fortran ? h->shape[h->ndim - 1 - d] : h->shape[d];
}

ts_tensor *npy_new_tensor(const ts_npy_info *h)
{
    int64_t shape[TS_MAX_DIMS];
    stored_shape(h, shape);
    return ts_tensor_new(shape, h->ndim, h->dtype);
}

ts_tensor *npy_finish(ts_tensor *t, const ts_npy_info *h, bool raw)
{
    if (!t) return NULL;
    if (raw && h->nbytes) {
        uint8_t *p = ts_tensor_data(t);
        if (h->swap) io_swap_bytes(p, ts_tensor_numel(t), ts_dtype_size(h->dtype));
        if (h->dtype == TS_BOOL)
            for (uint64_t i = 0; i < h->nbytes; i++) p[i] = p[i] != 0;      /* as NumPy reads them */
    }
    if (!h->fortran || h->ndim < 2) return t;
    int dims[TS_MAX_DIMS];                  /* reverse the dims into a C-ordered copy */
    for (int d = 0; d < t->ndim; d++) dims[d] = t->ndim - 1 - d;
    ts_tensor *v = ts_permute(t, dims, t->ndim);
    ts_tensor *c = v ? ts_clone(v) : NULL;
    ts_tensor_release(v);
    ts_tensor_release(t);
    return c;
}

/* ---- the in-memory reader (torsh/npz.h) ----------------------------------------------- */

ts_status ts_npy_parse(const void *data, size_t n, const char *name, ts_npy_info *h)
{
    npy_source src = { "npy", name ? name : "?", "array", "there are" };
    return npy_parse_head(data, n, n, &src, h);
}

ts_tensor *ts_npy_from_storage(ts_storage *s, const char *name)
{
    if (!s || s->device.type != TS_CPU) return ts_fail_null(TS_ERR_ARG, "npy: %s: not a CPU storage", name ? name : "?");
    ts_npy_info h;
    if (ts_npy_parse(s->data, s->nbytes, name, &h)) return NULL;
    size_t es = ts_dtype_size(h.dtype);
    const uint8_t *src = (const uint8_t *)s->data + h.data_offset;
    bool copy = h.swap || h.data_offset % es != 0 || (uintptr_t)src % es != 0;
    if (h.dtype == TS_BOOL)
        for (uint64_t i = 0; i < h.nbytes && !copy; i++) copy = src[i] > 1;
    if (!copy) {
        int64_t shape[TS_MAX_DIMS];
        stored_shape(&h, shape);
        return npy_finish(ts_tensor_from_storage(s, h.dtype, (int64_t)(h.data_offset / es), shape, NULL, h.ndim), &h,
                          false);
    }
    ts_tensor *t = npy_new_tensor(&h);
    if (t && h.nbytes) memcpy(ts_tensor_data(t), src, (size_t)h.nbytes);
    return npy_finish(t, &h, true);
}
