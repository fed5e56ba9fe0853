/* safetensors.c — the .safetensors reader (torsh/safetensors.h; layout in
 * FORMATS.md §4): the header JSON is read by a small strict parser of just
 * the shape safetensors uses (objects, strings with escapes, non-negative
 * integers, arrays of integers), the layout is validated as the reference
 * reader (safetensors/src/tensor.rs) does, and tensors are views of one
 * read-only mapping of the file or heap copies. The writer is
 * safetensors_write.c; the dtype table is shared through
 * safetensors_internal.h. */
#include "torsh/safetensors.h"

#include "io_internal.h"
#include "safetensors_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OP "safetensors"

const char *ts_safetensors_dtype_name(ts_dtype dt)
{
    const st_dtype *d = (int)dt >= 0 && dt < TS_DTYPE_COUNT ? st_dtype_of(dt) : NULL;
    return d ? d->name : NULL;
}

/* ---- the handle ---------------------------------------------------------------- */

struct ts_safetensors {
    char *path;
    ts_storage *map;                /* the whole file, read-only (shared by tensors) */
    const unsigned char *base;
    uint64_t size, header_len, data_start;
    ts_safetensors_entry *entries;  /* data order after open */
    size_t n, cap;
    size_t *by_name;                /* entry indices sorted by name */
    char **meta;                    /* key, value, key, value, ... */
    size_t n_meta, meta_cap;
};

size_t ts_safetensors_count(const ts_safetensors *f) { return f->n; }
const char *ts_safetensors_name(const ts_safetensors *f, size_t i) { return i < f->n ? f->entries[i].name : NULL; }
const ts_safetensors_entry *ts_safetensors_entry_at(const ts_safetensors *f, size_t i)
{
    return i < f->n ? &f->entries[i] : NULL;
}
size_t ts_safetensors_meta_count(const ts_safetensors *f) { return f->n_meta; }
const char *ts_safetensors_meta_key(const ts_safetensors *f, size_t i) { return i < f->n_meta ? f->meta[2 * i] : NULL; }
const char *ts_safetensors_meta_value(const ts_safetensors *f, size_t i)
{
    return i < f->n_meta ? f->meta[2 * i + 1] : NULL;
}
uint64_t ts_safetensors_header_len(const ts_safetensors *f) { return f->header_len; }
const char *ts_safetensors_path(const ts_safetensors *f) { return f->path; }

const char *ts_safetensors_meta_get(const ts_safetensors *f, const char *key)
{
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
    return NULL;
}

void ts_safetensors_close(ts_safetensors *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) free((char *)f->entries[i].name);
    for (size_t i = 0; i < 2 * f->n_meta; i++) free(f->meta[i]);
    free(f->entries);
    free(f->by_name);
    free(f->meta);
    ts_storage_release(f->map);
    free(f->path);
    free(f);
}

/* ---- the header parser ------------------------------------------------------------ */

typedef struct jparser {
    const unsigned char *begin, *p, *end;
    ts_safetensors *f;
} jparser;

static ts_status bad_json(const jparser *ps, const char *what)
{
    return ts_fail(TS_ERR_FORMAT, OP ": '%s': malformed header: %s at byte %llu of the header", ps->f->path, what,
                   (unsigned long long)(ps->p - ps->begin));
}

static void skip_ws(jparser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static bool accept(jparser *ps, char c)
{
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == (unsigned char)c) { ps->p++; return true; }
    return false;
}

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool read_hex4(jparser *ps, uint32_t *out)
{
    if (ps->end - ps->p < 4) return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(ps->p[i]);
        if (d < 0) return false;
        v = v << 4 | (uint32_t)d;
    }
    ps->p += 4;
    *out = v;
    return true;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A JSON string into a new NUL-terminated buffer (*out, caller frees). The
 * header was checked to be UTF-8 already; escapes are decoded (a \u0000,
 * which cannot live in a C string, and lone surrogates are refused). */
