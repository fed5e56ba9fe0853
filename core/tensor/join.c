/* join.c — joining, splitting and rearranging: cat, stack, split,
 * split_sizes, chunk (views), pad (constant / reflect / replicate /
 * circular), flip, repeat, tril and triu.
 *
 * pad, flip and repeat share one kernel: each output coordinate along each
 * dim maps to an input coordinate (or to "fill" for constant padding), and
 * rows of the last dim move with memcpy where the map runs consecutively.
 * cat copies each input into a narrowed view of the result with ts_copy_,
 * which converts dtypes and handles strides and threads. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- cat and stack ---------------------------------------------------------------- */

/* PyTorch's legacy rule: 1-D empty tensors are skipped by cat. */
static bool legacy_empty(const ts_tensor *t) { return t->ndim == 1 && t->shape[0] == 0; }

/* Checks t against the reference shape (all dims but d equal). */
static ts_status check_cat_shape(const ts_tensor *r, int ri, const ts_tensor *t, int ti, int d)
{
    char s1[TS_SHAPE_STR_CAP], s2[TS_SHAPE_STR_CAP];
    if (t->ndim != r->ndim)
        return ts_fail(TS_ERR_ARG, "cat: tensors must have the same number of dims: tensor %d has shape %s, tensor %d has %s",
                       ri, ts_shape_str(r->shape, r->ndim, s1, sizeof s1), ti, ts_shape_str(t->shape, t->ndim, s2, sizeof s2));
    for (int k = 0; k < t->ndim; k++) {
        if (k == d || t->shape[k] == r->shape[k]) continue;
        return ts_fail(TS_ERR_ARG, "cat: sizes must match except in dim %d: tensor %d has shape %s, tensor %d has %s "
                       "(dim %d: %lld vs %lld)", d, ri, ts_shape_str(r->shape, r->ndim, s1, sizeof s1), ti,
                       ts_shape_str(t->shape, t->ndim, s2, sizeof s2), k, (long long)r->shape[k], (long long)t->shape[k]);
    }
    return TS_OK;
}

ts_tensor *ts_cat(ts_tensor *const *ts, int n, int dim)
{
    if (!ts || n <= 0) return ts_fail_null(TS_ERR_ARG, "cat: expected a non-empty list of tensors");
    int ri = 0;
    while (ri < n - 1 && legacy_empty(ts[ri])) ri++;
    const ts_tensor *r = ts[ri];
    if (r->ndim == 0)
        return ts_fail_null(TS_ERR_ARG, "cat: zero-dimensional tensor (at position %d) cannot be concatenated", ri);
    int d;
    if (ts_wrap_dim("cat", dim, r->ndim, &d)) return NULL;
    ts_dtype dt = r->dtype;
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        const ts_tensor *t = ts[i];
        dt = ts_dtype_promote(dt, t->dtype);
        if (ts_require_same_device("cat", r, t)) return NULL;
        if (legacy_empty(t) && r->ndim != 1) continue;
        if (check_cat_shape(r, ri, t, i, d)) return NULL;
        total += t->shape[d];
    }
    int64_t shape[TS_MAX_DIMS];
    memcpy(shape, r->shape, sizeof shape);
    shape[d] = total;
    ts_tensor *out = ts_tensor_new_on(r, shape, r->ndim, dt);
    if (!out) return NULL;
    int64_t pos = 0;
    for (int i = 0; i < n; i++) {
        const ts_tensor *t = ts[i];
        if ((legacy_empty(t) && r->ndim != 1) || t->shape[d] == 0) continue;
        ts_tensor *part = ts_narrow(out, d, pos, t->shape[d]);
        ts_status st = part ? ts_copy_(part, t) : ts_last_status();
        ts_tensor_release(part);
        if (st) { ts_tensor_release(out); return NULL; }
        pos += t->shape[d];
    }
    return out;
}

