/* sort.c — ops along one dim, each line of the tensor (one position of the
 * other dims) on its own: cumsum/cumprod, max/min with indices,
 * argmax/argmin, sort and topk. CPU only for now (no backend entry). Lines
 * are spread over threads; a line's result depends on that line alone, so
 * results never depend on the thread count. Indices are 0-based i64.
 *
 * Ordering follows PyTorch: NaN is larger than everything (sort puts it
 * last, or first when descending; max/argmax/min/argmin return the first
 * NaN); -0.0 equals 0.0; ties keep their original order (stable sort, first
 * occurrence for max/min). */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Offset (elements, from t's first element) of line `line` of t along dim:
 * the other dims taken in row-major order. */
static int64_t line_offset(const ts_tensor *t, int dim, int64_t line)
{
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (d == dim) continue;
        off += line % t->shape[d] * t->stride[d];
        line /= t->shape[d];
    }
    return off;
}

static int64_t dim_size(const ts_tensor *t, int dim) { return t->ndim ? t->shape[dim] : 1; }
static int64_t dim_stride(const ts_tensor *t, int dim) { return t->ndim ? t->stride[dim] : 0; }

/* Number of lines along dim (0 when any dim is empty). */
static int64_t line_count(const ts_tensor *t, int dim)
{
    int64_t n = dim_size(t, dim);
    return n ? ts_tensor_numel(t) / n : 0;
}

/* Lines per parallel part so each part has about `grain` elements. */
static int64_t line_grain(int64_t n, int64_t grain) { return n >= grain ? 1 : grain / (n > 0 ? n : 1); }

/* a's shape with dim set to `size` (a 0-dim tensor stays 0-dim). */
static void shape_with(const ts_tensor *a, int dim, int64_t size, int64_t *shape)
{
    for (int d = 0; d < a->ndim; d++) shape[d] = d == dim ? size : a->shape[d];
}

/* ---- cumsum / cumprod --------------------------------------------------------------- */

typedef struct { const ts_tensor *a; ts_tensor *out; int dim; bool prod; } scan_ctx;

static void scan_lines(int64_t begin, int64_t end, void *vc)
{
    const scan_ctx *c = vc;
    const char *a = ts_tensor_data(c->a);
    char *o = ts_tensor_data(c->out);
    ts_dtype dt = c->a->dtype, odt = c->out->dtype;
    int64_t n = dim_size(c->a, c->dim), as = dim_stride(c->a, c->dim), os = dim_stride(c->out, c->dim);
    for (int64_t line = begin; line < end; line++) {
        int64_t ia = line_offset(c->a, c->dim, line), io = line_offset(c->out, c->dim, line);
        if (dt == TS_F32 && odt == TS_F32) {
            const float *x = (const float *)a + ia;
            float *y = (float *)o + io;
            double acc = c->prod ? 1 : 0;
            for (int64_t i = 0; i < n; i++) {
                acc = c->prod ? acc * x[i * as] : acc + x[i * as];
                y[i * os] = (float)acc;
            }
        } else if (ts_dtype_is_float(odt)) {
            double acc = c->prod ? 1 : 0;          /* double accumulator, like PyTorch's CPU acc_type */
            for (int64_t i = 0; i < n; i++) {
                double x = ts_load_f64(a, dt, ia + i * as);
                acc = c->prod ? acc * x : acc + x;
                ts_store_f64(o, odt, io + i * os, acc);
            }
        } else {
            uint64_t acc = c->prod ? 1 : 0;        /* wraps like PyTorch's int64 */
            for (int64_t i = 0; i < n; i++) {
                uint64_t x = (uint64_t)ts_load_i64(a, dt, ia + i * as);
                acc = c->prod ? acc * x : acc + x;
                ((int64_t *)o)[io + i * os] = (int64_t)acc;
            }
        }
    }
}

static ts_tensor *cumulative(const char *op, const ts_tensor *a, int dim, bool prod)
{
    int d;
    if (ts_wrap_dim(op, dim, a->ndim, &d) || ts_require_cpu(op, a)) return NULL;
    ts_dtype odt = ts_dtype_is_float(a->dtype) ? a->dtype : TS_I64;   /* integers and bool give i64 */
    ts_tensor *out = ts_tensor_new(a->shape, a->ndim, odt);
    if (!out) return NULL;
    scan_ctx c = { a, out, d, prod };
    ts_parallel_for(line_count(a, d), line_grain(dim_size(a, d), TS_GRAIN_HEAVY), scan_lines, &c);
    return out;
}