static ts_status parse_string(jparser *ps, char **out)
{
    *out = NULL;
    if (!accept(ps, '"')) return bad_json(ps, "expected a string");
    const unsigned char *q = ps->p;
    while (q < ps->end && *q != '"') q += *q == '\\' && q + 1 < ps->end ? 2 : 1;
    if (q >= ps->end) return bad_json(ps, "unterminated string");
    char *s = malloc((size_t)(q - ps->p) + 1);
    if (!s) return ts_fail(TS_ERR_MEMORY, OP ": '%s': out of memory (header string)", ps->f->path);
    size_t n = 0;
    while (*ps->p != '"') {
        unsigned char c = *ps->p;
        if (c < 0x20) { free(s); return bad_json(ps, "control character in a string"); }
        if (c != '\\') { s[n++] = (char)c; ps->p++; continue; }
        ps->p++;
        c = *ps->p++;
        switch (c) {
        case '"': s[n++] = '"'; break;
        case '\\': s[n++] = '\\'; break;
        case '/': s[n++] = '/'; break;
        case 'b': s[n++] = '\b'; break;
        case 'f': s[n++] = '\f'; break;
        case 'n': s[n++] = '\n'; break;
        case 'r': s[n++] = '\r'; break;
        case 't': s[n++] = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (!read_hex4(ps, &cp)) { free(s); return bad_json(ps, "bad \\u escape"); }
            if (cp >= 0xDC00 && cp <= 0xDFFF) { free(s); return bad_json(ps, "lone low surrogate in a \\u escape"); }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u') {
                    free(s);
                    return bad_json(ps, "lone high surrogate in a \\u escape");
                }
                ps->p += 2;
                if (!read_hex4(ps, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                    free(s);
                    return bad_json(ps, "bad low surrogate in a \\u escape");
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp == 0) { free(s); return bad_json(ps, "\\u0000 (a NUL character) in a string"); }
            n += put_utf8(s + n, cp);     /* at most as long as the escape it replaces */
            break;
        }
        default:
            free(s);
            ps->p--;
            return bad_json(ps, "unknown escape in a string");
        }
    }
    ps->p++;
    s[n] = '\0';
    *out = s;
    return TS_OK;
}

/* A non-negative JSON integer (no sign, fraction, exponent or leading zero)
 * that fits in 64 bits. */
static ts_status parse_uint(jparser *ps, uint64_t *out)
{
    skip_ws(ps);
    const unsigned char *start = ps->p;
    uint64_t v = 0;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
        unsigned d = (unsigned)(*ps->p - '0');
        if (v > (UINT64_MAX - d) / 10) return bad_json(ps, "integer too large");
        v = v * 10 + d;
        ps->p++;
    }
    if (ps->p == start) return bad_json(ps, "expected a non-negative integer");
    if (ps->p - start > 1 && *start == '0') { ps->p = start; return bad_json(ps, "integer with a leading zero"); }
    if (ps->p < ps->end && (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E'))
        return bad_json(ps, "expected an integer, found a fraction or exponent");
    *out = v;
    return TS_OK;
}

static ts_status parse_meta(jparser *ps)
{
    ts_safetensors *f = ps->f;
    skip_ws(ps);
    if (ps->end - ps->p >= 4 && memcmp(ps->p, "null", 4) == 0) { ps->p += 4; return TS_OK; }
    if (!accept(ps, '{')) return bad_json(ps, "__metadata__ must be an object of strings");
    if (accept(ps, '}')) return TS_OK;
    for (;;) {
        char *k = NULL, *v = NULL;
        if (parse_string(ps, &k)) return ts_last_status();
        if (!accept(ps, ':')) { free(k); return bad_json(ps, "expected ':'"); }
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != '"') {
            ts_status st = ts_fail(TS_ERR_FORMAT, OP ": '%s': __metadata__ value of '%s' is not a string (byte %llu of the header)",
                                   f->path, k, (unsigned long long)(ps->p - ps->begin));
            free(k);
            return st;
        }
        if (parse_string(ps, &v)) { free(k); return ts_last_status(); }
        for (size_t i = 0; i < f->n_meta; i++)
            if (strcmp(f->meta[2 * i], k) == 0) {
                ts_status st = ts_fail(TS_ERR_FORMAT, OP ": '%s': duplicate __metadata__ key '%s'", f->path, k);
                free(k);
                free(v);
                return st;
            }
        if (f->n_meta == f->meta_cap) {
            size_t cap = f->meta_cap ? 2 * f->meta_cap : 8;
            char **m = realloc(f->meta, 2 * cap * sizeof *m);
            if (!m) { free(k); free(v); return ts_fail(TS_ERR_MEMORY, OP ": '%s': out of memory (metadata)", f->path); }
            f->meta = m;
            f->meta_cap = cap;
        }
        f->meta[2 * f->n_meta] = k;
        f->meta[2 * f->n_meta + 1] = v;
        f->n_meta++;
        if (accept(ps, '}')) return TS_OK;
        if (!accept(ps, ',')) return bad_json(ps, "expected ',' or '}' in __metadata__");
    }
}