ts_tensor *ts_stack(ts_tensor *const *ts, int n, int dim)
{
    if (!ts || n <= 0) return ts_fail_null(TS_ERR_ARG, "stack: expected a non-empty list of tensors");
    const ts_tensor *r = ts[0];
    if (r->ndim >= TS_MAX_DIMS) return ts_fail_null(TS_ERR_ARG, "stack: tensors already have %d dims", TS_MAX_DIMS);
    int d;
    if (ts_wrap_dim("stack", dim, r->ndim + 1, &d)) return NULL;
    for (int i = 1; i < n; i++) {
        const ts_tensor *t = ts[i];
        if (t->ndim == r->ndim && memcmp(t->shape, r->shape, sizeof(int64_t) * (size_t)r->ndim) == 0) continue;
        char s1[TS_SHAPE_STR_CAP], s2[TS_SHAPE_STR_CAP];
        return ts_fail_null(TS_ERR_ARG, "stack: expects tensors of equal shape, got %s at entry 0 and %s at entry %d",
                            ts_shape_str(r->shape, r->ndim, s1, sizeof s1), ts_shape_str(t->shape, t->ndim, s2, sizeof s2), i);
    }
    ts_tensor **views = calloc((size_t)n, sizeof *views);
    if (!views) return ts_fail_null(TS_ERR_MEMORY, "out of memory (stack)");
    ts_tensor *out = NULL;
    int made = 0;
    while (made < n && (views[made] = ts_unsqueeze(ts[made], d))) made++;
    if (made == n) out = ts_cat(views, n, d);
    for (int i = 0; i < made; i++) ts_tensor_release(views[i]);
    free(views);
    return out;
}

/* ---- split and chunk ----------------------------------------------------------------- */

/* Views of consecutive `sizes[i]` along dim d, into a malloc'd array. */
static ts_status narrow_all(const char *op, const ts_tensor *a, const int64_t *sizes, int n, int d, ts_tensor ***outs)
{
    ts_tensor **v = malloc(sizeof *v * (size_t)(n > 0 ? n : 1));
    if (!v) return ts_fail(TS_ERR_MEMORY, "%s: out of memory", op);
    int64_t pos = 0;
    for (int i = 0; i < n; i++) {
        v[i] = ts_narrow(a, d, pos, sizes[i]);
        if (!v[i]) {
            while (i-- > 0) ts_tensor_release(v[i]);
            free(v);
            return ts_last_status();
        }
        pos += sizes[i];
    }
    *outs = v;
    return TS_OK;
}

static ts_status split_dim(const char *op, const ts_tensor *a, int dim, int *d)
{
    if (a->ndim == 0) return ts_fail(TS_ERR_ARG, "%s: cannot split a 0-dim tensor", op);
    return ts_wrap_dim(op, dim, a->ndim, d);
}

ts_status ts_split(const ts_tensor *a, int64_t size, int dim, ts_tensor ***outs, int *n)
{
    int d;
    if (split_dim("split", a, dim, &d)) return ts_last_status();
    int64_t len = a->shape[d];
    if (size < 0 || (size == 0 && len != 0))
        return ts_fail(TS_ERR_ARG, "split: split size must be positive (0 only for an empty dim), got %lld for dim %d of size %lld",
                       (long long)size, d, (long long)len);
    int64_t count = size == 0 ? 1 : (len + size - 1) / size;
    if (count < 1) count = 1;
    if (count > 1 << 24) return ts_fail(TS_ERR_ARG, "split: %lld pieces is too many", (long long)count);
    int64_t *sizes = malloc(sizeof *sizes * (size_t)count);
    if (!sizes) return ts_fail(TS_ERR_MEMORY, "split: out of memory");
    for (int64_t i = 0; i < count; i++) sizes[i] = len - i * size < size ? len - i * size : size;
    ts_status st = narrow_all("split", a, sizes, (int)count, d, outs);
    free(sizes);
    if (!st) *n = (int)count;
    return st;
}

ts_status ts_split_sizes(const ts_tensor *a, const int64_t *sizes, int nsizes, int dim, ts_tensor ***outs)
{
    int d;
    if (split_dim("split_sizes", a, dim, &d)) return ts_last_status();
    if (nsizes < 0) return ts_fail(TS_ERR_ARG, "split_sizes: negative count %d", nsizes);
    int64_t sum = 0;
    for (int i = 0; i < nsizes; i++) {
        if (sizes[i] < 0)
            return ts_fail(TS_ERR_ARG, "split_sizes: size %lld at position %d is negative", (long long)sizes[i], i);
        sum += sizes[i];
    }
    if (sum != a->shape[d])
        return ts_fail(TS_ERR_ARG, "split_sizes: sizes sum to %lld but dim %d has size %lld", (long long)sum, d,
                       (long long)a->shape[d]);
    return narrow_all("split_sizes", a, sizes, nsizes, d, outs);
}

