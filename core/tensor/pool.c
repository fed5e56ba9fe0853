/* pool.c — pooling over the last one or two dims of [N, C, L] / [N, C, H, W]
 * tensors (the batch dim may be left out): max and average pooling with
 * stride, padding, dilation (max only) and ceil_mode, and adaptive max and
 * average pooling with PyTorch's window formulas. Max pooling can also return
 * the flat h * W + w position of each maximum (0-based, like PyTorch).
 *
 * Floating dtypes only, like PyTorch. The input is read as a contiguous f32
 * copy (f32, f16, bf16) or f64; every (n, c) plane is one unit of work for
 * ts_parallel_for; the result is narrowed back to the input's dtype. CPU
 * only for now: there is no backend entry for pooling yet. */
#include "nn_grad.h"

#include <math.h>
#include <string.h>

typedef enum pool_kind { POOL_MAX, POOL_AVG, POOL_ADAPTIVE_MAX, POOL_ADAPTIVE_AVG } pool_kind;

typedef struct pool_job {
    pool_kind kind;
    bool dbl;                 /* planes hold f64 (else f32) */
    const char *x;            /* [planes, h, w] */
    char *y;                  /* [planes, oh, ow] */
    int64_t *idx;             /* [planes, oh, ow] or NULL */
    int64_t h, w, oh, ow;
    ts_pool_params p;
} pool_job;

/* Element i of a f32 or f64 buffer, and the reverse. The flag is constant in
 * each kernel, so the compiler keeps the loops free of the branch. */