static ts_status tensor_fail(const jparser *ps, const char *name, const char *what)
{
    return ts_fail(TS_ERR_FORMAT, OP ": '%s': tensor '%s': %s (byte %llu of the header)", ps->f->path, name, what,
                   (unsigned long long)(ps->p - ps->begin));
}

static ts_status parse_shape(jparser *ps, ts_safetensors_entry *e)
{
    if (!accept(ps, '[')) return tensor_fail(ps, e->name, "'shape' must be a list of sizes");
    e->ndim = 0;
    if (accept(ps, ']')) return TS_OK;
    for (;;) {
        uint64_t v;
        if (parse_uint(ps, &v)) return ts_last_status();
        if (e->ndim == TS_MAX_DIMS)
            return ts_fail(TS_ERR_FORMAT, OP ": '%s': tensor '%s' has more than %d dims (torsh's limit)", ps->f->path,
                           e->name, TS_MAX_DIMS);
        if (v > INT64_MAX) return tensor_fail(ps, e->name, "size too large in 'shape'");
        e->shape[e->ndim++] = (int64_t)v;
        if (accept(ps, ']')) return TS_OK;
        if (!accept(ps, ',')) return tensor_fail(ps, e->name, "expected ',' or ']' in 'shape'");
    }
}

static ts_status parse_offsets(jparser *ps, ts_safetensors_entry *e)
{
    if (!accept(ps, '[')) return tensor_fail(ps, e->name, "'data_offsets' must be [begin, end]");
    if (parse_uint(ps, &e->begin)) return ts_last_status();
    if (!accept(ps, ',')) return tensor_fail(ps, e->name, "'data_offsets' must be [begin, end]");
    if (parse_uint(ps, &e->end)) return ts_last_status();
    if (!accept(ps, ']')) return tensor_fail(ps, e->name, "'data_offsets' must be [begin, end]");
    return TS_OK;
}

static ts_status parse_dtype(jparser *ps, ts_safetensors_entry *e, const st_dtype **d)
{
    char *s;
    if (parse_string(ps, &s)) return ts_last_status();
    *d = st_dtype_by_name(s);
    if (!*d) {
        char shown[48];
        snprintf(shown, sizeof shown, "%s%s", s, strlen(s) > 40 ? "..." : "");
        ts_status st = ts_fail(TS_ERR_FORMAT, OP ": '%s': tensor '%s': unknown dtype '%s'", ps->f->path, e->name, shown);
        free(s);
        return st;
    }
    free(s);
    e->dtype_name = (*d)->name;
    e->dtype = (*d)->dt;
    return TS_OK;
}