ts_status ts_chunk(const ts_tensor *a, int chunks, int dim, ts_tensor ***outs, int *n)
{
    int d;
    if (split_dim("chunk", a, dim, &d)) return ts_last_status();
    if (chunks <= 0) return ts_fail(TS_ERR_ARG, "chunk: number of chunks must be positive, got %d", chunks);
    int64_t len = a->shape[d];
    if (len == 0) {
        /* like PyTorch: `chunks` empty pieces */
        int64_t *zeros = calloc((size_t)chunks, sizeof *zeros);
        if (!zeros) return ts_fail(TS_ERR_MEMORY, "chunk: out of memory");
        ts_status st = narrow_all("chunk", a, zeros, chunks, d, outs);
        free(zeros);
        if (!st) *n = chunks;
        return st;
    }
    return ts_split(a, (len + chunks - 1) / chunks, d, outs, n);
}

/* ---- the remap kernel: pad, flip, repeat ------------------------------------------------ */

/* out[o] = src[maps[0][o_0], ..., maps[nd-1][o_nd-1]], or `fill` where some
 * map entry is -1. out is contiguous; strides are the source's (elements). */
typedef struct {
    char *out;
    const char *src;
    size_t es;
    int nd;
    const int64_t *shape, *stride;   /* output shape, source strides */
    int64_t *const *maps;
    char fill[8];
    /* the last dim as segments: a fill run (src < 0) or a consecutive run */
    int nseg;
    int64_t *seg_dst, *seg_src, *seg_len;
} remap_ctx;

static inline void remap_row(char *dst, const char *src, const int64_t *map, int64_t stride, int64_t len,
                             const char *fill, size_t es)
{
    for (int64_t l = 0; l < len; l++) {
        int64_t m = map[l];
        memcpy(dst + l * (int64_t)es, m < 0 ? fill : src + m * stride * (int64_t)es, es);
    }
}

static void fill_row(char *dst, int64_t len, const char *fill, size_t es)
{
    for (int64_t l = 0; l < len; l++) memcpy(dst + l * (int64_t)es, fill, es);
}

static void remap_rows(int64_t begin, int64_t end, void *vctx)
{
    const remap_ctx *c = vctx;
    int nd = c->nd;
    int64_t len = c->shape[nd - 1], ls = c->stride[nd - 1];
    int64_t es = (int64_t)c->es;
    const int64_t *lmap = c->maps[nd - 1];
    for (int64_t r = begin; r < end; r++) {
        int64_t rem = r, base = 0;
        bool filled = false;
        for (int k = nd - 2; k >= 0; k--) {
            int64_t m = c->maps[k][rem % c->shape[k]];
            rem /= c->shape[k];
            if (m < 0) filled = true;
            else base += m * c->stride[k];
        }
        char *dst = c->out + r * len * es;
        if (filled) { fill_row(dst, len, c->fill, c->es); continue; }
        const char *src = c->src + base * es;
        if (c->nseg) {
            for (int s = 0; s < c->nseg; s++) {
                if (c->seg_src[s] < 0) fill_row(dst + c->seg_dst[s] * es, c->seg_len[s], c->fill, c->es);
                else memcpy(dst + c->seg_dst[s] * es, src + c->seg_src[s] * es, (size_t)(c->seg_len[s] * es));
            }
            continue;
        }
        switch (c->es) {   /* constant sizes let the compiler inline the moves */
        case 4: remap_row(dst, src, lmap, ls, len, c->fill, 4); break;   /* f32, i32 */
        case 8: remap_row(dst, src, lmap, ls, len, c->fill, 8); break;
        case 2: remap_row(dst, src, lmap, ls, len, c->fill, 2); break;
        default: remap_row(dst, src, lmap, ls, len, c->fill, 1); break;
        }
    }
}

/* Splits the last dim's map into runs when the source is contiguous along it
 * and the runs are long enough for memcpy to pay. */
