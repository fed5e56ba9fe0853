/* ag_sort.c — recording wrappers and backward formulas of the ops along one
 * dim: max/min with indices, sort and topk (the values' gradient goes back
 * to the positions the indices name, through scatter_add; the indices get
 * none; ties in max/min give it all to the first occurrence, as PyTorch),
 * cumsum and cumprod (one scan kernel per line, parallel over lines;
 * cumprod's needs no division, so it is exact also where inputs are 0). */
#include "agx.h"
#include "torsh/autograd_ops.h"

#include <stdlib.h>
#include <string.h>

static ts_status finish_one(ts_node *n, ts_tensor *r, ts_tensor **gi)
{
    gi[0] = r ? ag_finish(n, 0, r) : NULL;
    ts_tensor_release(r);
    return gi[0] ? TS_OK : ts_last_status();
}

/* ---- values picked by indices: max/min along a dim, sort, topk ---------------------- */

/* i[0]: dim; i[1]: 1 when the outputs lost that dim (keepdim = false);
 * saved[0]: the indices */
static ts_status picked_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    const ts_tensor *g = go[0], *idx = n->saved[0];
    int d = (int)n->i[0];
    if (n->in_ndim[0] == 0) return finish_one(n, (ts_tensor_retain((ts_tensor *)g), (ts_tensor *)g), gi);
    ts_tensor *gk = NULL, *ik = NULL;
    if (n->i[1]) {
        gk = ts_unsqueeze(g, d);
        ik = ts_unsqueeze(idx, d);
    }
    ts_tensor *z = NULL;
    if (!n->i[1] || (gk && ik)) {
        z = ts_tensor_zeros(n->in_shape[0], n->in_ndim[0], g->dtype);
        if (z && ts_scatter_add_(z, d, ik ? ik : idx, gk ? gk : g)) { ts_tensor_release(z); z = NULL; }
    }
    ts_tensor_release(gk);
    ts_tensor_release(ik);
    return finish_one(n, z, gi);
}

/* Records values (from a, with indices along dim) and returns the status;
 * on failure releases both results and clears them. */
static ts_status record_picked(const char *name, const ts_tensor *a, int dim, bool squeezed, ts_tensor **values,
                               ts_tensor **indices)
{
    const ts_tensor *in[1] = { a };
    if (!ts_dtype_is_float(a->dtype) || !ts_ag_needed(1, in)) return TS_OK;
    int d = 0;
    if (a->ndim) ts_wrap_dim(name, dim, a->ndim, &d);
    ts_node *n = ts_node_new(name, picked_backward, 1, in, 1);
    if (n) {
        n->i[0] = d;
        n->i[1] = squeezed && a->ndim > 0;
    }
    if (n && ts_node_save(n, 0, *indices)) { ts_node_release(n); n = NULL; }
    *values = ag_attach(n, *values, 0);
    if (*values) return TS_OK;
    ts_tensor_release(*indices);
    *indices = NULL;
    return ts_last_status();
}

ts_status ts_ag_max_dim(const ts_tensor *a, int dim, bool keepdim, ts_tensor **values, ts_tensor **indices)
{
    ts_status st = ts_max_dim(a, dim, keepdim, values, indices);
    return st ? st : record_picked("max", a, dim, !keepdim, values, indices);
}

ts_status ts_ag_min_dim(const ts_tensor *a, int dim, bool keepdim, ts_tensor **values, ts_tensor **indices)
{
    ts_status st = ts_min_dim(a, dim, keepdim, values, indices);
    return st ? st : record_picked("min", a, dim, !keepdim, values, indices);
}

ts_status ts_ag_sort(const ts_tensor *a, int dim, bool descending, ts_tensor **values, ts_tensor **indices)
{
    ts_status st = ts_sort(a, dim, descending, values, indices);
    return st ? st : record_picked("sort", a, dim, false, values, indices);
}

ts_status ts_ag_topk(const ts_tensor *a, int64_t k, int dim, bool largest, bool sorted,
                     ts_tensor **values, ts_tensor **indices)
{
    ts_status st = ts_topk(a, k, dim, largest, sorted, values, indices);
    return st ? st : record_picked("topk", a, dim, false, values, indices);
}

/* ---- cumsum and cumprod: one backward scan per line ------------------------------------ */

/* cumsum: the gradient of x_k is S_k = sum_{i >= k} g_i.
 * cumprod: with y_i = x_0 ... x_i, the gradient of x_k is
 *     sum_{i >= k} g_i prod_{j <= i, j != k} x_j = (x_0 ... x_{k-1}) * S_k,
 *     S_k = g_k + x_{k+1} S_{k+1}   (S_{n-1} = g_{n-1}),
 * one backward and one forward pass per line with no division.
 * Lines of x, g and the result are contiguous [outer, n, inner] blocks;
 * sums are in f64. */
typedef struct {
    const void *x;         /* cumprod's input; NULL for cumsum */
    const void *g;
    void *r;
    bool f32;
    int64_t n, inner;
    int failed;
} scan_ctx;

static inline double at(const void *p, bool f32, int64_t i) { return f32 ? ((const float *)p)[i] : ((const double *)p)[i]; }

static inline void put(void *p, bool f32, int64_t i, double v)
{
    if (f32) ((float *)p)[i] = (float)v;
    else ((double *)p)[i] = v;
}