/* {"dtype": ..., "shape": [...], "data_offsets": [b, e]} for entry e (named). */
static ts_status parse_tensor(jparser *ps, ts_safetensors_entry *e)
{
    if (!accept(ps, '{')) return tensor_fail(ps, e->name, "expected an object {dtype, shape, data_offsets}");
    bool have[3] = { false, false, false };
    static const char *const FIELDS[3] = { "dtype", "shape", "data_offsets" };
    const st_dtype *d = NULL;
    if (!accept(ps, '}')) {
        for (;;) {
            char *k;
            if (parse_string(ps, &k)) return ts_last_status();
            int which = -1;
            for (int i = 0; i < 3; i++)
                if (strcmp(k, FIELDS[i]) == 0) which = i;
            if (which < 0 || have[which]) {
                char shown[48];
                snprintf(shown, sizeof shown, "%s%s", k, strlen(k) > 40 ? "..." : "");
                ts_status st = ts_fail(TS_ERR_FORMAT, OP ": '%s': tensor '%s': %s field '%s' (dtype, shape and "
                                       "data_offsets are allowed, once each)", ps->f->path, e->name,
                                       which < 0 ? "unknown" : "duplicate", shown);
                free(k);
                return st;
            }
            free(k);
            have[which] = true;
            if (!accept(ps, ':')) return bad_json(ps, "expected ':'");
            ts_status st = which == 0 ? parse_dtype(ps, e, &d) : which == 1 ? parse_shape(ps, e) : parse_offsets(ps, e);
            if (st) return st;
            if (accept(ps, '}')) break;
            if (!accept(ps, ',')) return tensor_fail(ps, e->name, "expected ',' or '}'");
        }
    }
    for (int i = 0; i < 3; i++)
        if (!have[i])
            return ts_fail(TS_ERR_FORMAT, OP ": '%s': tensor '%s' has no '%s'", ps->f->path, e->name, FIELDS[i]);
    /* end - begin == numel * bits / 8 */
    uint64_t numel = 1, bits;
    for (int i = 0; i < e->ndim; i++)
        if (__builtin_mul_overflow(numel, (uint64_t)e->shape[i], &numel))
            return ts_fail(TS_ERR_FORMAT, OP ": '%s': tensor '%s': the shape's element count overflows", ps->f->path, e->name);
    if (__builtin_mul_overflow(numel, (uint64_t)d->bits, &bits))
        return ts_fail(TS_ERR_FORMAT, OP ": '%s': tensor '%s': the shape's byte count overflows", ps->f->path, e->name);
    char shape[TS_SHAPE_STR_CAP];
    ts_shape_str(e->shape, e->ndim, shape, sizeof shape);
    if (bits % 8)
        return ts_fail(TS_ERR_FORMAT, OP ": '%s': tensor '%s': %s %s is not a whole number of bytes", ps->f->path,
                       e->name, d->name, shape);
    if (e->end < e->begin)
        return ts_fail(TS_ERR_FORMAT, OP ": '%s': tensor '%s': data_offsets [%llu, %llu] end before they begin",
                       ps->f->path, e->name, (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end - e->begin != bits / 8)
        return ts_fail(TS_ERR_FORMAT, OP ": '%s': tensor '%s': data_offsets [%llu, %llu] hold %llu bytes, but %s %s needs %llu",
                       ps->f->path, e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                       (unsigned long long)(e->end - e->begin), d->name, shape, (unsigned long long)(bits / 8));
    return TS_OK;
}

static ts_safetensors_entry *new_entry(ts_safetensors *f)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 16;
        ts_safetensors_entry *es = realloc(f->entries, cap * sizeof *es);
        if (!es) return ts_fail_null(TS_ERR_MEMORY, OP ": '%s': out of memory (tensor table)", f->path);
        f->entries = es;
        f->cap = cap;
    }
    ts_safetensors_entry *e = &f->entries[f->n];
    memset(e, 0, sizeof *e);
    return e;
}

static ts_status parse_header(ts_safetensors *f, const unsigned char *text, size_t len)
{
    size_t ok = st_utf8_valid_prefix(text, len);
    if (ok != len)
        return ts_fail(TS_ERR_FORMAT, OP ": '%s': the header is not valid UTF-8 (byte %zu of the header)", f->path, ok);
    jparser ps = { text, text, text + len, f };
    if (len == 0 || text[0] != '{') return bad_json(&ps, "the header does not start with '{'");
    ps.p++;
    bool have_meta = false;
    if (!accept(&ps, '}')) {
        for (;;) {
            char *key;
            if (parse_string(&ps, &key)) return ts_last_status();
            if (!accept(&ps, ':')) { free(key); return bad_json(&ps, "expected ':'"); }
            if (strcmp(key, "__metadata__") == 0) {
                free(key);
                if (have_meta) return ts_fail(TS_ERR_FORMAT, OP ": '%s': duplicate key '__metadata__'", f->path);
                have_meta = true;
                if (parse_meta(&ps)) return ts_last_status();
            } else {
                ts_safetensors_entry *e = new_entry(f);
                if (!e) { free(key); return ts_last_status(); }
                e->name = key;          /* owned by the table from here */
                f->n++;
                if (parse_tensor(&ps, e)) return ts_last_status();
            }
            if (accept(&ps, '}')) break;
            if (!accept(&ps, ',')) return bad_json(&ps, "expected ',' or '}'");
        }
    }
    skip_ws(&ps);
    if (ps.p != ps.end) return bad_json(&ps, "unexpected text after the header object");
    return TS_OK;
}

/* ---- layout validation ------------------------------------------------------------ */