static ts_status plan_segments(remap_ctx *c)
{
    c->nseg = 0;
    int64_t len = c->shape[c->nd - 1];
    const int64_t *map = c->maps[c->nd - 1];
    if (c->stride[c->nd - 1] != 1 && len > 1) return TS_OK;
    int nseg = 0;
    for (int64_t l = 0; l < len; l++) {
        bool cont = l > 0 && ((map[l] < 0 && map[l - 1] < 0) || (map[l] >= 0 && map[l - 1] >= 0 && map[l] == map[l - 1] + 1));
        if (!cont) nseg++;
    }
    if (nseg == 0 || (int64_t)nseg * 8 > len) return TS_OK;
    int64_t *buf = malloc(sizeof(int64_t) * 3 * (size_t)nseg);
    if (!buf) return ts_fail(TS_ERR_MEMORY, "out of memory (remap segments)");
    c->seg_dst = buf;
    c->seg_src = buf + nseg;
    c->seg_len = buf + 2 * nseg;
    int s = -1;
    for (int64_t l = 0; l < len; l++) {
        bool cont = l > 0 && ((map[l] < 0 && map[l - 1] < 0) || (map[l] >= 0 && map[l - 1] >= 0 && map[l] == map[l - 1] + 1));
        if (!cont) {
            s++;
            c->seg_dst[s] = l;
            c->seg_src[s] = map[l] < 0 ? -1 : map[l];
            c->seg_len[s] = 0;
        }
        c->seg_len[s]++;
    }
    c->nseg = nseg;
    return TS_OK;
}

/* Runs the remap of `src` (data pointer, element strides, nd dims) into
 * the contiguous `out`; fill is one element of out's dtype (may be NULL
 * when no map has -1). */
static ts_status remap(ts_tensor *out, const char *src, const int64_t *stride, int64_t *const *maps, const void *fill)
{
    remap_ctx c = { ts_tensor_data(out), src, ts_dtype_size(out->dtype), out->ndim, out->shape, stride, maps };
    if (fill) memcpy(c.fill, fill, c.es);
    int64_t numel = ts_tensor_numel(out);
    if (numel == 0) return TS_OK;
    if (out->ndim == 0) { memcpy(c.out, src, c.es); return TS_OK; }
    if (plan_segments(&c)) return ts_last_status();
    int64_t len = out->shape[out->ndim - 1], rows = numel / len;
    int64_t grain = TS_GRAIN_ELEMENTWISE / len;
    if (grain < 1) grain = 1;
    if (rows < 2 * grain) remap_rows(0, rows, &c);
    else ts_parallel_for(rows, grain, remap_rows, &c);
    if (c.nseg) free(c.seg_dst);
    return TS_OK;
}

/* One map array per dim of `shape`, in a single allocation. */
static int64_t **alloc_maps(const int64_t *shape, int nd)
{
    int64_t total = 0;
    for (int k = 0; k < nd; k++) total += shape[k];
    int64_t **maps = malloc(sizeof(int64_t *) * TS_MAX_DIMS + sizeof(int64_t) * (size_t)(total + 1));
    if (!maps) return ts_fail_null(TS_ERR_MEMORY, "out of memory (index maps)");
    int64_t *p = (int64_t *)(maps + TS_MAX_DIMS);
    for (int k = 0; k < nd; k++) { maps[k] = p; p += shape[k]; }
    return maps;
}

/* ---- pad ------------------------------------------------------------------------------- */

static const char *const pad_mode_names[] = { "constant", "reflect", "replicate", "circular" };

/* Source coordinate of output coordinate o along a dim of `size` padded by
 * (lo, hi); -1 means "fill". Negative pads crop. Like PyTorch, circular
 * padding wraps around the cropped input, reflect and replicate around the
 * original edges. */
static int64_t pad_source(int64_t o, int64_t lo, int64_t hi, int64_t size, ts_pad_mode mode)
{
    int64_t x = o - lo;
    if (mode == TS_PAD_CIRCULAR) {
        int64_t start = lo < 0 ? -lo : 0, kept = size - start - (hi < 0 ? -hi : 0);
        int64_t y = o - (lo > 0 ? lo : 0);
        return start + ((y % kept) + kept) % kept;
    }
    if (x >= 0 && x < size) return x;
    switch (mode) {
    case TS_PAD_REFLECT: return x < 0 ? -x : 2 * (size - 1) - x;
    case TS_PAD_REPLICATE: return x < 0 ? 0 : size - 1;
    default: return -1;
    }
}

