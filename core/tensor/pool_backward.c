/* pool_backward.c — what autograd needs for pooling: a max-pool forward that
 * always yields the argmax indices (window and adaptive, 1-D and 2-D, with
 * typed f32/f64 loops and a 2x2 stride-2 fast path: the recorded forward
 * uses it), the max-pool backward (gradients routed to those indices) and
 * the average-pool backward (window, with padding, ceil_mode and
 * count_include_pad, and adaptive).
 *
 * Values and indices are the same as pool.c's: a maximum is the first
 * largest value of its window, a NaN wins over numbers (the last NaN).
 * Every (n, c) plane is one unit of work for ts_parallel_for, and each
 * plane's gradient is summed in a fixed order: results do not depend on the
 * thread count. f16/bf16 are computed as f32. CPU only, like pool.c.
 * Uses: nn_grad.h (ts_pool_window_check). */
#include "nn_grad.h"

#include <math.h>
#include <string.h>

/* Windows as the 2-entry parameters see them (entry 1 = width); 1-D pools
 * give their values in entry 0, like ts_max_pool1d. */
static ts_pool_params params_2d(const ts_pool_params *p, int nsp)
{
    ts_pool_params q = *p;
    if (nsp == 2) return q;
    q.kernel[1] = p->kernel[0]; q.stride[1] = p->stride[0];
    q.padding[1] = p->padding[0]; q.dilation[1] = p->dilation[0];
    q.kernel[0] = 1; q.stride[0] = 1; q.padding[0] = 0; q.dilation[0] = 1;
    return q;
}

/* Adaptive windows: [floor(o*I/O), ceil((o+1)*I/O)). */
static int64_t adaptive_start(int64_t o, int64_t in, int64_t out) { return o * in / out; }
static int64_t adaptive_end(int64_t o, int64_t in, int64_t out) { return ((o + 1) * in + out - 1) / out; }

/* ---- max pool forward with indices ------------------------------------------------------ */

typedef struct maxpool_job {
    bool dbl, adaptive, fast2x2;
    const char *x;
    char *y;
    int64_t *idx;
    int64_t h, w, oh, ow;
    ts_pool_params p;             /* 2-entry form */
} maxpool_job;

/* Window rows [*h0, *h1) (step dh) and columns of output (oh, ow). */
static void window(const maxpool_job *j, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1, int64_t *w0, int64_t *w1)
{
    if (j->adaptive) {
        *h0 = adaptive_start(oh, j->h, j->oh); *h1 = adaptive_end(oh, j->h, j->oh);
        *w0 = adaptive_start(ow, j->w, j->ow); *w1 = adaptive_end(ow, j->w, j->ow);
        return;
    }
    const ts_pool_params *p = &j->p;
    int64_t a = oh * p->stride[0] - p->padding[0], b = a + (p->kernel[0] - 1) * p->dilation[0] + 1;
    while (a < 0) a += p->dilation[0];
    *h0 = a; *h1 = b < j->h ? b : j->h;
    a = ow * p->stride[1] - p->padding[1]; b = a + (p->kernel[1] - 1) * p->dilation[1] + 1;
    while (a < 0) a += p->dilation[1];
    *w0 = a; *w1 = b < j->w ? b : j->w;
}

/* Branch-free selection: on random data the comparisons of a max are
 * unpredictable, and mispredicted branches would cost more than the work.
 * take(v, best) is all ones when v replaces best (larger, or NaN). */
static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float f32_of_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t take_f32(float v, float best) { return -(uint32_t)((v > best) | (v != v)); }
static inline float pick_f32(uint32_t m, float a, float b) { return f32_of_bits((f32_bits(a) & m) | (f32_bits(b) & ~m)); }
static inline uint64_t take_f64(double v, double best) { return -(uint64_t)((v > best) | (v != v)); }
static inline double pick_f64(uint64_t m, double a, double b)
{
    uint64_t ua, ub;
    memcpy(&ua, &a, 8);
    memcpy(&ub, &b, 8);
    ua = (ua & m) | (ub & ~m);
    memcpy(&a, &ua, 8);
    return a;
}
static inline int64_t pick_i64(uint64_t m, int64_t a, int64_t b) { return (int64_t)(((uint64_t)a & m) | ((uint64_t)b & ~m)); }