static int cmp_offsets(const ts_safetensors_entry *x, const ts_safetensors_entry *y)
{
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Sorts by offsets, stably (ties keep header order through `order`). */
typedef struct keyed { ts_safetensors_entry e; size_t order; } keyed;
static int cmp_keyed(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    int c = cmp_offsets(&x->e, &y->e);
    if (c) return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static ts_status sort_by_offset(ts_safetensors *f)
{
    if (f->n < 2) return TS_OK;
    keyed *k = malloc(f->n * sizeof *k);
    if (!k) return ts_fail(TS_ERR_MEMORY, OP ": '%s': out of memory (tensor table)", f->path);
    for (size_t i = 0; i < f->n; i++) { k[i].e = f->entries[i]; k[i].order = i; }
    qsort(k, f->n, sizeof *k, cmp_keyed);
    for (size_t i = 0; i < f->n; i++) f->entries[i] = k[i].e;
    free(k);
    return TS_OK;
}

typedef struct named { const char *name; size_t index; } named;
static int cmp_named(const void *a, const void *b)
{
    return strcmp(((const named *)a)->name, ((const named *)b)->name);
}

/* Builds the name index (after sort_by_offset) and refuses duplicates. */
static ts_status check_names(ts_safetensors *f)
{
    named *k = malloc((f->n ? f->n : 1) * sizeof *k);
    f->by_name = malloc((f->n ? f->n : 1) * sizeof *f->by_name);
    if (!k || !f->by_name) {
        free(k);
        return ts_fail(TS_ERR_MEMORY, OP ": '%s': out of memory (name index)", f->path);
    }
    for (size_t i = 0; i < f->n; i++) { k[i].name = f->entries[i].name; k[i].index = i; }
    qsort(k, f->n, sizeof *k, cmp_named);
    ts_status st = TS_OK;
    for (size_t i = 0; i < f->n; i++) {
        f->by_name[i] = k[i].index;
        if (i && !st && strcmp(k[i].name, k[i - 1].name) == 0)
            st = ts_fail(TS_ERR_FORMAT, OP ": '%s': duplicate tensor name '%s' in the header", f->path, k[i].name);
    }
    free(k);
    return st;
}

/* Sorted by offset, the tensors must tile [0, data size) exactly. */
static ts_status check_layout(ts_safetensors *f)
{
    uint64_t avail = f->size - f->data_start, pos = 0;
    const ts_safetensors_entry *prev = NULL;
    for (size_t i = 0; i < f->n; i++) {
        const ts_safetensors_entry *e = &f->entries[i];
        if (e->begin < pos)
            return ts_fail(TS_ERR_FORMAT, OP ": '%s': tensor '%s' (data_offsets [%llu, %llu]) overlaps tensor '%s' "
                           "([%llu, %llu])", f->path, e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                           prev->name, (unsigned long long)prev->begin, (unsigned long long)prev->end);
        if (e->begin > pos) {
            if (prev)
                return ts_fail(TS_ERR_FORMAT, OP ": '%s': gap in the data: tensor '%s' starts at byte %llu, the previous "
                               "tensor '%s' ends at %llu", f->path, e->name, (unsigned long long)e->begin, prev->name,
                               (unsigned long long)pos);
            return ts_fail(TS_ERR_FORMAT, OP ": '%s': gap in the data: the first tensor '%s' starts at byte %llu, not 0",
                           f->path, e->name, (unsigned long long)e->begin);
        }
        pos = e->end;
        prev = e;
    }
    if (pos > avail)
        return ts_fail(TS_ERR_FORMAT, OP ": '%s' is truncated: the tensors need %llu bytes of data (up to '%s'), the file "
                       "has %llu after the header", f->path, (unsigned long long)pos, prev->name, (unsigned long long)avail);
    if (pos < avail)
        return ts_fail(TS_ERR_FORMAT, OP ": '%s': %llu bytes after the last tensor are not covered by the header (the "
                       "tensors hold %llu bytes, the data section has %llu)", f->path, (unsigned long long)(avail - pos),
                       (unsigned long long)pos, (unsigned long long)avail);
    return TS_OK;
}

/* ---- opening ------------------------------------------------------------------------ */

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Header length checks against the real file size; fills f->header_len. */
static ts_status check_prefix(ts_safetensors *f, const unsigned char *h, size_t got)
{
    if (got < 8)
        return ts_fail(TS_ERR_FORMAT, OP ": '%s' is truncated: %llu bytes, the header length alone takes 8", f->path,
                       (unsigned long long)f->size);
    uint64_t n = get_u64(h);
    if (n > TS_SAFETENSORS_MAX_HEADER)
        return ts_fail(TS_ERR_FORMAT, OP ": '%s': header length %llu is over the limit of %u bytes (not a safetensors "
                       "file, or corrupt)", f->path, (unsigned long long)n, TS_SAFETENSORS_MAX_HEADER);
    if (n > f->size - 8)
        return ts_fail(TS_ERR_FORMAT, OP ": '%s' is truncated or corrupt: its header length says %llu bytes, only %llu "
                       "follow", f->path, (unsigned long long)n, (unsigned long long)(f->size - 8));
    if (n < 2)
        return ts_fail(TS_ERR_FORMAT, OP ": '%s': header length %llu is too small for a JSON object", f->path,
                       (unsigned long long)n);
    f->header_len = n;
    f->data_start = 8 + n;
    return TS_OK;
}

ts_safetensors *ts_safetensors_open(const char *path)
{
    if (!st_host_is_little_endian()) return ts_fail_null(TS_ERR_UNSUPPORTED, OP ": big-endian hosts are not supported");
    if (!path) return ts_fail_null(TS_ERR_ARG, OP ": path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ts_fail_null(TS_ERR_IO, OP ": cannot open '%s': %s", path, strerror(errno));
    ts_safetensors *f = calloc(1, sizeof *f);
    struct stat st;
    unsigned char head[8];
    ssize_t got;
    if (!f || !(f->path = strdup(path))) { ts_fail(TS_ERR_MEMORY, OP ": out of memory"); goto fail; }
    if (fstat(fd, &st) != 0) { ts_fail(TS_ERR_IO, OP ": cannot stat '%s': %s", path, strerror(errno)); goto fail; }
    if (!S_ISREG(st.st_mode)) { ts_fail(TS_ERR_IO, OP ": '%s' is not a regular file", path); goto fail; }
    f->size = (uint64_t)st.st_size;
    do got = pread(fd, head, sizeof head, 0); while (got < 0 && errno == EINTR);
    if (got < 0) { ts_fail(TS_ERR_IO, OP ": cannot read '%s': %s", path, strerror(errno)); goto fail; }
    if ((uint64_t)got > f->size) got = (ssize_t)f->size;
    if (check_prefix(f, head, (size_t)got)) goto fail;
    f->map = io_map_fd(fd, f->size, OP, path);
    if (!f->map) goto fail;
    f->base = f->map->data;
    if (parse_header(f, f->base + 8, (size_t)f->header_len) || sort_by_offset(f) || check_names(f) ||
        check_layout(f))
        goto fail;
    close(fd);
    return f;
fail:
    close(fd);
    ts_safetensors_close(f);
    return NULL;
}

long ts_safetensors_find(const ts_safetensors *f, const char *name)
{
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const ts_safetensors_entry *e = &f->entries[f->by_name[mid]];
        int c = strcmp(e->name, name);
        if (c == 0) return (long)(e - f->entries);
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

/* ---- tensors -------------------------------------------------------------------------- */

ts_tensor *ts_safetensors_tensor(ts_safetensors *f, size_t i, unsigned flags)
{
    if (i >= f->n)
        return ts_fail_null(TS_ERR_ARG, OP ": '%s': tensor index %zu out of range (%zu tensors)", f->path, i, f->n);
    const ts_safetensors_entry *e = &f->entries[i];
    if (e->dtype == TS_DTYPE_COUNT)
        return ts_fail_null(TS_ERR_UNSUPPORTED, OP ": '%s': tensor '%s' has dtype %s, which torsh has no type for "
                            "(torsh reads F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)", f->path, e->name, e->dtype_name);
    size_t es = ts_dtype_size(e->dtype);
    uint64_t abs = f->data_start + e->begin, nbytes = e->end - e->begin;
    const unsigned char *src = f->base + abs;
    bool copy = (flags & TS_SAFETENSORS_COPY) || abs % es != 0;
    if (e->dtype == TS_BOOL && !copy)
        for (uint64_t k = 0; k < nbytes && !copy; k++) copy = src[k] > 1;
    if (!copy) return ts_tensor_from_storage(f->map, e->dtype, (int64_t)(abs / es), e->shape, NULL, e->ndim);
    ts_tensor *t = ts_tensor_new(e->shape, e->ndim, e->dtype);
    if (!t) return NULL;
    if (nbytes) memcpy(ts_tensor_data(t), src, (size_t)nbytes);
    if (e->dtype == TS_BOOL) {
        uint8_t *p = ts_tensor_data(t);
        for (uint64_t k = 0; k < nbytes; k++) p[k] = p[k] != 0;
    }
    return t;
}
