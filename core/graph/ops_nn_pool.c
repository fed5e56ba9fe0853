/* ops_nn_pool.c — the graph's pooling and normalisation ops with ONNX
 * semantics: MaxPool (with the optional Indices output) and AveragePool over
 * 1 or 2 spatial dims (kernel_shape, strides, dilations, pads that may be
 * asymmetric, auto_pad, ceil_mode, count_include_pad), GlobalAveragePool
 * and GlobalMaxPool (any number of spatial dims), BatchNormalization
 * (inference), InstanceNormalization and LayerNormalization (opset 17,
 * with the optional Mean / InvStdDev outputs).
 *
 * The pools have their own kernel (core/tensor's pools take symmetric pads
 * only): every (n, c) plane of a contiguous f32 / f64 copy is one unit of
 * work for ts_parallel_for; each output runs over the taps of its window
 * that fall inside the input. ceil_mode drops a last window that would
 * start in the end padding (PyTorch's rule). AveragePool divides by the
 * taps inside the input, or with count_include_pad by the taps inside the
 * padded input. MaxPool propagates NaN like PyTorch. The norms call
 * ts_batch_norm (one scale and shift per channel, precomputed per run),
 * ts_group_norm (one group per channel) and ts_layer_norm.
 * FLOPs: see ops_nn.h. */
#include "ops_nn.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- the pool kernel ------------------------------------------------------------------ */

typedef struct pool_job {
    bool max, dbl, include_pad, col_major;
    const char *x;
    char *y;
    int64_t *idx;              /* MaxPool's Indices (flat over the whole input) or NULL */
    int64_t h, w, oh, ow;      /* 1-D pools: h = oh = 1 */
    int64_t kh, kw, sh, sw, dh, dw, ph, pw, eh, ew;   /* ph/pw: begin pads; eh/ew: end pads */
} pool_job;

/* Taps i in [0, k) with 0 <= o0 + i * d < n: [*lo, *hi). */
static inline __attribute__((always_inline)) void tap_range(int64_t o0, int64_t k, int64_t d, int64_t n, int64_t *lo,
                                                             int64_t *hi)
{
    int64_t a, b;
    if (d == 1) {   /* no divisions on the common path: they would cost more than the taps */
        a = o0 < 0 ? -o0 : 0;
        b = n - o0;
    } else {
        a = o0 < 0 ? (-o0 + d - 1) / d : 0;
        b = o0 >= n ? 0 : (n - o0 + d - 1) / d;
    }
    *lo = a;
    *hi = b < k ? b : k;
    if (*hi < *lo) *hi = *lo;
}

