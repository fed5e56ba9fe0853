/* safetensors_write.c — the .safetensors writer (torsh/safetensors.h:
 * ts_safetensors_write): the reference writer's layout (tensors sorted by
 * dtype size descending then name, compact JSON with "__metadata__" first,
 * the header space-padded to a multiple of 8, tensors back to back) written
 * atomically through io_atomic.h. */
#include "torsh/safetensors.h"

#include "io_atomic.h"
#include "safetensors_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OP "safetensors"

typedef struct sbuf { char *p; size_t n, cap; bool oom; } sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = true; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}
static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* A JSON string as serde_json writes it: " \\ and control characters escaped
 * (\b \f \n \r \t, others as \u00xx), everything else verbatim. */
static void sb_quote(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        char esc[8];
        const char *r = NULL;
        switch (c) {
        case '"': r = "\\\""; break;
        case '\\': r = "\\\\"; break;
        case '\b': r = "\\b"; break;
        case '\f': r = "\\f"; break;
        case '\n': r = "\\n"; break;
        case '\r': r = "\\r"; break;
        case '\t': r = "\\t"; break;
        default:
            if (c < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", c); r = esc; }
        }
        if (r) sb_str(b, r);
        else sb_put(b, p, 1);
    }
    sb_put(b, "\"", 1);
}

static void sb_uint(sbuf *b, uint64_t v)
{
    char t[24];
    snprintf(t, sizeof t, "%llu", (unsigned long long)v);
    sb_str(b, t);
}