ts_tensor *ts_cumsum(const ts_tensor *a, int dim) { return cumulative("cumsum", a, dim, false); }
ts_tensor *ts_cumprod(const ts_tensor *a, int dim) { return cumulative("cumprod", a, dim, true); }

/* ---- max / min with indices, argmax / argmin --------------------------------------- */

typedef struct { const ts_tensor *a; ts_tensor *values, *indices; int dim; bool want_max; } best_ctx;

/* Index of the first max (min) of the n elements at p[off + i * stride];
 * the first NaN wins. */
static int64_t best_f32(const float *x, int64_t stride, int64_t n, bool want_max)
{
    float best = x[0];
    int64_t at = 0;
    if (best != best) return 0;
    for (int64_t i = 1; i < n; i++) {
        float v = x[i * stride];
        if (v != v) return i;
        if (want_max ? v > best : v < best) { best = v; at = i; }
    }
    return at;
}

static int64_t best_float(const char *p, ts_dtype dt, int64_t off, int64_t stride, int64_t n, bool want_max)
{
    if (dt == TS_F32) return best_f32((const float *)p + off, stride, n, want_max);
    double best = ts_load_f64(p, dt, off);
    int64_t at = 0;
    if (best != best) return 0;
    for (int64_t i = 1; i < n; i++) {
        double x = ts_load_f64(p, dt, off + i * stride);
        if (x != x) return i;
        if (want_max ? x > best : x < best) { best = x; at = i; }
    }
    return at;
}

static int64_t best_int(const char *p, ts_dtype dt, int64_t off, int64_t stride, int64_t n, bool want_max)
{
    int64_t best = ts_load_i64(p, dt, off), at = 0;
    for (int64_t i = 1; i < n; i++) {
        int64_t x = ts_load_i64(p, dt, off + i * stride);
        if (want_max ? x > best : x < best) { best = x; at = i; }
    }
    return at;
}

static void best_lines(int64_t begin, int64_t end, void *vc)
{
    const best_ctx *c = vc;
    const char *a = ts_tensor_data(c->a);
    ts_dtype dt = c->a->dtype;
    size_t es = ts_dtype_size(dt);
    int64_t n = dim_size(c->a, c->dim), as = dim_stride(c->a, c->dim);
    bool fl = ts_dtype_is_float(dt);
    for (int64_t line = begin; line < end; line++) {
        int64_t ia = line_offset(c->a, c->dim, line);
        int64_t at = fl ? best_float(a, dt, ia, as, n, c->want_max) : best_int(a, dt, ia, as, n, c->want_max);
        ((int64_t *)ts_tensor_data(c->indices))[line_offset(c->indices, c->dim, line)] = at;
        if (c->values)
            memcpy((char *)ts_tensor_data(c->values) + line_offset(c->values, c->dim, line) * (int64_t)es,
                   a + (ia + at * as) * (int64_t)es, es);
    }
}

/* Views t (contiguous, keepdim shape) without dim; takes t. */
static ts_tensor *drop_dim(ts_tensor *t, int dim)
{
    if (!t || t->ndim == 0) return t;
    int64_t shape[TS_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < t->ndim; d++)
        if (d != dim) shape[n++] = t->shape[d];
    ts_tensor *v = ts_view(t, shape, n);
    ts_tensor_release(t);
    return v;
}

/* Max (min) along dim of a: new i64 indices and, when `values` is not
 * NULL, the values. */
static ts_status best_along(const char *op, const ts_tensor *a, int dim, bool keepdim, bool want_max,
                            ts_tensor **values, ts_tensor **indices)
{
    int d;
    if (ts_wrap_dim(op, dim, a->ndim, &d) || ts_require_cpu(op, a)) return ts_last_status();
    if (dim_size(a, d) == 0) {
        char s[TS_SHAPE_STR_CAP];
        return ts_fail(TS_ERR_ARG, "%s: cannot perform reduction on an empty dim (dim %d of shape %s has size 0)", op,
                       d, ts_shape_str(a->shape, a->ndim, s, sizeof s));
    }
    int64_t shape[TS_MAX_DIMS];
    shape_with(a, d, 1, shape);
    ts_tensor *v = values ? ts_tensor_new(shape, a->ndim, a->dtype) : NULL;
    ts_tensor *ix = !values || v ? ts_tensor_new(shape, a->ndim, TS_I64) : NULL;
    if (!ix) { ts_tensor_release(v); return ts_last_status(); }
    best_ctx c = { a, v, ix, d, want_max };
    ts_parallel_for(line_count(a, d), line_grain(dim_size(a, d), TS_GRAIN_ELEMENTWISE), best_lines, &c);
    if (!keepdim) {
        v = drop_dim(v, d);
        ix = drop_dim(ix, d);
        if ((values && !v) || !ix) { ts_tensor_release(v); ts_tensor_release(ix); return ts_last_status(); }
    }
    if (values) *values = v;
    *indices = ix;
    return TS_OK;
}