static void maxpool_plane_f32(const maxpool_job *j, const float *x, float *y, int64_t *idx)
{
    int64_t dh = j->adaptive ? 1 : j->p.dilation[0], dw = j->adaptive ? 1 : j->p.dilation[1];
    for (int64_t oh = 0; oh < j->oh; oh++)
        for (int64_t ow = 0; ow < j->ow; ow++) {
            int64_t h0, h1, w0, w1;
            window(j, oh, ow, &h0, &h1, &w0, &w1);
            float best = -INFINITY;
            int64_t at = h0 * j->w + w0;
            for (int64_t h = h0; h < h1; h += dh)
                for (int64_t w = w0; w < w1; w += dw) {
                    float v = x[h * j->w + w];
                    uint32_t m = take_f32(v, best);
                    best = pick_f32(m, v, best);
                    at = pick_i64((uint64_t)(int64_t)(int32_t)m, h * j->w + w, at);
                }
            y[oh * j->ow + ow] = best;
            idx[oh * j->ow + ow] = at;
        }
}

static void maxpool_plane_f64(const maxpool_job *j, const double *x, double *y, int64_t *idx)
{
    int64_t dh = j->adaptive ? 1 : j->p.dilation[0], dw = j->adaptive ? 1 : j->p.dilation[1];
    for (int64_t oh = 0; oh < j->oh; oh++)
        for (int64_t ow = 0; ow < j->ow; ow++) {
            int64_t h0, h1, w0, w1;
            window(j, oh, ow, &h0, &h1, &w0, &w1);
            double best = -INFINITY;
            int64_t at = h0 * j->w + w0;
            for (int64_t h = h0; h < h1; h += dh)
                for (int64_t w = w0; w < w1; w += dw) {
                    double v = x[h * j->w + w];
                    uint64_t m = take_f64(v, best);
                    best = pick_f64(m, v, best);
                    at = pick_i64(m, h * j->w + w, at);
                }
            y[oh * j->ow + ow] = best;
            idx[oh * j->ow + ow] = at;
        }
}

/* One output row of a 2x2 stride-2 pool from input rows r0, r1 (f32): the
 * winner's offset from its window's corner (0, 1, W or W + 1) goes to at[].
 * Written so the compiler vectorises it across outputs. */
static void row_2x2(const float *restrict r0, const float *restrict r1, float *restrict y, uint32_t *restrict at,
                    int64_t n, uint32_t w)
{
    for (int64_t ow = 0; ow < n; ow++) {
        float v1 = r0[2 * ow + 1], v2 = r1[2 * ow], v3 = r1[2 * ow + 1];
        float best = r0[2 * ow];   /* what the first step of the general loop leaves */
        uint32_t a = 0, m;
        m = take_f32(v1, best); best = pick_f32(m, v1, best); a = (a & ~m) | (1u & m);
        m = take_f32(v2, best); best = pick_f32(m, v2, best); a = (a & ~m) | (w & m);
        m = take_f32(v3, best); best = pick_f32(m, v3, best); a = (a & ~m) | ((w + 1) & m);
        y[ow] = best;
        at[ow] = a;
    }
}

/* kernel 2, stride 2, no padding, every window inside the plane (f32). */
static void maxpool_plane_2x2(const maxpool_job *j, const float *x, float *y, int64_t *idx)
{
    enum { STEP = 256 };
    uint32_t at[STEP];
    for (int64_t oh = 0; oh < j->oh; oh++) {
        const float *r0 = x + 2 * oh * j->w, *r1 = r0 + j->w;
        for (int64_t o0 = 0; o0 < j->ow; o0 += STEP) {
            int64_t n = j->ow - o0 < STEP ? j->ow - o0 : STEP, base = 2 * oh * j->w + 2 * o0;
            int64_t *ir = idx + oh * j->ow + o0;
            row_2x2(r0 + 2 * o0, r1 + 2 * o0, y + oh * j->ow + o0, at, n, (uint32_t)j->w);
            for (int64_t i = 0; i < n; i++) ir[i] = base + 2 * i + at[i];
        }
    }
}