static inline double ld(const char *p, int64_t i, bool dbl)
{
    return dbl ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

static inline void st(char *p, int64_t i, double v, bool dbl)
{
    if (dbl) ((double *)p)[i] = v;
    else ((float *)p)[i] = (float)v;
}

/* ---- kernels: one (n, c) plane each ------------------------------------------------ */

static inline void max_plane(const pool_job *j, const char *x, char *y, int64_t *idx, bool dbl)
{
    const ts_pool_params *p = &j->p;
    for (int64_t oh = 0; oh < j->oh; oh++) {
        int64_t h0 = oh * p->stride[0] - p->padding[0];
        int64_t h1 = h0 + (p->kernel[0] - 1) * p->dilation[0] + 1;
        if (h1 > j->h) h1 = j->h;
        while (h0 < 0) h0 += p->dilation[0];
        for (int64_t ow = 0; ow < j->ow; ow++) {
            int64_t w0 = ow * p->stride[1] - p->padding[1];
            int64_t w1 = w0 + (p->kernel[1] - 1) * p->dilation[1] + 1;
            if (w1 > j->w) w1 = j->w;
            while (w0 < 0) w0 += p->dilation[1];
            double best = -INFINITY;
            int64_t at = h0 * j->w + w0;
            for (int64_t h = h0; h < h1; h += p->dilation[0])
                for (int64_t w = w0; w < w1; w += p->dilation[1]) {
                    double v = ld(x, h * j->w + w, dbl);
                    if (v > best || isnan(v)) { best = v; at = h * j->w + w; }
                }
            st(y, oh * j->ow + ow, best, dbl);
            if (idx) idx[oh * j->ow + ow] = at;
        }
    }
}

static inline void avg_plane(const pool_job *j, const char *x, char *y, bool dbl)
{
    const ts_pool_params *p = &j->p;
    for (int64_t oh = 0; oh < j->oh; oh++) {
        int64_t h0 = oh * p->stride[0] - p->padding[0];
        int64_t h1 = h0 + p->kernel[0] < j->h + p->padding[0] ? h0 + p->kernel[0] : j->h + p->padding[0];
        int64_t hspan = h1 - h0;
        if (h0 < 0) h0 = 0;
        if (h1 > j->h) h1 = j->h;
        for (int64_t ow = 0; ow < j->ow; ow++) {
            int64_t w0 = ow * p->stride[1] - p->padding[1];
            int64_t w1 = w0 + p->kernel[1] < j->w + p->padding[1] ? w0 + p->kernel[1] : j->w + p->padding[1];
            int64_t wspan = w1 - w0;
            if (w0 < 0) w0 = 0;
            if (w1 > j->w) w1 = j->w;
            double sum = 0;
            for (int64_t h = h0; h < h1; h++) sum += ts_sum_run(x + (h * j->w + w0) * (dbl ? 8 : 4), w1 - w0, dbl);
            int64_t count = p->count_include_pad ? hspan * wspan : (h1 - h0) * (w1 - w0);
            st(y, oh * j->ow + ow, count > 0 ? sum / (double)count : 0.0, dbl);
        }
    }
}

/* Adaptive windows: [floor(o*I/O), ceil((o+1)*I/O)). */
static int64_t adaptive_start(int64_t o, int64_t in, int64_t out) { return o * in / out; }
static int64_t adaptive_end(int64_t o, int64_t in, int64_t out) { return ((o + 1) * in + out - 1) / out; }

static inline void adaptive_plane(const pool_job *j, const char *x, char *y, bool max, bool dbl)
{
    int64_t es = dbl ? 8 : 4;
    for (int64_t oh = 0; oh < j->oh; oh++) {
        int64_t h0 = adaptive_start(oh, j->h, j->oh), h1 = adaptive_end(oh, j->h, j->oh);
        for (int64_t ow = 0; ow < j->ow; ow++) {
            int64_t w0 = adaptive_start(ow, j->w, j->ow), w1 = adaptive_end(ow, j->w, j->ow);
            double acc = max ? -INFINITY : 0.0;
            for (int64_t h = h0; h < h1; h++) {
                if (!max) {
                    acc += ts_sum_run(x + (h * j->w + w0) * es, w1 - w0, dbl);
                    continue;
                }
                for (int64_t w = w0; w < w1; w++) {
                    double v = ld(x, h * j->w + w, dbl);
                    if (v > acc || isnan(v)) acc = v;
                }
            }
            st(y, oh * j->ow + ow, max ? acc : acc / (double)((h1 - h0) * (w1 - w0)), dbl);
        }
    }
}

static inline void pool_plane(const pool_job *j, int64_t plane, bool dbl)
{
    size_t es = dbl ? 8 : 4;
    const char *x = j->x + (size_t)(plane * j->h * j->w) * es;
    char *y = j->y + (size_t)(plane * j->oh * j->ow) * es;
    switch (j->kind) {
    case POOL_MAX: max_plane(j, x, y, j->idx ? j->idx + plane * j->oh * j->ow : NULL, dbl); break;
    case POOL_AVG: avg_plane(j, x, y, dbl); break;
    case POOL_ADAPTIVE_MAX: adaptive_plane(j, x, y, true, dbl); break;
    case POOL_ADAPTIVE_AVG: adaptive_plane(j, x, y, false, dbl); break;
    }
}

static void pool_planes(int64_t begin, int64_t end, void *ctx)
{
    const pool_job *j = ctx;
    for (int64_t i = begin; i < end; i++) {
        if (j->dbl) pool_plane(j, i, true);
        else pool_plane(j, i, false);
    }
}

/* ---- front-end ---------------------------------------------------------------------- */

/* Output length of a pooling window (PyTorch's pooling_output_shape). */
static int64_t pool_out_len(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil, bool ceil_mode)
{
    int64_t num = in + 2 * pad - dil * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
    int64_t out = (num >= 0 ? num / stride : -((-num + stride - 1) / stride)) + 1;
    if (ceil_mode && out > 0 && (out - 1) * stride >= in + pad) out--;
    return out;
}

/* Checks the window of a (non-adaptive) pool over nsp spatial dims (the
 * last nsp of the 2-entry arrays are used) and computes the output size. */
static ts_status pool_check_window(const char *op, bool is_max, const ts_pool_params *p, int nsp, const int64_t *in,
                                   int64_t *out)
{
    for (int i = 2 - nsp; i < 2; i++) {
        int64_t k = p->kernel[i], s = p->stride[i], pad = p->padding[i], d = is_max ? p->dilation[i] : 1;
        if (k < 1 || s < 1 || d < 1 || pad < 0)
            return ts_fail(TS_ERR_ARG, "%s: kernel, stride and dilation must be >= 1 and padding >= 0, got kernel %lld, "
                           "stride %lld, padding %lld, dilation %lld", op, (long long)k, (long long)s, (long long)pad,
                           (long long)d);
        if (pad > ((k - 1) * d + 1) / 2)
            return ts_fail(TS_ERR_ARG, "%s: padding %lld should be at most half of the kernel size %lld", op,
                           (long long)pad, (long long)((k - 1) * d + 1));
        out[i] = pool_out_len(in[i], k, pad, s, d, p->ceil_mode);
        if (out[i] < 1)
            return ts_fail(TS_ERR_ARG, "%s: input size %lld is too small for kernel %lld (padding %lld, dilation %lld)",
                           op, (long long)in[i], (long long)k, (long long)pad, (long long)d);
    }
    return TS_OK;
}

/* Runs a pool of `kind` over the last nsp dims of x; adaptive kinds take
 * their output size in out_size[0..1] (entry 0 unused when nsp == 1). */
static ts_tensor *pool_run(const char *op, pool_kind kind, const ts_tensor *x, const ts_pool_params *p, int nsp,
                           const int64_t *out_size, ts_tensor **indices)
{
    char sx[TS_SHAPE_STR_CAP];
    if (indices) *indices = NULL;
    if (ts_require_cpu(op, x)) return NULL;
    if (x->ndim != nsp + 1 && x->ndim != nsp + 2)
        return ts_fail_null(TS_ERR_ARG, "%s: input must be %s (or without the batch dim), got %s", op,
                            nsp == 1 ? "[N, C, L]" : "[N, C, H, W]", ts_shape_str(x->shape, x->ndim, sx, sizeof sx));
    if (!ts_dtype_is_float(x->dtype))
        return ts_fail_null(TS_ERR_ARG, "%s: needs a floating dtype, got %s", op, ts_dtype_name(x->dtype));
    int64_t in[2] = { 1, 1 }, out[2] = { 1, 1 };
    for (int i = 0; i < nsp; i++) in[2 - nsp + i] = x->shape[x->ndim - nsp + i];
    if (in[0] < 1 || in[1] < 1)
        return ts_fail_null(TS_ERR_ARG, "%s: input %s has an empty spatial dim", op,
                            ts_shape_str(x->shape, x->ndim, sx, sizeof sx));
    if (kind == POOL_MAX || kind == POOL_AVG) {
        if (pool_check_window(op, kind == POOL_MAX, p, nsp, in, out)) return NULL;
    } else {
        for (int i = 2 - nsp; i < 2; i++) {
            if (out_size[i] < 1)
                return ts_fail_null(TS_ERR_ARG, "%s: output size must be >= 1, got %lld", op, (long long)out_size[i]);
            out[i] = out_size[i];
        }
    }
    int64_t shape[TS_MAX_DIMS];
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    for (int i = 0; i < nsp; i++) shape[x->ndim - nsp + i] = out[2 - nsp + i];
    int64_t planes = 1;
    for (int i = 0; i < x->ndim - nsp; i++) planes *= x->shape[i];

    ts_dtype ct = x->dtype == TS_F64 ? TS_F64 : TS_F32;
    ts_tensor *xc = ts_contiguous_as(x, ct);
    ts_tensor *y = xc ? ts_tensor_new(shape, x->ndim, ct) : NULL;
    ts_tensor *idx = y && indices ? ts_tensor_new(shape, x->ndim, TS_I64) : NULL;
    if (!y || (indices && !idx)) {
        ts_tensor_release(xc);
        ts_tensor_release(y);
        return NULL;
    }
    pool_job j = { kind, ct == TS_F64, ts_tensor_data(xc), ts_tensor_data(y), idx ? ts_tensor_data(idx) : NULL,
                   in[0], in[1], out[0], out[1], { { 0 } } };
    if (p) j.p = *p;
    if (kind == POOL_AVG) j.p.dilation[0] = j.p.dilation[1] = 1;
    int64_t work = out[0] * out[1] * (p ? p->kernel[0] * p->kernel[1] : (in[0] / out[0] + 1) * (in[1] / out[1] + 1));
    int64_t grain = TS_GRAIN_HEAVY / (work > 0 ? work : 1) + 1;
    ts_parallel_for(planes, grain, pool_planes, &j);
    ts_tensor_release(xc);
    if (!(y = ts_narrow_dtype(y, x->dtype))) {
        ts_tensor_release(idx);
        return NULL;
    }
    if (indices) *indices = idx;
    return y;
}

ts_tensor *ts_max_pool2d(const ts_tensor *x, const ts_pool_params *p, ts_tensor **indices)
{
    return pool_run("max_pool2d", POOL_MAX, x, p, 2, NULL, indices);
}

ts_tensor *ts_avg_pool2d(const ts_tensor *x, const ts_pool_params *p)
{
    return pool_run("avg_pool2d", POOL_AVG, x, p, 2, NULL, NULL);
}

/* 1-D pools use entry 0 of the params' arrays (like ts_conv1d); the kernel
 * sees them in entry 1, the width. */
static ts_pool_params params_1d(const ts_pool_params *p)
{
    ts_pool_params q = *p;
    q.kernel[1] = p->kernel[0]; q.stride[1] = p->stride[0];
    q.padding[1] = p->padding[0]; q.dilation[1] = p->dilation[0];
    q.kernel[0] = 1; q.stride[0] = 1; q.padding[0] = 0; q.dilation[0] = 1;
    return q;
}

ts_tensor *ts_max_pool1d(const ts_tensor *x, const ts_pool_params *p)
{
    ts_pool_params q = params_1d(p);
    return pool_run("max_pool1d", POOL_MAX, x, &q, 1, NULL, NULL);
}

ts_tensor *ts_avg_pool1d(const ts_tensor *x, const ts_pool_params *p)
{
    ts_pool_params q = params_1d(p);
    return pool_run("avg_pool1d", POOL_AVG, x, &q, 1, NULL, NULL);
}

ts_tensor *ts_adaptive_avg_pool2d(const ts_tensor *x, int64_t out_h, int64_t out_w)
{
    int64_t size[2] = { out_h, out_w };
    return pool_run("adaptive_avg_pool2d", POOL_ADAPTIVE_AVG, x, NULL, 2, size, NULL);
}

ts_tensor *ts_adaptive_max_pool2d(const ts_tensor *x, int64_t out_h, int64_t out_w)
{
    int64_t size[2] = { out_h, out_w };
    return pool_run("adaptive_max_pool2d", POOL_ADAPTIVE_MAX, x, NULL, 2, size, NULL);
}

/* For pool_backward.c (declared in nn_grad.h): the window checks above. */
ts_status ts_pool_window_check(const char *op, bool is_max, const ts_pool_params *p, int nsp, const int64_t *in,
                               int64_t *out)
{
    return pool_check_window(op, is_max, p, nsp, in, out);
}