static inline __attribute__((always_inline)) void pool_plane(const pool_job *j, int64_t plane, bool dbl)
{
    size_t es = dbl ? 8 : 4;
    const char *x = j->x + (size_t)(plane * j->h * j->w) * es;
    char *y = j->y + (size_t)(plane * j->oh * j->ow) * es;
    int64_t *idx = j->idx ? j->idx + plane * j->oh * j->ow : NULL;
    for (int64_t oh = 0; oh < j->oh; oh++) {
        int64_t h0 = oh * j->sh - j->ph, ilo, ihi;
        tap_range(h0, j->kh, j->dh, j->h, &ilo, &ihi);
        int64_t cnt_h = 0;
        if (!j->max && j->include_pad) {
            int64_t plo, phi;
            tap_range(h0 + j->ph, j->kh, j->dh, j->h + j->ph + j->eh, &plo, &phi);
            cnt_h = phi - plo;
        }
        for (int64_t ow = 0; ow < j->ow; ow++) {
            int64_t w0 = ow * j->sw - j->pw, jlo, jhi;
            tap_range(w0, j->kw, j->dw, j->w, &jlo, &jhi);
            int64_t o = oh * j->ow + ow;
            if (j->max) {
                double best = -INFINITY;
                int64_t at = -1;
                for (int64_t i = ilo; i < ihi; i++) {
                    int64_t r = (h0 + i * j->dh) * j->w + w0;
                    for (int64_t q = jlo; q < jhi; q++) {
                        double v = dbl ? ((const double *)x)[r + q * j->dw] : ((const float *)x)[r + q * j->dw];
                        if (v > best || (v != v && best == best)) { best = v; at = r + q * j->dw; }
                    }
                }
                if (dbl) ((double *)y)[o] = best;
                else ((float *)y)[o] = (float)best;
                if (idx) {
                    if (at < 0) at = 0;
                    int64_t hh = at / j->w, ww = at % j->w;
                    idx[o] = plane * j->h * j->w + (j->col_major ? ww * j->h + hh : at);
                }
            } else {
                double sum = 0;
                for (int64_t i = ilo; i < ihi; i++) {
                    int64_t r = (h0 + i * j->dh) * j->w + w0;
                    if (j->dw == 1) {
                        sum += ts_sum_run(x + (size_t)(r + jlo) * es, jhi - jlo, dbl);
                        continue;
                    }
                    for (int64_t q = jlo; q < jhi; q++)
                        sum += dbl ? ((const double *)x)[r + q * j->dw] : ((const float *)x)[r + q * j->dw];
                }
                int64_t count = (ihi - ilo) * (jhi - jlo);
                if (j->include_pad) {
                    int64_t plo, phi;
                    tap_range(w0 + j->pw, j->kw, j->dw, j->w + j->pw + j->ew, &plo, &phi);
                    count = cnt_h * (phi - plo);
                }
                double v = count > 0 ? sum / (double)count : 0.0;
                if (dbl) ((double *)y)[o] = v;
                else ((float *)y)[o] = (float)v;
            }
        }
    }
}

