/* index.c — indexing ops: index_select, embedding, gather, scatter_add(_),
 * one_hot, masked_select and masked_fill (CPU storages only for now).
 *
 * Index tensors hold 0-based integers of any integer dtype. Like PyTorch,
 * none of these ops accepts negative indices. Every index is range-checked
 * on the calling thread before any element moves; a bad one fails with the
 * op, the value and the valid range. The kernels view an operand as
 * outer x dim x inner (the dims before `dim`, `dim`, the dims after) and
 * walk strided memory through two small offset layouts, so non-contiguous
 * inputs need no copy; contiguous rows move with memcpy. Work is split over
 * threads only where no two threads write one element, so results never
 * depend on the thread count (scatter_add adds in index order). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- shared helpers ----------------------------------------------------------- */

/* The index tensor as contiguous i64: a new reference (the tensor itself
 * when it already is). Fails for non-integer dtypes. */
static ts_tensor *index_as_i64(const char *op, const ts_tensor *index)
{
    if (ts_dtype_info(index->dtype)->kind != TS_KIND_INT)
        return ts_fail_null(TS_ERR_ARG, "%s: index must have an integer dtype, got %s", op,
                            ts_dtype_name(index->dtype));
    if (ts_require_cpu(op, index)) return NULL;
    if (index->dtype == TS_I64) return ts_contiguous(index);
    return ts_to_dtype(index, TS_I64);
}

/* Fails unless 0 <= idx[i] < size for every i. */
static ts_status check_range(const char *op, const int64_t *idx, int64_t n, int dim, int64_t size)
{
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] >= 0 && idx[i] < size) continue;
        if (size == 0)
            return ts_fail(TS_ERR_ARG, "%s: index %lld is out of range for dim %d of size 0 (the dim is empty)", op,
                           (long long)idx[i], dim);
        return ts_fail(TS_ERR_ARG, "%s: index %lld is out of range for dim %d of size %lld (valid: 0..%lld%s)", op,
                       (long long)idx[i], dim, (long long)size, (long long)(size - 1),
                       idx[i] < 0 ? "; negative indices are not accepted" : "");
    }
    return TS_OK;
}

static bool has_internal_overlap(const ts_tensor *t)
{
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] > 1 && t->stride[d] == 0) return true;
    return false;
}

/* Element offsets of the row-major positions of a block of dims (shape[k],
 * stride[k]): `k * step` when the dims merge into one, else a table. */
typedef struct {
    int64_t n;        /* positions */
    int64_t step;     /* used when table is NULL */
    int64_t *table;   /* malloc'd offsets, or NULL */
} layout;

static ts_status layout_init(layout *l, const int64_t *shape, const int64_t *stride, int nd)
{
    l->n = 1;
    l->step = 1;
    l->table = NULL;
    for (int k = 0; k < nd; k++) l->n *= shape[k];
    /* do the non-trivial dims merge into one stride? */
    int64_t step = 0, expect = 0;
    bool linear = true, seen = false;
    for (int k = nd - 1; k >= 0; k--) {
        if (shape[k] == 1) continue;
        if (!seen) { step = stride[k]; expect = stride[k] * shape[k]; seen = true; continue; }
        if (stride[k] != expect) { linear = false; break; }
        expect *= shape[k];
    }
    if (linear) { l->step = seen ? step : 1; return TS_OK; }
    l->table = malloc(sizeof(int64_t) * (size_t)(l->n ? l->n : 1));
    if (!l->table) return ts_fail(TS_ERR_MEMORY, "out of memory (index offsets)");
    int64_t idx[TS_MAX_DIMS] = {0}, off = 0;
    for (int64_t i = 0; i < l->n; i++) {
        l->table[i] = off;
        for (int k = nd - 1; k >= 0; k--) {
            off += stride[k];
            if (++idx[k] < shape[k]) break;
            off -= stride[k] * shape[k];
            idx[k] = 0;
        }
    }
    return TS_OK;
}

static inline int64_t layout_at(const layout *l, int64_t k) { return l->table ? l->table[k] : k * l->step; }
static void layout_free(layout *l) { free(l->table); l->table = NULL; }