TS_NN_SIMD
static void maxpool_planes(int64_t begin, int64_t end, void *ctx)
{
    const maxpool_job *j = ctx;
    int64_t in = j->h * j->w, out = j->oh * j->ow;
    for (int64_t pl = begin; pl < end; pl++) {
        int64_t *idx = j->idx + pl * out;
        if (j->dbl) {
            maxpool_plane_f64(j, (const double *)j->x + pl * in, (double *)j->y + pl * out, idx);
        } else if (j->fast2x2) {
            maxpool_plane_2x2(j, (const float *)j->x + pl * in, (float *)j->y + pl * out, idx);
        } else {
            maxpool_plane_f32(j, (const float *)j->x + pl * in, (float *)j->y + pl * out, idx);
        }
    }
}

ts_tensor *ts_max_pool_indices(const char *op, const ts_tensor *x, const ts_pool_params *p, int nsp,
                               const int64_t *out_size, ts_tensor **indices)
{
    char sx[TS_SHAPE_STR_CAP];
    *indices = NULL;
    if (ts_require_cpu(op, x)) return NULL;
    if (x->ndim != nsp + 1 && x->ndim != nsp + 2)
        return ts_fail_null(TS_ERR_ARG, "%s: input must be %s (or without the batch dim), got %s", op,
                            nsp == 1 ? "[N, C, L]" : "[N, C, H, W]", ts_shape_str(x->shape, x->ndim, sx, sizeof sx));
    if (!ts_dtype_is_float(x->dtype))
        return ts_fail_null(TS_ERR_ARG, "%s: needs a floating dtype, got %s", op, ts_dtype_name(x->dtype));
    maxpool_job j;
    memset(&j, 0, sizeof j);
    int64_t in[2] = { 1, 1 }, out[2] = { 1, 1 };
    for (int i = 0; i < nsp; i++) in[2 - nsp + i] = x->shape[x->ndim - nsp + i];
    if (in[0] < 1 || in[1] < 1)
        return ts_fail_null(TS_ERR_ARG, "%s: input %s has an empty spatial dim", op,
                            ts_shape_str(x->shape, x->ndim, sx, sizeof sx));
    j.adaptive = out_size != NULL;
    if (j.adaptive) {
        for (int i = 2 - nsp; i < 2; i++) {
            if (out_size[i] < 1)
                return ts_fail_null(TS_ERR_ARG, "%s: output size must be >= 1, got %lld", op, (long long)out_size[i]);
            out[i] = out_size[i];
        }
    } else {
        j.p = params_2d(p, nsp);
        if (ts_pool_window_check(op, true, &j.p, nsp, in, out)) return NULL;
    }
    int64_t shape[TS_MAX_DIMS], planes = 1;
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    for (int i = 0; i < nsp; i++) shape[x->ndim - nsp + i] = out[2 - nsp + i];
    for (int i = 0; i < x->ndim - nsp; i++) planes *= x->shape[i];

    ts_dtype ct = x->dtype == TS_F64 ? TS_F64 : TS_F32;
    ts_tensor *xc = ts_contiguous_as(x, ct);
    ts_tensor *y = xc ? ts_tensor_new(shape, x->ndim, ct) : NULL;
    ts_tensor *idx = y ? ts_tensor_new(shape, x->ndim, TS_I64) : NULL;
    if (!idx) {
        ts_tensor_release(xc);
        ts_tensor_release(y);
        return NULL;
    }
    j.dbl = ct == TS_F64;
    j.x = ts_tensor_data(xc);
    j.y = ts_tensor_data(y);
    j.idx = ts_tensor_data(idx);
    j.h = in[0]; j.w = in[1]; j.oh = out[0]; j.ow = out[1];
    const ts_pool_params *q = &j.p;
    j.fast2x2 = !j.adaptive && q->kernel[0] == 2 && q->kernel[1] == 2 && q->stride[0] == 2 && q->stride[1] == 2 &&
                q->padding[0] == 0 && q->padding[1] == 0 && q->dilation[0] == 1 && q->dilation[1] == 1 &&
                2 * j.oh <= j.h && 2 * j.ow <= j.w;
    int64_t work = j.oh * j.ow * (j.adaptive ? (j.h / j.oh + 1) * (j.w / j.ow + 1) : q->kernel[0] * q->kernel[1]);
    ts_parallel_for(planes, TS_GRAIN_HEAVY / (work > 0 ? work : 1) + 1, maxpool_planes, &j);
    ts_tensor_release(xc);
    if (y->dtype != x->dtype) {
        ts_tensor *n = ts_to_dtype(y, x->dtype);
        ts_tensor_release(y);
        if (!(y = n)) {
            ts_tensor_release(idx);
            return NULL;
        }
    }
    *indices = idx;
    return y;
}