static void cumsum_lines(int64_t begin, int64_t end, void *vctx)
{
    const scan_ctx *c = vctx;
    int64_t n = c->n, I = c->inner;
    for (int64_t line = begin; line < end; line++) {
        int64_t base = line / I * n * I + line % I;
        double acc = 0;
        for (int64_t k = n - 1; k >= 0; k--) {
            acc += at(c->g, c->f32, base + k * I);
            put(c->r, c->f32, base + k * I, acc);
        }
    }
}

static void cumprod_lines(int64_t begin, int64_t end, void *vctx)
{
    scan_ctx *c = vctx;
    int64_t n = c->n, I = c->inner;
    double *s = malloc(sizeof *s * (size_t)n);
    if (!s) { __atomic_store_n(&c->failed, 1, __ATOMIC_RELAXED); return; }
    for (int64_t line = begin; line < end; line++) {
        int64_t base = line / I * n * I + line % I;
        double acc = 0, xnext = 0;
        for (int64_t k = n - 1; k >= 0; k--) {
            acc = at(c->g, c->f32, base + k * I) + xnext * acc;
            s[k] = acc;
            xnext = at(c->x, c->f32, base + k * I);
        }
        double prefix = 1;
        for (int64_t k = 0; k < n; k++) {
            put(c->r, c->f32, base + k * I, prefix * s[k]);
            prefix *= at(c->x, c->f32, base + k * I);
        }
    }
    free(s);
}

/* A contiguous copy of t in dt (t itself, retained, when it already is). */
static ts_tensor *as_contiguous(const ts_tensor *t, ts_dtype dt)
{
    return t->dtype == dt ? ts_contiguous(t) : ts_to_dtype(t, dt);
}

/* The gradient of cumsum (x NULL) or cumprod (x: the input) along d, in
 * f32 when everything is f32, else in f64. */
static ts_tensor *scan_grad(const ts_tensor *x, const ts_tensor *g, int d)
{
    ts_dtype dt = g->dtype == TS_F32 && (!x || x->dtype == TS_F32) ? TS_F32 : TS_F64;
    ts_tensor *xc = x ? as_contiguous(x, dt) : NULL;
    ts_tensor *gc = !x || xc ? as_contiguous(g, dt) : NULL;
    ts_tensor *r = gc ? ts_tensor_new(g->shape, g->ndim, dt) : NULL;
    int64_t n = g->shape[d], inner = 1;
    for (int k = d + 1; k < g->ndim; k++) inner *= g->shape[k];
    int64_t lines = n ? ts_tensor_numel(g) / n : 0;
    if (r && lines > 0) {
        scan_ctx c = { xc ? ts_tensor_data(xc) : NULL, ts_tensor_data(gc), ts_tensor_data(r), dt == TS_F32, n, inner, 0 };
        int64_t grain = TS_GRAIN_ELEMENTWISE / n > 0 ? TS_GRAIN_ELEMENTWISE / n : 1;
        ts_parallel_for(lines, grain, x ? cumprod_lines : cumsum_lines, &c);
        if (c.failed) {
            ts_tensor_release(r);
            r = ts_fail_null(TS_ERR_MEMORY, "cumprod backward: out of memory for a line of %lld", (long long)n);
        }
    }
    ts_tensor_release(xc);
    ts_tensor_release(gc);
    return r;
}

/* i[0]: dim */
static ts_status cumsum_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    if (n->in_ndim[0] == 0) return finish_one(n, (ts_tensor_retain(go[0]), go[0]), gi);
    return finish_one(n, scan_grad(NULL, go[0], (int)n->i[0]), gi);
}

ts_tensor *ts_ag_cumsum(const ts_tensor *a, int dim)
{
    ts_tensor *out = ts_cumsum(a, dim);
    const ts_tensor *in[1] = { a };
    if (!out || !ts_dtype_is_float(out->dtype) || !ts_ag_needed(1, in)) return out;
    int d = 0;
    if (a->ndim) ts_wrap_dim("cumsum", dim, a->ndim, &d);
    ts_node *n = ts_node_new("cumsum", cumsum_backward, 1, in, 1);
    if (n) n->i[0] = d;
    return ag_attach(n, out, 0);
}

/* i[0]: dim; saved[0]: the input */
static ts_status cumprod_backward(ts_node *n, ts_tensor *const *go, ts_tensor **gi)
{
    if (n->in_ndim[0] == 0) return finish_one(n, (ts_tensor_retain(go[0]), go[0]), gi);
    return finish_one(n, scan_grad(n->saved[0], go[0], (int)n->i[0]), gi);
}

ts_tensor *ts_ag_cumprod(const ts_tensor *a, int dim)
{
    ts_tensor *out = ts_cumprod(a, dim);
    const ts_tensor *in[1] = { a };
    if (!out || !ts_dtype_is_float(out->dtype) || !ts_ag_needed(1, in)) return out;
    int d = 0;
    if (a->ndim) ts_wrap_dim("cumprod", dim, a->ndim, &d);
    ts_node *n = ts_node_new("cumprod", cumprod_backward, 1, in, 1);
    if (n) n->i[0] = d;
    if (n && ts_node_save(n, 0, a)) { ts_node_release(n); n = NULL; }
    return ag_attach(n, out, 0);
}