/* Write order: dtype rank descending, then name. */
typedef struct wkey { int rank; const char *name; size_t index; } wkey;
static int cmp_wkey(const void *a, const void *b)
{
    const wkey *x = a, *y = b;
    if (x->rank != y->rank) return x->rank > y->rank ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_strp(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static ts_status check_text(const char *what, const char *s, size_t i)
{
    if (!s) return ts_fail(TS_ERR_ARG, OP " write: %s %zu is NULL", what, i);
    size_t n = strlen(s);
    if (st_utf8_valid_prefix((const unsigned char *)s, n) != n)
        return ts_fail(TS_ERR_ARG, OP " write: %s %zu is not valid UTF-8", what, i);
    return TS_OK;
}

/* Refuses duplicates among n strings (uses scratch for a sorted copy). */
static ts_status check_unique(const char *what, const char *const *s, size_t n, const char **scratch)
{
    if (n < 2) return TS_OK;
    memcpy(scratch, s, n * sizeof *scratch);
    qsort(scratch, n, sizeof *scratch, cmp_strp);
    for (size_t i = 1; i < n; i++)
        if (strcmp(scratch[i], scratch[i - 1]) == 0) return ts_fail(TS_ERR_ARG, OP " write: duplicate %s '%s'", what, scratch[i]);
    return TS_OK;
}

static ts_status check_write_args(const char *const *names, ts_tensor *const *tensors, size_t n,
                                  const char *const *meta_keys, const char *const *meta_values, size_t n_meta,
                                  const char **scratch)
{
    for (size_t i = 0; i < n; i++) {
        if (check_text("tensor name", names[i], i)) return ts_last_status();
        if (strcmp(names[i], "__metadata__") == 0)
            return ts_fail(TS_ERR_ARG, OP " write: '__metadata__' cannot name a tensor");
        const ts_tensor *t = tensors[i];
        if (!t) return ts_fail(TS_ERR_ARG, OP " write: tensor '%s' is NULL", names[i]);
        if (t->storage->device.type != TS_CPU)
            return ts_fail(TS_ERR_UNSUPPORTED, OP " write: tensor '%s' is not on the CPU; copy it to the CPU first", names[i]);
        if (!st_dtype_of(t->dtype)) return ts_fail(TS_ERR_ARG, OP " write: tensor '%s' has an unknown dtype", names[i]);
    }
    for (size_t i = 0; i < n_meta; i++)
        if (check_text("metadata key", meta_keys[i], i) || check_text("metadata value", meta_values[i], i))
            return ts_last_status();
    if (check_unique("tensor name", names, n, scratch)) return ts_last_status();
    if (n_meta && check_unique("metadata key", meta_keys, n_meta, scratch)) return ts_last_status();
    return TS_OK;
}

/* The header text (padded) for tensors in `order`. */
static ts_status build_header(sbuf *b, const char *const *names, ts_tensor *const *tensors, const size_t *order,
                              size_t n, const char *const *meta_keys, const char *const *meta_values, size_t n_meta,
                              const char **scratch)
{
    sb_put(b, "{", 1);
    if (n_meta) {
        /* keys sorted bytewise: map each sorted key back to its value */
        memcpy(scratch, meta_keys, n_meta * sizeof *scratch);
        qsort(scratch, n_meta, sizeof *scratch, cmp_strp);
        sb_str(b, "\"__metadata__\":{");
        for (size_t k = 0; k < n_meta; k++) {
            size_t i = 0;
            while (strcmp(meta_keys[i], scratch[k]) != 0) i++;
            if (k) sb_put(b, ",", 1);
            sb_quote(b, meta_keys[i]);
            sb_put(b, ":", 1);
            sb_quote(b, meta_values[i]);
        }
        sb_put(b, "}", 1);
    }
    uint64_t pos = 0;
    for (size_t k = 0; k < n; k++) {
        const ts_tensor *t = tensors[order[k]];
        if (k || n_meta) sb_put(b, ",", 1);
        sb_quote(b, names[order[k]]);
        sb_str(b, ":{\"dtype\":\"");
        sb_str(b, st_dtype_of(t->dtype)->name);
        sb_str(b, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            if (d) sb_put(b, ",", 1);
            sb_uint(b, (uint64_t)t->shape[d]);
        }
        sb_str(b, "],\"data_offsets\":[");
        sb_uint(b, pos);
        sb_put(b, ",", 1);
        pos += ts_tensor_nbytes(t);
        sb_uint(b, pos);
        sb_str(b, "]}");
    }
    sb_put(b, "}", 1);
    while (!b->oom && b->n % 8) sb_put(b, " ", 1);
    if (b->oom) return ts_fail(TS_ERR_MEMORY, OP " write: out of memory (header)");
    if (b->n > TS_SAFETENSORS_MAX_HEADER)
        return ts_fail(TS_ERR_ARG, OP " write: the header would be %zu bytes, over the format's limit of %u", b->n,
                       TS_SAFETENSORS_MAX_HEADER);
    return TS_OK;
}

ts_status ts_safetensors_write(const char *path, const char *const *names, ts_tensor *const *tensors, size_t n,
                               const char *const *meta_keys, const char *const *meta_values, size_t n_meta)
{
    if (!st_host_is_little_endian()) return ts_fail(TS_ERR_UNSUPPORTED, OP " write: big-endian hosts are not supported");
    if (!path || !*path) return ts_fail(TS_ERR_ARG, OP " write: empty path");
    if (n && (!names || !tensors)) return ts_fail(TS_ERR_ARG, OP " write: NULL name or tensor list");
    if (n_meta && (!meta_keys || !meta_values)) return ts_fail(TS_ERR_ARG, OP " write: NULL metadata list");
    size_t most = n > n_meta ? n : n_meta;
    const char **scratch = malloc((most ? most : 1) * sizeof *scratch);
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    sbuf b = { 0 };
    ts_status st = TS_OK;
    if (!scratch || !order) { st = ts_fail(TS_ERR_MEMORY, OP " write: out of memory"); goto done; }
    if ((st = check_write_args(names, tensors, n, meta_keys, meta_values, n_meta, scratch))) goto done;
    wkey *keys = malloc((n ? n : 1) * sizeof *keys);
    if (!keys) { st = ts_fail(TS_ERR_MEMORY, OP " write: out of memory"); goto done; }
    for (size_t i = 0; i < n; i++) keys[i] = (wkey){ st_dtype_of(tensors[i]->dtype)->rank, names[i], i };
    qsort(keys, n, sizeof *keys, cmp_wkey);
    for (size_t i = 0; i < n; i++) order[i] = keys[i].index;
    free(keys);
    if ((st = build_header(&b, names, tensors, order, n, meta_keys, meta_values, n_meta, scratch))) goto done;
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)b.n >> (8 * i));
    ts_io_atomic a;
    if ((st = ts_io_atomic_begin(&a, path, OP " write"))) goto done;
    st = ts_io_atomic_write(&a, len, 8);
    if (!st) st = ts_io_atomic_write(&a, b.p, b.n);
    for (size_t k = 0; k < n && !st; k++) st = ts_io_atomic_write_tensor(&a, tensors[order[k]]);
    if (st) ts_io_atomic_abort(&a);
    else st = ts_io_atomic_commit(&a);
done:
    free(b.p);
    free(order);
    free(scratch);
    return st;
}