static ts_status check_pad_dim(ts_pad_mode mode, int d, int64_t size, int64_t lo, int64_t hi)
{
    const char *name = pad_mode_names[mode];
    if (size + lo + hi < 0)
        return ts_fail(TS_ERR_ARG, "pad: dim %d of size %lld padded by (%lld, %lld) would have a negative size", d,
                       (long long)size, (long long)lo, (long long)hi);
    if (mode == TS_PAD_CONSTANT || (lo <= 0 && hi <= 0)) return TS_OK;
    /* here some pad is positive: the source must not be empty */
    if (mode == TS_PAD_REFLECT && (lo >= size || hi >= size))
        return ts_fail(TS_ERR_ARG, "pad: %s padding (%lld, %lld) must be less than the size %lld of dim %d", name,
                       (long long)lo, (long long)hi, (long long)size, d);
    int64_t kept = size - (lo < 0 ? -lo : 0) - (hi < 0 ? -hi : 0);
    if (mode == TS_PAD_CIRCULAR && (lo > kept || hi > kept))
        return ts_fail(TS_ERR_ARG, "pad: %s padding (%lld, %lld) wraps around dim %d of size %lld more than once", name,
                       (long long)lo, (long long)hi, d, (long long)size);
    if (size == 0)
        return ts_fail(TS_ERR_ARG, "pad: %s padding of dim %d needs a non-empty input", name, d);
    return TS_OK;
}

ts_tensor *ts_pad(const ts_tensor *a, const int64_t *pads, int npads, ts_pad_mode mode, double value)
{
    if (ts_require_cpu("pad", a)) return NULL;
    if ((unsigned)mode > TS_PAD_CIRCULAR) return ts_fail_null(TS_ERR_ARG, "pad: invalid mode %d", (int)mode);
    if (npads < 0 || npads % 2 || npads / 2 > a->ndim)
        return ts_fail_null(TS_ERR_ARG, "pad: padding length must be even and at most 2 * ndim (got %d for %d dims)",
                            npads, a->ndim);
    int64_t shape[TS_MAX_DIMS], lo[TS_MAX_DIMS] = {0}, hi[TS_MAX_DIMS] = {0};
    memcpy(shape, a->shape, sizeof shape);
    for (int k = 0; k < npads / 2; k++) {
        int d = a->ndim - 1 - k;
        if (check_pad_dim(mode, d, a->shape[d], pads[2 * k], pads[2 * k + 1])) return NULL;
        lo[d] = pads[2 * k];
        hi[d] = pads[2 * k + 1];
        shape[d] = a->shape[d] + pads[2 * k] + pads[2 * k + 1];
    }
    ts_tensor *out = ts_tensor_new(shape, a->ndim, a->dtype);
    int64_t **maps = out ? alloc_maps(shape, a->ndim) : NULL;
    if (!maps) { ts_tensor_release(out); return NULL; }
    for (int d = 0; d < a->ndim; d++)
        for (int64_t o = 0; o < shape[d]; o++) maps[d][o] = pad_source(o, lo[d], hi[d], a->shape[d], mode);
    _Alignas(8) char fill[8];
    ts_store_f64(fill, a->dtype, 0, value);
    ts_status st = remap(out, ts_tensor_data(a), a->stride, maps, fill);
    free(maps);
    if (st) { ts_tensor_release(out); return NULL; }
    return out;
}

/* ---- flip and repeat ------------------------------------------------------------------- */

ts_tensor *ts_flip(const ts_tensor *a, const int *dims, int ndims)
{
    bool mask[TS_MAX_DIMS];
    if (ts_require_cpu("flip", a)) return NULL;
    if (ndims == 0) return ts_clone(a);
    if (ts_dims_mask("flip", dims, ndims, a->ndim, mask)) return NULL;
    ts_tensor *out = ts_tensor_new(a->shape, a->ndim, a->dtype);
    int64_t **maps = out ? alloc_maps(a->shape, a->ndim) : NULL;
    if (!maps) { ts_tensor_release(out); return NULL; }
    for (int d = 0; d < a->ndim; d++)
        for (int64_t o = 0; o < a->shape[d]; o++) maps[d][o] = mask[d] ? a->shape[d] - 1 - o : o;
    ts_status st = remap(out, ts_tensor_data(a), a->stride, maps, NULL);
    free(maps);
    if (st) { ts_tensor_release(out); return NULL; }
    return out;
}