/* ---- the f32 fast path (no Indices): whole output rows at a time ------------------------
 * For each output row, every tap (i, q) of the window is one pass over the
 * output columns whose window holds that tap: y[ow] = max(y[ow], x[r][ow *
 * sw + c]) or s[ow] += ...; the loops over ow vectorise (the max uses bit
 * masks: a `?:` on floats would keep GCC from vectorising). */

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float f32_of(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* max(b, v), NaN propagating like PyTorch (once NaN, stays NaN). */
static inline float max_nan(float b, float v)
{
    uint32_t take = -(uint32_t)((v > b) | (v != v));
    return f32_of((f32_bits(v) & take) | (f32_bits(b) & ~take));
}

static void pool_plane_f32(const pool_job *j, int64_t plane, float *acc)
{
    const float *x = (const float *)j->x + plane * j->h * j->w;
    float *y = (float *)j->y + plane * j->oh * j->ow;
    for (int64_t oh = 0; oh < j->oh; oh++) {
        int64_t h0 = oh * j->sh - j->ph, ilo, ihi;
        tap_range(h0, j->kh, j->dh, j->h, &ilo, &ihi);
        for (int64_t o = 0; o < j->ow; o++) acc[o] = j->max ? -INFINITY : 0.0f;
        for (int64_t i = ilo; i < ihi; i++) {
            const float *row = x + (h0 + i * j->dh) * j->w;
            for (int64_t q = 0; q < j->kw; q++) {
                /* output columns with 0 <= ow * sw - pw + q * dw < W */
                int64_t off = q * j->dw - j->pw;
                int64_t lo = off >= 0 ? 0 : (-off + j->sw - 1) / j->sw;
                int64_t hi = off >= j->w ? 0 : (j->w - off + j->sw - 1) / j->sw;
                if (hi > j->ow) hi = j->ow;
                const float *src = row + off;
                int64_t sw = j->sw;
                if (j->max) {
                    if (sw == 1)
                        for (int64_t o = lo; o < hi; o++) acc[o] = max_nan(acc[o], src[o]);
                    else if (sw == 2)
                        for (int64_t o = lo; o < hi; o++) acc[o] = max_nan(acc[o], src[2 * o]);
                    else
                        for (int64_t o = lo; o < hi; o++) acc[o] = max_nan(acc[o], src[o * sw]);
                } else {
                    if (sw == 1)
                        for (int64_t o = lo; o < hi; o++) acc[o] += src[o];
                    else if (sw == 2)
                        for (int64_t o = lo; o < hi; o++) acc[o] += src[2 * o];
                    else
                        for (int64_t o = lo; o < hi; o++) acc[o] += src[o * sw];
                }
            }
        }
        float *yr = y + oh * j->ow;
        if (j->max) {
            memcpy(yr, acc, sizeof(float) * (size_t)j->ow);
            continue;
        }
        int64_t cnt_h = ihi - ilo;
        if (j->include_pad) {
            int64_t plo, phi;
            tap_range(h0 + j->ph, j->kh, j->dh, j->h + j->ph + j->eh, &plo, &phi);
            cnt_h = phi - plo;
        }
        for (int64_t o = 0; o < j->ow; o++) {
            int64_t w0 = o * j->sw - j->pw, lo, hi;
            if (j->include_pad) tap_range(w0 + j->pw, j->kw, j->dw, j->w + j->pw + j->ew, &lo, &hi);
            else tap_range(w0, j->kw, j->dw, j->w, &lo, &hi);
            int64_t count = cnt_h * (hi - lo);
            yr[o] = count > 0 ? acc[o] / (float)count : 0.0f;
        }
    }
}

static void pool_planes(int64_t begin, int64_t end, void *ctx)
{
    const pool_job *j = ctx;
    float stack[512];
    float *acc = !j->dbl && !j->idx ? (j->ow <= 512 ? stack : malloc(sizeof(float) * (size_t)j->ow)) : NULL;
    for (int64_t p = begin; p < end; p++) {
        if (acc) pool_plane_f32(j, p, acc);
        else if (j->dbl) pool_plane(j, p, true);
        else pool_plane(j, p, false);
    }
    if (acc != stack) free(acc);
}

static ts_status k_pool(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    if (ts_kernel_need(ctx, in, n_in, 0)) return ts_last_status();
    const ts_gnode *n = ctx->node;
    const ts_tensor *x = in[0];
    bool is_max = ctx->user != NULL;
    char sx[TS_SHAPE_STR_CAP];
    int nsp = x->ndim - 2;
    if (nsp < 1 || nsp > 2)
        return ts_fail(nsp > 2 ? TS_ERR_UNSUPPORTED : TS_ERR_ARG, "%s: input %s: only [N, C, L] and [N, C, H, W] "
                       "are supported", n->op_type, ts_shape_str(x->shape, x->ndim, sx, sizeof sx));
    if (!ts_dtype_is_float(x->dtype))
        return ts_fail(TS_ERR_ARG, "%s: needs a floating input, got %s", n->op_type, ts_dtype_name(x->dtype));
    nn_window win;
    if (nn_window_read(n, nsp, NULL, x->shape + 2, &win)) return ts_last_status();
    int64_t shape[4] = { x->shape[0], x->shape[1], 1, 1 };
    for (int i = 0; i < nsp; i++) {
        shape[2 + i] = nn_window_out(&win, i, x->shape[2 + i]);
        if (shape[2 + i] < 1 || x->shape[2 + i] < 1)
            return ts_fail(TS_ERR_ARG, "%s: input %s is too small for kernel %lld (pads %lld, %lld, dilation %lld)",
                           n->op_type, ts_shape_str(x->shape, x->ndim, sx, sizeof sx), (long long)win.k[i],
                           (long long)win.pb[i], (long long)win.pe[i], (long long)win.d[i]);
    }
    /* 1-D as height 1 */
    int a = nsp == 2 ? 0 : -1, b = nsp - 1;
    pool_job j = {
        is_max, false, ts_gnode_int(n, "count_include_pad", 0) != 0, ts_gnode_int(n, "storage_order", 0) != 0,
        NULL, NULL, NULL,
        a < 0 ? 1 : x->shape[2], x->shape[2 + b], a < 0 ? 1 : shape[2], shape[2 + b],
        a < 0 ? 1 : win.k[0], win.k[b], a < 0 ? 1 : win.s[0], win.s[b], a < 0 ? 1 : win.d[0], win.d[b],
        a < 0 ? 0 : win.pb[0], win.pb[b], a < 0 ? 0 : win.pe[0], win.pe[b],
    };
    ts_dtype ct = ts_float_compute_dtype(x->dtype);
    j.dbl = ct == TS_F64;
    bool want_idx = is_max && n_out > 1;
    ts_tensor *xc = ts_contiguous_as(x, ct);
    ts_tensor *y = xc ? ts_tensor_new(shape, x->ndim, ct) : NULL;
    ts_tensor *idx = y && want_idx ? ts_tensor_new(shape, x->ndim, TS_I64) : NULL;
    if (!y || (want_idx && !idx)) {
        ts_tensor_release(xc);
        ts_tensor_release(y);
        return ts_last_status();
    }
    j.x = ts_tensor_data(xc);
    j.y = ts_tensor_data(y);
    j.idx = idx ? ts_tensor_data(idx) : NULL;
    int64_t planes = x->shape[0] * x->shape[1];
    int64_t work = j.oh * j.ow * j.kh * j.kw;
    ts_parallel_for(planes, TS_GRAIN_HEAVY / (work > 0 ? work : 1) + 1, pool_planes, &j);
    ts_tensor_release(xc);
    if (!(y = ts_narrow_dtype(y, x->dtype))) {
        ts_tensor_release(idx);
        return ts_last_status();
    }
    out[0] = y;
    if (want_idx) out[1] = idx;
    for (int i = want_idx ? 2 : 1; i < n_out; i++) out[i] = NULL;
    return TS_OK;
}

static ts_status infer_pool(ts_graph *g, const ts_gnode *n, int64_t opset, const ts_gvalue *const *in,
                            ts_gvalue *const *out)
{
    const ts_gvalue *x = in[0];
    char sx[TS_SHAPE_STR_CAP];
    if (!x) return ts_fail(TS_ERR_ARG, "%s: input X is missing", n->op_type);
    ts_dim dims[TS_MAX_DIMS];
    int rank = x->ndim;
    if (rank < 0) {
        int64_t nk = 0;
        if (ts_gnode_ints(n, "kernel_shape", &nk) && nk > 0 && nk <= TS_MAX_DIMS - 2) rank = (int)nk + 2;
    }
    if (rank >= 0 && rank < 3)
        return ts_fail(TS_ERR_ARG, "%s: input must be [N, C, spatial...], got %s", n->op_type,
                       ts_dims_str(g, x->dims, x->ndim, sx, sizeof sx));
    if (rank >= 0) {
        int nsp = rank - 2;
        int64_t insz[NN_MAX_SP];
        for (int i = 0; i < rank; i++) dims[i] = x->ndim >= 0 ? x->dims[i] : ts_dim_unknown();
        for (int i = 0; i < nsp && i < NN_MAX_SP; i++) insz[i] = dims[2 + i].size;
        nn_window win;
        if (nsp <= NN_MAX_SP) {
            if (nn_window_read(n, nsp, NULL, insz, &win)) return ts_last_status();
            for (int i = 0; i < nsp; i++) {
                dims[2 + i] = nn_window_out_dim(&win, i, dims[2 + i]);
                if (ts_dim_known(dims[2 + i]) && dims[2 + i].size < 1)
                    return ts_fail(TS_ERR_ARG, "%s: input %s is too small for kernel %lld", n->op_type,
                                   ts_dims_str(g, x->dims, x->ndim, sx, sizeof sx), (long long)win.k[i]);
            }
        } else {
            for (int i = 2; i < rank; i++) dims[i] = ts_dim_unknown();
        }
    }
    ts_gval_set(out[0], x->dtype, rank, rank >= 0 ? dims : NULL);
    if (n->n_outputs > 1 && out[1]) ts_gval_set(out[1], TS_I64, rank, rank >= 0 ? dims : NULL);
    return TS_OK;
}

static double flops_pool(const ts_gnode *n, const ts_gvalue *const *in, const ts_gvalue *const *out)
{
    int64_t e = ts_gval_numel(out[0]), nk = 0;
    const int64_t *k = ts_gnode_ints(n, "kernel_shape", &nk);
    if (e < 0) return -1;
    double taps = 1;
    for (int64_t i = 0; k && i < nk; i++) taps *= (double)k[i];
    return (double)e * taps;
}

/* ---- global pools ------------------------------------------------------------------------ */

typedef struct gpool_job { bool max, dbl; const char *x; char *y; int64_t len; } gpool_job;

static void gpool_planes(int64_t begin, int64_t end, void *ctx)
{
    const gpool_job *j = ctx;
    size_t es = j->dbl ? 8 : 4;
    for (int64_t p = begin; p < end; p++) {
        const char *x = j->x + (size_t)(p * j->len) * es;
        double v;
        if (!j->max) {
            v = ts_sum_run(x, j->len, j->dbl) / (double)j->len;
        } else {
            v = -INFINITY;
            for (int64_t i = 0; i < j->len; i++) {
                double e = j->dbl ? ((const double *)x)[i] : ((const float *)x)[i];
                if (e > v || (e != e && v == v)) v = e;
            }
        }
        if (j->dbl) ((double *)j->y)[p] = v;
        else ((float *)j->y)[p] = (float)v;
    }
}

static ts_status k_global_pool(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    if (ts_kernel_need(ctx, in, n_in, 0)) return ts_last_status();
    const ts_tensor *x = in[0];
    char sx[TS_SHAPE_STR_CAP];
    if (x->ndim < 2 || !ts_dtype_is_float(x->dtype))
        return ts_fail(TS_ERR_ARG, "%s: input must be floating [N, C, spatial...], got %s %s", ctx->node->op_type,
                       ts_dtype_name(x->dtype), ts_shape_str(x->shape, x->ndim, sx, sizeof sx));
    int64_t shape[TS_MAX_DIMS], len = 1;
    for (int i = 0; i < x->ndim; i++) {
        shape[i] = i < 2 ? x->shape[i] : 1;
        if (i >= 2) len *= x->shape[i];
    }
    if (len == 0) return ts_fail(TS_ERR_ARG, "%s: input %s has an empty spatial dim", ctx->node->op_type,
                                 ts_shape_str(x->shape, x->ndim, sx, sizeof sx));
    ts_dtype ct = ts_float_compute_dtype(x->dtype);
    ts_tensor *xc = ts_contiguous_as(x, ct), *y = xc ? ts_tensor_new(shape, x->ndim, ct) : NULL;
    if (y) {
        gpool_job j = { ctx->user != NULL, ct == TS_F64, ts_tensor_data(xc), ts_tensor_data(y), len };
        ts_parallel_for(x->shape[0] * x->shape[1], TS_GRAIN_ELEMENTWISE / len + 1, gpool_planes, &j);
    }
    ts_tensor_release(xc);
    return nn_out1(out, y ? ts_narrow_dtype(y, x->dtype) : NULL);
}

static ts_status infer_global_pool(ts_graph *g, const ts_gnode *n, int64_t opset, const ts_gvalue *const *in,
                                   ts_gvalue *const *out)
{
    const ts_gvalue *x = in[0];
    if (!x) return ts_fail(TS_ERR_ARG, "%s: input X is missing", n->op_type);
    if (x->ndim < 0) {
        ts_gval_set(out[0], x->dtype, TS_RANK_UNKNOWN, NULL);
        return TS_OK;
    }
    if (x->ndim < 2) return ts_fail(TS_ERR_ARG, "%s: input must be [N, C, spatial...]", n->op_type);
    ts_dim dims[TS_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) dims[i] = i < 2 ? x->dims[i] : ts_dim_of(1);
    ts_gval_set(out[0], x->dtype, x->ndim, dims);
    return TS_OK;
}

static double flops_global_pool(const ts_gnode *n, const ts_gvalue *const *in, const ts_gvalue *const *out)
{
    int64_t e = in[0] ? ts_gval_numel(in[0]) : -1;
    return e < 0 ? -1 : (double)e;
}

/* ---- BatchNormalization / InstanceNormalization --------------------------------------------- */

/* Inference only (training_mode = 1 is refused). Outputs beyond Y (the
 * running / saved statistics of training graphs) get the running mean and
 * variance. */
static ts_status k_batch_norm(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    for (int i = 0; i < 5; i++)
        if (ts_kernel_need(ctx, in, n_in, i)) return ts_last_status();
    if (ts_gnode_int(ctx->node, "training_mode", 0))
        return ts_fail(TS_ERR_UNSUPPORTED, "BatchNormalization: training_mode = 1 is not supported (inference only)");
    double eps = ts_gnode_float(ctx->node, "epsilon", 1e-5);
    ts_tensor *y = ts_batch_norm(in[0], in[3], in[4], in[1], in[2], eps);
    if (!y) return ts_last_status();
    out[0] = y;
    for (int i = 1; i < n_out; i++) {
        out[i] = in[i % 2 ? 3 : 4];
        ts_tensor_retain(out[i]);
    }
    return TS_OK;
}

static ts_status infer_norm(ts_graph *g, const ts_gnode *n, int64_t opset, const ts_gvalue *const *in,
                            ts_gvalue *const *out)
{
    if (!in[0]) return ts_fail(TS_ERR_ARG, "%s: input X is missing", n->op_type);
    ts_gval_copy_info(out[0], in[0]);
    for (int i = 1; i < n->n_outputs; i++)   /* BatchNormalization's statistics: [C] */
        if (out[i]) ts_gval_set(out[i], in[0]->dtype, 1, in[0]->ndim >= 2 ? &in[0]->dims[1] : NULL);
    return TS_OK;
}

static double flops_batch_norm(const ts_gnode *n, const ts_gvalue *const *in, const ts_gvalue *const *out)
{
    return nn_flops_numel_out(n, in, out, 2);
}

static double flops_norm8(const ts_gnode *n, const ts_gvalue *const *in, const ts_gvalue *const *out)
{
    return nn_flops_numel_out(n, in, out, 8);
}

static ts_status k_instance_norm(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    for (int i = 0; i < 3; i++)
        if (ts_kernel_need(ctx, in, n_in, i)) return ts_last_status();
    const ts_tensor *x = in[0];
    if (x->ndim < 2) return ts_fail(TS_ERR_ARG, "InstanceNormalization: input must be [N, C, ...]");
    return nn_out1(out, ts_group_norm(x, x->shape[1], in[1], in[2], ts_gnode_float(ctx->node, "epsilon", 1e-5)));
}

/* ---- LayerNormalization ------------------------------------------------------------------ */

static bool same_trailing(const ts_tensor *p, const ts_tensor *x, int axis)
{
    if (!p) return true;
    if (p->ndim != x->ndim - axis) return false;
    for (int i = 0; i < p->ndim; i++)
        if (p->shape[i] != x->shape[axis + i]) return false;
    return true;
}

static ts_status k_layer_norm(const ts_kernel_ctx *ctx, ts_tensor *const *in, int n_in, ts_tensor **out, int n_out)
{
    if (ts_kernel_need(ctx, in, n_in, 0) || ts_kernel_need(ctx, in, n_in, 1)) return ts_last_status();
    const ts_gnode *n = ctx->node;
    const ts_tensor *x = in[0], *scale = in[1], *bias = n_in > 2 ? in[2] : NULL;
    double eps = ts_gnode_float(n, "epsilon", 1e-5);
    int axis;
    if (x->ndim == 0) return ts_fail(TS_ERR_ARG, "LayerNormalization: input must have at least 1 dim");
    if (ts_node_axis(n, ts_gnode_int(n, "axis", -1), x->ndim, &axis)) return ts_last_status();
    ts_tensor *y;
    if (same_trailing(scale, x, axis) && same_trailing(bias, x, axis)) {
        y = ts_layer_norm(x, x->ndim - axis, scale, bias, eps);
    } else {   /* scale / bias merely broadcastable: normalise, then multiply and add */
        ts_tensor *z = ts_layer_norm(x, x->ndim - axis, NULL, NULL, eps);
        y = z ? ts_binary(TS_MUL, z, scale) : NULL;
        ts_tensor_release(z);
        if (y && bias && ts_binary_(TS_ADD, y, bias)) {
            ts_tensor_release(y);
            y = NULL;
        }
        if (y) y = ts_narrow_dtype(y, x->dtype);
    }
    if (!y) return ts_last_status();
    out[0] = y;
    for (int i = 1; i < n_out; i++) out[i] = NULL;
    if (n_out < 2) return TS_OK;
    /* Mean and InvStdDev: x's shape with the normalised dims kept as 1 */
    int dims[TS_MAX_DIMS], nd = 0;
    for (int i = axis; i < x->ndim; i++) dims[nd++] = i;
    ts_dtype st = ts_gnode_int(n, "stash_type", 1) == 1 ? TS_F32 : ts_float_compute_dtype(x->dtype);
    ts_tensor *xd = ts_to_dtype(x, TS_F64);
    ts_tensor *mean = xd ? ts_reduce(TS_MEAN, xd, dims, nd, true) : NULL;
    ts_tensor *var = mean ? ts_var(xd, dims, nd, 0, true) : NULL;
    ts_tensor_release(xd);
    if (var && (ts_binary_scalar_(TS_ADD, var, eps) || ts_unary_(TS_RSQRT, var))) {
        ts_tensor_release(var);
        var = NULL;
    }
    if (mean) mean = ts_narrow_dtype(mean, st);
    if (var) var = ts_narrow_dtype(var, st);
    if (!mean || !var) {
        ts_tensor_release(mean);
        ts_tensor_release(var);
        ts_tensor_release(y);
        out[0] = NULL;
        return ts_last_status();
    }
    out[1] = mean;
    if (n_out > 2) out[2] = var;
    else ts_tensor_release(var);
    return TS_OK;
}

static ts_status infer_layer_norm(ts_graph *g, const ts_gnode *n, int64_t opset, const ts_gvalue *const *in,
                                  ts_gvalue *const *out)
{
    const ts_gvalue *x = in[0];
    if (!x) return ts_fail(TS_ERR_ARG, "LayerNormalization: input X is missing");
    ts_gval_copy_info(out[0], x);
    if (n->n_outputs < 2) return TS_OK;
    ts_dtype st = ts_gnode_int(n, "stash_type", 1) == 1 ? TS_F32 : x->dtype;
    ts_dim dims[TS_MAX_DIMS];
    int axis = 0;
    if (x->ndim >= 0) {
        if (ts_node_axis(n, ts_gnode_int(n, "axis", -1), x->ndim, &axis)) return ts_last_status();
        for (int i = 0; i < x->ndim; i++) dims[i] = i < axis ? x->dims[i] : ts_dim_of(1);
    }
    for (int i = 1; i < n->n_outputs && i < 3; i++)
        if (out[i]) ts_gval_set(out[i], st, x->ndim, x->ndim >= 0 ? dims : NULL);
    return TS_OK;
}

/* ---- registration ----------------------------------------------------------------------- */

void ts_nn_register_pool_norm_ops(void)
{
    const ts_op_def defs[] = {
        { "MaxPool", "", k_pool, infer_pool, flops_pool, false, (void *)1, NULL },
        { "AveragePool", "", k_pool, infer_pool, flops_pool, false, NULL, NULL },
        { "GlobalAveragePool", "", k_global_pool, infer_global_pool, flops_global_pool, false, NULL, NULL },
        { "GlobalMaxPool", "", k_global_pool, infer_global_pool, flops_global_pool, false, (void *)1, NULL },
        { "BatchNormalization", "", k_batch_norm, infer_norm, flops_batch_norm, false, NULL, NULL },
        { "InstanceNormalization", "", k_instance_norm, infer_norm, flops_norm8, false, NULL, NULL },
        { "LayerNormalization", "", k_layer_norm, infer_layer_norm, flops_norm8, false, NULL, NULL },
    };
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) ts_op_register(&defs[i]);
}