/* Shape and strides of t with a 0-dim tensor seen as [1]. */
static int geometry(const ts_tensor *t, int64_t *shape, int64_t *stride)
{
    if (t->ndim == 0) { shape[0] = 1; stride[0] = 0; return 1; }
    memcpy(shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    memcpy(stride, t->stride, sizeof(int64_t) * (size_t)t->ndim);
    return t->ndim;
}

/* Parallel grain in rows for rows of `row_len` elements. */
static int64_t row_grain(int64_t row_len)
{
    int64_t g = TS_GRAIN_ELEMENTWISE / (row_len > 0 ? row_len : 1);
    return g > 0 ? g : 1;
}

/* ---- index_select and embedding: whole slices by one 1-D index ---------------- */

typedef struct {
    char *out;
    const char *src;
    const int64_t *idx;
    int64_t n;            /* indices */
    int64_t dstride;      /* element stride of the indexed dim in src */
    size_t es;
    layout outer, inner;  /* positions before / after the dim, in src */
} take_ctx;

static void take_rows(int64_t begin, int64_t end, void *vctx)
{
    const take_ctx *c = vctx;
    int64_t I = c->inner.n;
    size_t es = c->es;
    bool contiguous = !c->inner.table && c->inner.step == 1;
    for (int64_t r = begin; r < end; r++) {
        int64_t o = r / c->n, j = r % c->n;
        const char *src = c->src + (layout_at(&c->outer, o) + c->idx[j] * c->dstride) * (int64_t)es;
        char *dst = c->out + r * I * (int64_t)es;
        if (contiguous) {
            memcpy(dst, src, (size_t)I * es);
        } else if (es == 4) {   /* f32 / i32 */
            for (int64_t k = 0; k < I; k++) memcpy(dst + k * 4, src + layout_at(&c->inner, k) * 4, 4);
        } else {
            for (int64_t k = 0; k < I; k++) memcpy(dst + k * (int64_t)es, src + layout_at(&c->inner, k) * (int64_t)es, es);
        }
    }
}

/* out (contiguous: outer x n x inner) = slices idx[j] of src along dim d. */
static ts_status take(ts_tensor *out, const ts_tensor *src, int d, const int64_t *idx, int64_t n)
{
    int64_t shape[TS_MAX_DIMS], stride[TS_MAX_DIMS];
    int nd = geometry(src, shape, stride);
    take_ctx c = { ts_tensor_data(out), ts_tensor_data(src), idx, n, stride[d], ts_dtype_size(src->dtype) };
    if (layout_init(&c.outer, shape, stride, d)) return ts_last_status();
    if (layout_init(&c.inner, shape + d + 1, stride + d + 1, nd - d - 1)) {
        layout_free(&c.outer);
        return ts_last_status();
    }
    int64_t rows = c.outer.n * n;
    if (rows > 0 && c.inner.n > 0) {
        int64_t grain = row_grain(c.inner.n);
        if (rows < 2 * grain) take_rows(0, rows, &c);
        else ts_parallel_for(rows, grain, take_rows, &c);
    }
    layout_free(&c.outer);
    layout_free(&c.inner);
    return TS_OK;
}

ts_tensor *ts_index_select(const ts_tensor *a, int dim, const ts_tensor *index)
{
    const char *op = "index_select";
    int d;
    if (ts_require_cpu(op, a) || ts_wrap_dim(op, dim, a->ndim, &d)) return NULL;
    if (index->ndim > 1) {
        char s[TS_SHAPE_STR_CAP];
        return ts_fail_null(TS_ERR_ARG, "index_select: index must be 0-D or 1-D, got shape %s",
                            ts_shape_str(index->shape, index->ndim, s, sizeof s));
    }
    ts_tensor *idx = index_as_i64(op, index);
    if (!idx) return NULL;
    int64_t n = ts_tensor_numel(idx);
    const int64_t *iv = ts_tensor_data(idx);
    int64_t shape[TS_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    ts_tensor *out = NULL;
    if (a->ndim == 0 && n != 1) {
        ts_fail(TS_ERR_ARG, "index_select: indexing a 0-dim tensor needs exactly one index, got %lld", (long long)n);
    } else if (!check_range(op, iv, n, d, a->ndim ? a->shape[d] : 1)) {
        if (a->ndim) shape[d] = n;
        out = ts_tensor_new(shape, a->ndim, a->dtype);
        if (out && take(out, a, d, iv, n)) { ts_tensor_release(out); out = NULL; }
    }
    ts_tensor_release(idx);
    return out;
}

ts_tensor *ts_embedding(const ts_tensor *weight, const ts_tensor *index)
{
    const char *op = "embedding";
    if (ts_require_cpu(op, weight)) return NULL;
    if (weight->ndim != 2) {
        char s[TS_SHAPE_STR_CAP];
        return ts_fail_null(TS_ERR_ARG, "embedding: weight must be 2-D [num_embeddings, dim], got shape %s",
                            ts_shape_str(weight->shape, weight->ndim, s, sizeof s));
    }
    if (index->ndim >= TS_MAX_DIMS)
        return ts_fail_null(TS_ERR_ARG, "embedding: index has %d dims; at most %d are supported", index->ndim, TS_MAX_DIMS - 1);
    ts_tensor *idx = index_as_i64(op, index);
    if (!idx) return NULL;
    int64_t n = ts_tensor_numel(idx);
    const int64_t *iv = ts_tensor_data(idx);
    ts_tensor *out = NULL;
    if (!check_range(op, iv, n, 0, weight->shape[0])) {
        int64_t shape[TS_MAX_DIMS];
        memcpy(shape, index->shape, sizeof(int64_t) * (size_t)index->ndim);
        shape[index->ndim] = weight->shape[1];
        out = ts_tensor_new(shape, index->ndim + 1, weight->dtype);
        if (out && take(out, weight, 0, iv, n)) { ts_tensor_release(out); out = NULL; }
    }
    ts_tensor_release(idx);
    return out;
}

/* ---- gather and scatter_add: one index per element ------------------------------ */

/* Checks the shapes of gather / scatter_add: same number of dims, and
 * index.size(k) <= a.size(k) for k != dim (and <= src.size(k) for all k). */
static ts_status check_index_shape(const char *op, const ts_tensor *a, int d, const ts_tensor *index,
                                   const ts_tensor *src)
{
    char s1[TS_SHAPE_STR_CAP], s2[TS_SHAPE_STR_CAP];
    int na = a->ndim ? a->ndim : 1, ni = index->ndim ? index->ndim : 1;
    if (na != ni)
        return ts_fail(TS_ERR_ARG, "%s: index of shape %s must have as many dims as the input of shape %s", op,
                       ts_shape_str(index->shape, index->ndim, s1, sizeof s1),
                       ts_shape_str(a->shape, a->ndim, s2, sizeof s2));
    for (int k = 0; k < index->ndim; k++) {
        if (k != d && index->shape[k] > a->shape[k])
            return ts_fail(TS_ERR_ARG, "%s: index of shape %s is larger than the input of shape %s at dim %d", op,
                           ts_shape_str(index->shape, index->ndim, s1, sizeof s1),
                           ts_shape_str(a->shape, a->ndim, s2, sizeof s2), k);
    }
    if (!src) return TS_OK;
    if ((src->ndim ? src->ndim : 1) != ni)
        return ts_fail(TS_ERR_ARG, "%s: src of shape %s must have as many dims as the index of shape %s", op,
                       ts_shape_str(src->shape, src->ndim, s1, sizeof s1),
                       ts_shape_str(index->shape, index->ndim, s2, sizeof s2));
    for (int k = 0; k < index->ndim; k++) {
        if (index->shape[k] > src->shape[k])
            return ts_fail(TS_ERR_ARG, "%s: index of shape %s is larger than src of shape %s at dim %d", op,
                           ts_shape_str(index->shape, index->ndim, s1, sizeof s1),
                           ts_shape_str(src->shape, src->ndim, s2, sizeof s2), k);
    }
    return TS_OK;
}

/* The index's positions as outer x N x inner, with offsets in one operand. */
typedef struct {
    int64_t N;            /* index size along the dim */
    int64_t dstride;      /* the operand's stride along the dim */
    layout outer, inner;
} walk;

static ts_status walk_init(walk *w, const ts_tensor *index, const ts_tensor *t, int d)
{
    int64_t ishape[TS_MAX_DIMS], istride[TS_MAX_DIMS], shape[TS_MAX_DIMS], stride[TS_MAX_DIMS];
    int nd = geometry(index, ishape, istride);
    geometry(t, shape, stride);
    w->N = ishape[d];
    w->dstride = stride[d];
    if (layout_init(&w->outer, ishape, stride, d)) return ts_last_status();
    if (layout_init(&w->inner, ishape + d + 1, stride + d + 1, nd - d - 1)) {
        layout_free(&w->outer);
        return ts_last_status();
    }
    return TS_OK;
}

static void walk_free(walk *w) { layout_free(&w->outer); layout_free(&w->inner); }

typedef struct {
    char *out;            /* contiguous, index's shape */
    const char *src;
    const int64_t *idx;   /* contiguous */
    size_t es;
    walk w;
} gather_ctx;

static inline void gather_row(char *dst, const char *src, const int64_t *iv, const layout *inner, int64_t dstride,
                              size_t es)
{
    for (int64_t j = 0; j < inner->n; j++)
        memcpy(dst + j * (int64_t)es, src + (layout_at(inner, j) + iv[j] * dstride) * (int64_t)es, es);
}

/* Rows are (o, i) pairs: inner.n output elements each. */
static void gather_rows(int64_t begin, int64_t end, void *vctx)
{
    const gather_ctx *c = vctx;
    int64_t I = c->w.inner.n;
    for (int64_t r = begin; r < end; r++) {
        int64_t o = r / c->w.N;
        const char *src = c->src + layout_at(&c->w.outer, o) * (int64_t)c->es;
        char *dst = c->out + r * I * (int64_t)c->es;
        const int64_t *iv = c->idx + r * I;
        /* constant element sizes let the compiler turn memcpy into moves */
        switch (c->es) {
        case 4: gather_row(dst, src, iv, &c->w.inner, c->w.dstride, 4); break;   /* f32, i32 */
        case 8: gather_row(dst, src, iv, &c->w.inner, c->w.dstride, 8); break;
        case 2: gather_row(dst, src, iv, &c->w.inner, c->w.dstride, 2); break;
        default: gather_row(dst, src, iv, &c->w.inner, c->w.dstride, 1); break;
        }
    }
}

ts_tensor *ts_gather(const ts_tensor *a, int dim, const ts_tensor *index)
{
    const char *op = "gather";
    int d;
    if (ts_require_cpu(op, a) || ts_wrap_dim(op, dim, a->ndim, &d)) return NULL;
    if (check_index_shape(op, a, d, index, NULL)) return NULL;
    ts_tensor *idx = index_as_i64(op, index);
    if (!idx) return NULL;
    ts_tensor *out = NULL;
    gather_ctx c = { NULL, ts_tensor_data(a), ts_tensor_data(idx), ts_dtype_size(a->dtype) };
    if (!check_range(op, c.idx, ts_tensor_numel(idx), d, a->ndim ? a->shape[d] : 1) && !walk_init(&c.w, idx, a, d)) {
        out = ts_tensor_new(index->shape, index->ndim, a->dtype);
        if (out) {
            c.out = ts_tensor_data(out);
            int64_t rows = c.w.outer.n * c.w.N, grain = row_grain(c.w.inner.n);
            if (rows > 0 && c.w.inner.n > 0) {
                if (rows < 2 * grain) gather_rows(0, rows, &c);
                else ts_parallel_for(rows, grain, gather_rows, &c);
            }
        }
        walk_free(&c.w);
    }
    ts_tensor_release(idx);
    return out;
}

typedef struct {
    char *a;
    const char *src;
    const int64_t *idx;
    ts_dtype dt;
    walk wa, ws;          /* the index's positions in a and in src */
} scatter_ctx;

static inline void add_elem(char *a, int64_t ao, const char *s, int64_t so, ts_dtype dt)
{
    switch (dt) {
    case TS_F32: ((float *)a)[ao] += ((const float *)s)[so]; break;
    case TS_F64: ((double *)a)[ao] += ((const double *)s)[so]; break;
    case TS_I64: ((int64_t *)a)[ao] = (int64_t)((uint64_t)((int64_t *)a)[ao] + (uint64_t)((const int64_t *)s)[so]); break;
    case TS_F16: case TS_BF16:
        ts_store_f64(a, dt, ao, (double)(float)(ts_load_f64(a, dt, ao) + ts_load_f64(s, dt, so)));
        break;
    case TS_BOOL: ((uint8_t *)a)[ao] = ((uint8_t *)a)[ao] | ((const uint8_t *)s)[so]; break;
    default:
        ts_store_i64(a, dt, ao, (int64_t)((uint64_t)ts_load_i64(a, dt, ao) + (uint64_t)ts_load_i64(s, dt, so)));
        break;
    }
}

/* Work items are columns (o, j) of the index; a range of columns is done
 * row by row along the dim, so each target sees its additions in index
 * order whatever the split. Different columns never hit one target. */
static void scatter_cols(int64_t begin, int64_t end, void *vctx)
{
    const scatter_ctx *c = vctx;
    int64_t N = c->wa.N, I = c->wa.inner.n;
    for (int64_t col = begin; col < end;) {
        int64_t o = col / I, j0 = col % I, j1 = I;
        if (j1 - j0 > end - col) j1 = j0 + (end - col);
        int64_t ab = layout_at(&c->wa.outer, o), sb = layout_at(&c->ws.outer, o);
        for (int64_t i = 0; i < N; i++) {
            const int64_t *iv = c->idx + (o * N + i) * I;
            int64_t srow = sb + i * c->ws.dstride;
            if (c->dt == TS_F32 && !c->wa.inner.table && !c->ws.inner.table) {
                float *a = (float *)c->a;
                const float *s = (const float *)c->src;
                int64_t as = c->wa.inner.step, ss = c->ws.inner.step, ad = c->wa.dstride;
                for (int64_t j = j0; j < j1; j++) a[ab + j * as + iv[j] * ad] += s[srow + j * ss];
            } else {
                for (int64_t j = j0; j < j1; j++)
                    add_elem(c->a, ab + layout_at(&c->wa.inner, j) + iv[j] * c->wa.dstride, c->src,
                             srow + layout_at(&c->ws.inner, j), c->dt);
            }
        }
        col += j1 - j0;
    }
}

ts_status ts_scatter_add_(ts_tensor *a, int dim, const ts_tensor *index, const ts_tensor *src)
{
    const char *op = "scatter_add";
    int d;
    if (ts_require_cpu(op, a) || ts_require_cpu(op, src) || ts_require_writable(op, a)) return ts_last_status();
    if (ts_wrap_dim(op, dim, a->ndim, &d) || check_index_shape(op, a, d, index, src)) return ts_last_status();
    if (src->dtype != a->dtype)
        return ts_fail(TS_ERR_ARG, "scatter_add: src dtype %s does not match the input's dtype %s",
                       ts_dtype_name(src->dtype), ts_dtype_name(a->dtype));
    if (has_internal_overlap(a))
        return ts_fail(TS_ERR_ARG, "scatter_add: the input has elements sharing memory (an expanded view); clone() it first");
    ts_tensor *idx = index_as_i64(op, index);
    if (!idx) return ts_last_status();
    scatter_ctx c = { ts_tensor_data(a), ts_tensor_data(src), ts_tensor_data(idx), a->dtype };
    ts_status st = check_range(op, c.idx, ts_tensor_numel(idx), d, a->ndim ? a->shape[d] : 1);
    if (!st) st = walk_init(&c.wa, idx, a, d);
    if (!st) {
        st = walk_init(&c.ws, idx, src, d);
        if (!st) {
            int64_t cols = c.wa.outer.n * c.wa.inner.n, grain = row_grain(c.wa.N);
            if (cols > 0 && c.wa.N > 0) {
                if (cols < 2 * grain) scatter_cols(0, cols, &c);
                else ts_parallel_for(cols, grain, scatter_cols, &c);
            }
            walk_free(&c.ws);
        }
        walk_free(&c.wa);
    }
    ts_tensor_release(idx);
    return st;
}

ts_tensor *ts_scatter_add(const ts_tensor *a, int dim, const ts_tensor *index, const ts_tensor *src)
{
    ts_tensor *out = ts_clone(a);
    if (out && ts_scatter_add_(out, dim, index, src)) { ts_tensor_release(out); return NULL; }
    return out;
}

/* ---- one_hot ------------------------------------------------------------------------ */

ts_tensor *ts_one_hot(const ts_tensor *index, int64_t num_classes)
{
    const char *op = "one_hot";
    if (index->ndim >= TS_MAX_DIMS)
        return ts_fail_null(TS_ERR_ARG, "one_hot: index has %d dims; at most %d are supported", index->ndim, TS_MAX_DIMS - 1);
    if (num_classes < -1)
        return ts_fail_null(TS_ERR_ARG, "one_hot: num_classes must be -1 (infer) or >= 0, got %lld", (long long)num_classes);
    ts_tensor *idx = index_as_i64(op, index);
    if (!idx) return NULL;
    int64_t n = ts_tensor_numel(idx), maxv = -1;
    const int64_t *iv = ts_tensor_data(idx);
    ts_tensor *out = NULL;
    for (int64_t i = 0; i < n; i++) {
        if (iv[i] < 0) {
            ts_fail(TS_ERR_ARG, "one_hot: class values must be non-negative, got %lld", (long long)iv[i]);
            goto done;
        }
        if (iv[i] > maxv) maxv = iv[i];
    }
    if (num_classes == -1) {
        if (n == 0) {
            ts_fail(TS_ERR_ARG, "one_hot: cannot infer the number of classes from an empty index; pass num_classes");
            goto done;
        }
        num_classes = maxv + 1;
    } else if (maxv >= num_classes) {
        ts_fail(TS_ERR_ARG, "one_hot: class value %lld is out of range for %lld classes (valid: 0..%lld)",
                (long long)maxv, (long long)num_classes, (long long)(num_classes - 1));
        goto done;
    }
    int64_t shape[TS_MAX_DIMS];
    memcpy(shape, index->shape, sizeof(int64_t) * (size_t)index->ndim);
    shape[index->ndim] = num_classes;
    out = ts_tensor_zeros(shape, index->ndim + 1, TS_I64);
    if (out) {
        int64_t *o = ts_tensor_data(out);
        for (int64_t i = 0; i < n; i++) o[i * num_classes + iv[i]] = 1;
    }
done:
    ts_tensor_release(idx);
    return out;
}

/* ---- masked_select and masked_fill -------------------------------------------- */

static ts_status check_mask(const char *op, const ts_tensor *a, const ts_tensor *mask, int64_t *shape, int *nd)
{
    if (mask->dtype != TS_BOOL)
        return ts_fail(TS_ERR_ARG, "%s: mask must have dtype bool, got %s", op, ts_dtype_name(mask->dtype));
    if (ts_require_cpu(op, a) || ts_require_cpu(op, mask)) return ts_last_status();
    return ts_broadcast_shapes(op, a->shape, a->ndim, mask->shape, mask->ndim, shape, nd);
}

typedef struct { int64_t count; char *out; size_t es; } select_ctx;

static void count_loop(char **p, const int64_t *s, int64_t n, void *vctx)
{
    select_ctx *c = vctx;
    for (int64_t i = 0; i < n; i++) c->count += p[1][i * s[1]] != 0;
}

static void select_loop(char **p, const int64_t *s, int64_t n, void *vctx)
{
    select_ctx *c = vctx;
    for (int64_t i = 0; i < n; i++) {
        if (!p[1][i * s[1]]) continue;
        memcpy(c->out + c->count * (int64_t)c->es, p[0] + i * s[0], c->es);
        c->count++;
    }
}

ts_tensor *ts_masked_select(const ts_tensor *a, const ts_tensor *mask)
{
    int64_t shape[TS_MAX_DIMS];
    int nd;
    if (check_mask("masked_select", a, mask, shape, &nd)) return NULL;
    ts_iter it;
    const ts_tensor *ops[2] = { a, mask };
    ts_iter_init(&it, 2, ops, shape, nd);
    select_ctx c = { 0, NULL, ts_dtype_size(a->dtype) };
    if (it.numel) ts_iter_run_range(&it, count_loop, &c, 0, it.numel);
    int64_t n = c.count;
    ts_tensor *out = ts_tensor_new(&n, 1, a->dtype);
    if (!out || n == 0) return out;
    c.count = 0;
    c.out = ts_tensor_data(out);
    ts_iter_run_range(&it, select_loop, &c, 0, it.numel);
    return out;
}

typedef struct { size_t es; _Alignas(8) char value[8]; } mfill_ctx;

static void mfill_loop(char **p, const int64_t *s, int64_t n, void *vctx)
{
    const mfill_ctx *c = vctx;
    if (c->es == 4) {
        uint32_t v;
        memcpy(&v, c->value, 4);
        for (int64_t i = 0; i < n; i++)
            if (p[1][i * s[1]]) memcpy(p[0] + i * s[0], &v, 4);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        if (p[1][i * s[1]]) memcpy(p[0] + i * s[0], c->value, c->es);
}

ts_tensor *ts_masked_fill(const ts_tensor *a, const ts_tensor *mask, double value)
{
    int64_t shape[TS_MAX_DIMS];
    int nd;
    if (check_mask("masked_fill", a, mask, shape, &nd)) return NULL;
    ts_tensor *out = ts_tensor_new(shape, nd, a->dtype);
    if (!out) return NULL;
    if (ts_copy_(out, a)) { ts_tensor_release(out); return NULL; }
    mfill_ctx c = { ts_dtype_size(a->dtype) };
    ts_store_f64(c.value, a->dtype, 0, value);
    if (ts_tensor_numel(out) == 0) return out;
    ts_iter it;
    const ts_tensor *ops[2] = { out, mask };
    ts_iter_init(&it, 2, ops, shape, nd);
    ts_iter_run(&it, mfill_loop, &c, TS_GRAIN_ELEMENTWISE);
    return out;
}