/* ---- max pool backward ------------------------------------------------------------------- */

typedef struct route_job {
    bool dbl;
    const char *gy;
    const int64_t *idx;
    char *gx;
    int64_t in, out;              /* elements per input / output plane */
} route_job;

TS_NN_SIMD
static void route_planes(int64_t begin, int64_t end, void *ctx)
{
    const route_job *j = ctx;
    for (int64_t pl = begin; pl < end; pl++) {
        const int64_t *idx = j->idx + pl * j->out;
        if (j->dbl) {
            const double *g = (const double *)j->gy + pl * j->out;
            double *d = (double *)j->gx + pl * j->in;
            for (int64_t i = 0; i < j->out; i++) d[idx[i]] += g[i];
        } else {
            const float *g = (const float *)j->gy + pl * j->out;
            float *d = (float *)j->gx + pl * j->in;
            for (int64_t i = 0; i < j->out; i++) d[idx[i]] += g[i];
        }
    }
}

ts_tensor *ts_max_pool_backward(const ts_tensor *gy, const ts_tensor *indices, const int64_t *in_shape, int in_ndim,
                                int nsp)
{
    ts_dtype ct = gy->dtype == TS_F64 ? TS_F64 : TS_F32;
    if (ts_require_cpu("max_pool backward", gy)) return NULL;
    ts_tensor *gc = ts_contiguous_as(gy, ct), *ic = gc ? ts_contiguous_as(indices, TS_I64) : NULL;
    ts_tensor *gx = ic ? ts_tensor_zeros(in_shape, in_ndim, ct) : NULL;
    if (gx) {
        route_job j = { ct == TS_F64, ts_tensor_data(gc), ts_tensor_data(ic), ts_tensor_data(gx), 1, 1 };
        int64_t planes = 1;
        for (int i = 0; i < in_ndim; i++) {
            if (i < in_ndim - nsp) planes *= in_shape[i];
            else { j.in *= in_shape[i]; j.out *= gy->shape[i]; }
        }
        /* indices come from our forward: inside [0, in) of their plane */
        ts_parallel_for(planes, TS_GRAIN_ELEMENTWISE / (j.out + 1) + 1, route_planes, &j);
    }
    ts_tensor_release(gc);
    ts_tensor_release(ic);
    return gx;
}

/* ---- average pool backward --------------------------------------------------------------- */

typedef struct avgb_job {
    bool dbl, adaptive;
    const char *gy;
    char *gx;
    int64_t h, w, oh, ow;
    ts_pool_params p;             /* 2-entry form (window pools) */
} avgb_job;

/* The window of output (oh, ow) clipped to the plane, and its divisor, as
 * pool.c's avg_plane / adaptive_plane compute them. */