ts_status ts_max_dim(const ts_tensor *a, int dim, bool keepdim, ts_tensor **values, ts_tensor **indices)
{
    *values = *indices = NULL;
    return best_along("max", a, dim, keepdim, true, values, indices);
}

ts_status ts_min_dim(const ts_tensor *a, int dim, bool keepdim, ts_tensor **values, ts_tensor **indices)
{
    *values = *indices = NULL;
    return best_along("min", a, dim, keepdim, false, values, indices);
}

static ts_tensor *arg_best(const char *op, const ts_tensor *a, int dim, bool all_dims, bool keepdim, bool want_max)
{
    ts_tensor *ix = NULL;
    if (!all_dims) return best_along(op, a, dim, keepdim, want_max, NULL, &ix) ? NULL : ix;
    if (ts_tensor_numel(a) == 0)
        return ts_fail_null(TS_ERR_ARG, "%s: cannot perform reduction on an empty tensor (give a dim)", op);
    ts_tensor *flat = ts_reshape(a, (int64_t[]){ -1 }, 1);
    ts_status st = flat ? best_along(op, flat, 0, false, want_max, NULL, &ix) : ts_last_status();
    ts_tensor_release(flat);
    if (st || !keepdim) return st ? NULL : ix;
    int64_t ones[TS_MAX_DIMS];
    for (int d = 0; d < a->ndim; d++) ones[d] = 1;
    ts_tensor *r = ts_view(ix, ones, a->ndim);
    ts_tensor_release(ix);
    return r;
}

ts_tensor *ts_argmax(const ts_tensor *a, int dim, bool all_dims, bool keepdim)
{
    return arg_best("argmax", a, dim, all_dims, keepdim, true);
}

ts_tensor *ts_argmin(const ts_tensor *a, int dim, bool all_dims, bool keepdim)
{
    return arg_best("argmin", a, dim, all_dims, keepdim, false);
}

/* ---- sort / topk ------------------------------------------------------------------------ */

/* Keys whose unsigned order is the wanted order: NaN largest, -0.0 == 0.0. */
static uint64_t float_key(double x)
{
    if (x != x) return UINT64_MAX;
    if (x == 0) x = 0;
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return b >> 63 ? ~b : b | (UINT64_C(1) << 63);
}

static uint64_t int_key(int64_t x) { return (uint64_t)x ^ (UINT64_C(1) << 63); }

/* Stable sort of n (key, index) pairs by key, with scratch tk/ti of n each:
 * insertion sort of runs of 16, then bottom-up merges. */
static void sort_pairs(uint64_t *k, int64_t *ix, uint64_t *tk, int64_t *ti, int64_t n)
{
    enum { RUN = 16 };
    for (int64_t lo = 0; lo < n; lo += RUN) {
        int64_t hi = lo + RUN < n ? lo + RUN : n;
        for (int64_t i = lo + 1; i < hi; i++) {
            uint64_t key = k[i];
            int64_t id = ix[i], j = i;
            for (; j > lo && k[j - 1] > key; j--) { k[j] = k[j - 1]; ix[j] = ix[j - 1]; }
            k[j] = key;
            ix[j] = id;
        }
    }
    uint64_t *sk = k, *dk = tk;
    int64_t *si = ix, *di = ti;
    for (int64_t w = RUN; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi) {
                bool right = sk[j] < sk[i];          /* ties take the left: stable */
                dk[o] = right ? sk[j] : sk[i];
                di[o++] = right ? si[j++] : si[i++];
            }
            for (; i < mid; i++, o++) { dk[o] = sk[i]; di[o] = si[i]; }
            for (; j < hi; j++, o++) { dk[o] = sk[j]; di[o] = si[j]; }
        }
        uint64_t *tkp = sk; sk = dk; dk = tkp;
        int64_t *tip = si; si = di; di = tip;
    }
    if (sk != k) {
        memcpy(k, sk, sizeof *k * (size_t)n);
        memcpy(ix, si, sizeof *ix * (size_t)n);
    }
}

typedef struct {
    const ts_tensor *a;
    ts_tensor *values, *indices;
    int dim;
    int64_t k;              /* leading elements kept of each sorted line */
    bool descending;
    int failed;             /* set (atomically) when scratch memory ran out */
} sort_ctx;