ts_tensor *ts_repeat(const ts_tensor *a, const int64_t *reps, int nreps)
{
    if (ts_require_cpu("repeat", a)) return NULL;
    if (nreps < a->ndim)
        return ts_fail_null(TS_ERR_ARG, "repeat: %d repeat counts given for a tensor with %d dims (need at least %d)",
                            nreps, a->ndim, a->ndim);
    if (nreps > TS_MAX_DIMS) return ts_fail_null(TS_ERR_ARG, "repeat: %d dims (at most %d)", nreps, TS_MAX_DIMS);
    int lead = nreps - a->ndim;
    int64_t src_shape[TS_MAX_DIMS], stride[TS_MAX_DIMS], shape[TS_MAX_DIMS];
    for (int k = 0; k < nreps; k++) {
        if (reps[k] < 0) return ts_fail_null(TS_ERR_ARG, "repeat: count %lld at position %d is negative", (long long)reps[k], k);
        src_shape[k] = k < lead ? 1 : a->shape[k - lead];
        stride[k] = k < lead ? 0 : a->stride[k - lead];
        shape[k] = src_shape[k] * reps[k];
    }
    ts_tensor *out = ts_tensor_new(shape, nreps, a->dtype);
    int64_t **maps = out ? alloc_maps(shape, nreps) : NULL;
    if (!maps) { ts_tensor_release(out); return NULL; }
    for (int d = 0; d < nreps; d++)
        for (int64_t o = 0; o < shape[d]; o++) maps[d][o] = o % src_shape[d];
    ts_status st = remap(out, ts_tensor_data(a), stride, maps, NULL);
    free(maps);
    if (st) { ts_tensor_release(out); return NULL; }
    return out;
}

/* ---- tril and triu ----------------------------------------------------------------------- */

typedef struct { char *data; int64_t rows, cols, diagonal; size_t es; bool lower; } tri_ctx;

/* Zeroes, in each row r (row i of its matrix), the part outside the triangle. */
static void tri_rows(int64_t begin, int64_t end, void *vctx)
{
    const tri_ctx *c = vctx;
    for (int64_t r = begin; r < end; r++) {
        int64_t i = r % c->rows, lo, hi;     /* zero columns [lo, hi) */
        if (c->lower) { lo = i + c->diagonal + 1; hi = c->cols; }
        else { lo = 0; hi = i + c->diagonal; }
        if (lo < 0) lo = 0;
        if (hi > c->cols) hi = c->cols;
        if (lo < hi) memset(c->data + (r * c->cols + lo) * (int64_t)c->es, 0, (size_t)(hi - lo) * c->es);
    }
}

static ts_tensor *triangle(const char *op, const ts_tensor *a, int64_t diagonal, bool lower)
{
    if (ts_require_cpu(op, a)) return NULL;
    if (a->ndim < 2) return ts_fail_null(TS_ERR_ARG, "%s: input must have at least 2 dims, got %d", op, a->ndim);
    ts_tensor *out = ts_tensor_new(a->shape, a->ndim, a->dtype);
    if (!out) return NULL;
    if (ts_copy_(out, a)) { ts_tensor_release(out); return NULL; }
    int64_t cols = a->shape[a->ndim - 1];
    tri_ctx c = { ts_tensor_data(out), a->shape[a->ndim - 2], cols, diagonal, ts_dtype_size(a->dtype), lower };
    int64_t rows = cols ? ts_tensor_numel(out) / cols : 0;
    int64_t grain = TS_GRAIN_ELEMENTWISE / (cols > 0 ? cols : 1);
    if (grain < 1) grain = 1;
    if (rows < 2 * grain) tri_rows(0, rows, &c);
    else ts_parallel_for(rows, grain, tri_rows, &c);
    return out;
}

ts_tensor *ts_tril(const ts_tensor *a, int64_t diagonal) { return triangle("tril", a, diagonal, true); }
ts_tensor *ts_triu(const ts_tensor *a, int64_t diagonal) { return triangle("triu", a, diagonal, false); }