static int64_t avg_window(const avgb_job *j, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1, int64_t *w0, int64_t *w1)
{
    if (j->adaptive) {
        *h0 = adaptive_start(oh, j->h, j->oh); *h1 = adaptive_end(oh, j->h, j->oh);
        *w0 = adaptive_start(ow, j->w, j->ow); *w1 = adaptive_end(ow, j->w, j->ow);
        return (*h1 - *h0) * (*w1 - *w0);
    }
    const ts_pool_params *p = &j->p;
    int64_t a = oh * p->stride[0] - p->padding[0];
    int64_t b = a + p->kernel[0] < j->h + p->padding[0] ? a + p->kernel[0] : j->h + p->padding[0];
    int64_t hspan = b - a;
    *h0 = a < 0 ? 0 : a; *h1 = b > j->h ? j->h : b;
    a = ow * p->stride[1] - p->padding[1];
    b = a + p->kernel[1] < j->w + p->padding[1] ? a + p->kernel[1] : j->w + p->padding[1];
    int64_t wspan = b - a;
    *w0 = a < 0 ? 0 : a; *w1 = b > j->w ? j->w : b;
    return p->count_include_pad ? hspan * wspan : (*h1 - *h0) * (*w1 - *w0);
}

TS_NN_SIMD
static void avgb_planes(int64_t begin, int64_t end, void *ctx)
{
    const avgb_job *j = ctx;
    int64_t in = j->h * j->w, out = j->oh * j->ow;
    for (int64_t pl = begin; pl < end; pl++)
        for (int64_t oh = 0; oh < j->oh; oh++)
            for (int64_t ow = 0; ow < j->ow; ow++) {
                int64_t h0, h1, w0, w1;
                int64_t count = avg_window(j, oh, ow, &h0, &h1, &w0, &w1);
                if (count <= 0) continue;
                if (j->dbl) {
                    double v = ((const double *)j->gy)[pl * out + oh * j->ow + ow] / (double)count;
                    double *d = (double *)j->gx + pl * in;
                    for (int64_t h = h0; h < h1; h++)
                        for (int64_t w = w0; w < w1; w++) d[h * j->w + w] += v;
                } else {
                    float v = (float)(((const float *)j->gy)[pl * out + oh * j->ow + ow] / (double)count);
                    float *d = (float *)j->gx + pl * in;
                    for (int64_t h = h0; h < h1; h++)
                        for (int64_t w = w0; w < w1; w++) d[h * j->w + w] += v;
                }
            }
}

ts_tensor *ts_avg_pool_backward(const ts_tensor *gy, const int64_t *in_shape, int in_ndim, const ts_pool_params *p,
                                int nsp, bool adaptive)
{
    ts_dtype ct = gy->dtype == TS_F64 ? TS_F64 : TS_F32;
    if (ts_require_cpu("avg_pool backward", gy)) return NULL;
    avgb_job j;
    memset(&j, 0, sizeof j);
    j.dbl = ct == TS_F64;
    j.adaptive = adaptive;
    if (!adaptive) {
        j.p = params_2d(p, nsp);
        j.p.dilation[0] = j.p.dilation[1] = 1;
    }
    j.h = nsp == 2 ? in_shape[in_ndim - 2] : 1;
    j.w = in_shape[in_ndim - 1];
    j.oh = nsp == 2 ? gy->shape[gy->ndim - 2] : 1;
    j.ow = gy->shape[gy->ndim - 1];
    int64_t planes = 1;
    for (int i = 0; i < in_ndim - nsp; i++) planes *= in_shape[i];
    ts_tensor *gc = ts_contiguous_as(gy, ct);
    ts_tensor *gx = gc ? ts_tensor_zeros(in_shape, in_ndim, ct) : NULL;
    if (gx) {
        j.gy = ts_tensor_data(gc);
        j.gx = ts_tensor_data(gx);
        int64_t work = j.oh * j.ow * (adaptive ? (j.h / j.oh + 1) * (j.w / j.ow + 1) : j.p.kernel[0] * j.p.kernel[1]);
        ts_parallel_for(planes, TS_GRAIN_HEAVY / (work > 0 ? work : 1) + 1, avgb_planes, &j);
    }
    ts_tensor_release(gc);
    return gx;
}