static void sort_lines(int64_t begin, int64_t end, void *vc)
{
    sort_ctx *c = vc;
    const char *a = ts_tensor_data(c->a);
    ts_dtype dt = c->a->dtype;
    size_t es = ts_dtype_size(dt);
    int64_t n = dim_size(c->a, c->dim), as = dim_stride(c->a, c->dim);
    int64_t vs = dim_stride(c->values, c->dim), is = dim_stride(c->indices, c->dim);
    uint64_t *keys = malloc((size_t)n * 4 * sizeof(uint64_t));
    if (!keys) { __atomic_store_n(&c->failed, 1, __ATOMIC_RELAXED); return; }
    int64_t *idx = (int64_t *)(keys + n);
    uint64_t *tkeys = keys + 2 * n;
    int64_t *tidx = (int64_t *)(keys + 3 * n);
    bool fl = ts_dtype_is_float(dt);
    uint64_t flip = c->descending ? UINT64_MAX : 0;
    char *vdata = ts_tensor_data(c->values);
    int64_t *idata = ts_tensor_data(c->indices);
    for (int64_t line = begin; line < end; line++) {
        int64_t ia = line_offset(c->a, c->dim, line);
        for (int64_t i = 0; i < n; i++) {
            int64_t at = ia + i * as;
            keys[i] = (fl ? float_key(ts_load_f64(a, dt, at)) : int_key(ts_load_i64(a, dt, at))) ^ flip;
            idx[i] = i;
        }
        sort_pairs(keys, idx, tkeys, tidx, n);
        int64_t vo = line_offset(c->values, c->dim, line), io = line_offset(c->indices, c->dim, line);
        for (int64_t i = 0; i < c->k; i++) {
            memcpy(vdata + (vo + i * vs) * (int64_t)es, a + (ia + idx[i] * as) * (int64_t)es, es);
            idata[io + i * is] = idx[i];
        }
    }
    free(keys);
}

/* Sorts a's lines along dim into new values/indices of a's shape with dim
 * set to k, keeping the first k of each line. */
static ts_status sort_along(const char *op, const ts_tensor *a, int d, int64_t k, bool descending,
                            ts_tensor **values, ts_tensor **indices)
{
    int64_t shape[TS_MAX_DIMS];
    shape_with(a, d, k, shape);
    ts_tensor *v = ts_tensor_new(shape, a->ndim, a->dtype);
    ts_tensor *ix = v ? ts_tensor_new(shape, a->ndim, TS_I64) : NULL;
    if (!ix) { ts_tensor_release(v); return ts_last_status(); }
    sort_ctx c = { a, v, ix, d, k, descending, 0 };
    int64_t n = dim_size(a, d);
    if (n > 0 && k > 0) ts_parallel_for(line_count(a, d), line_grain(n * 8, TS_GRAIN_HEAVY), sort_lines, &c);
    if (c.failed) {
        ts_tensor_release(v);
        ts_tensor_release(ix);
        return ts_fail(TS_ERR_MEMORY, "%s: out of memory for a line of %lld elements", op, (long long)n);
    }
    *values = v;
    *indices = ix;
    return TS_OK;
}

ts_status ts_sort(const ts_tensor *a, int dim, bool descending, ts_tensor **values, ts_tensor **indices)
{
    *values = *indices = NULL;
    int d;
    if (ts_wrap_dim("sort", dim, a->ndim, &d) || ts_require_cpu("sort", a)) return ts_last_status();
    return sort_along("sort", a, d, dim_size(a, d), descending, values, indices);
}

/* The k largest (smallest) along dim, always in sorted order (sorted=false
 * is accepted: any order is allowed then). */
ts_status ts_topk(const ts_tensor *a, int64_t k, int dim, bool largest, bool sorted,
                  ts_tensor **values, ts_tensor **indices)
{
    (void)sorted;
    *values = *indices = NULL;
    int d;
    if (ts_wrap_dim("topk", dim, a->ndim, &d) || ts_require_cpu("topk", a)) return ts_last_status();
    int64_t n = dim_size(a, d);
    if (k < 0 || k > n) {
        char s[TS_SHAPE_STR_CAP];
        return ts_fail(TS_ERR_ARG, "topk: k = %lld is out of range for dim %d of shape %s (size %lld)", (long long)k, d,
                       ts_shape_str(a->shape, a->ndim, s, sizeof s), (long long)n);
    }
    return sort_along("topk", a, d, k, largest, values, indices);
}
