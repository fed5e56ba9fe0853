/* norm.c — normalisation and softmax: inference batch norm (running
 * statistics over dim 1), layer norm (over the last dims), group norm, and
 * softmax / log_softmax along any dim: the front-ends and the CPU kernel
 * ts_cpu_softmax (the backend table's softmax entry).
 *
 * Floating dtypes only, like PyTorch. Inputs are read as contiguous f32
 * (f32, f16, bf16) or f64 copies and results narrowed back to the input's
 * dtype. Means and variances accumulate in double; elementwise work stays in
 * the compute dtype, with loops written so the compiler vectorises them (f32
 * softmax has its own exp for that). Rows, planes and groups are the units
 * handed to ts_parallel_for, so results do not depend on the thread count. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared helpers --------------------------------------------------------------- */


/* Fails unless the optional parameter t (weight, bias, statistics) is a
 * floating tensor with exactly `n` elements in `ndim` dims shaped `shape`. */
static ts_status check_param(const char *op, const char *what, const ts_tensor *t, const int64_t *shape, int ndim)
{
    if (!t) return TS_OK;
    if (ts_require_float_cpu(op, what, t)) return ts_last_status();
    bool same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char a[TS_SHAPE_STR_CAP], b[TS_SHAPE_STR_CAP];
        return ts_fail(TS_ERR_ARG, "%s: %s must be %s, got %s", op, what, ts_shape_str(shape, ndim, a, sizeof a),
                       ts_shape_str(t->shape, t->ndim, b, sizeof b));
    }
    return TS_OK;
}

/* The n values of an optional parameter as doubles (def when t is NULL). */
static ts_status param_values(const ts_tensor *t, int64_t n, double def, double *out)
{
    if (!t) {
        for (int64_t i = 0; i < n; i++) out[i] = def;
        return TS_OK;
    }
    ts_tensor *d = ts_to_dtype(t, TS_F64);
    if (!d) return ts_last_status();
    memcpy(out, ts_tensor_data(d), sizeof(double) * (size_t)n);
    ts_tensor_release(d);
    return TS_OK;
}

static double *alloc_doubles(const char *op, int64_t n)
{
    double *p = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!p) ts_fail(TS_ERR_MEMORY, "%s: out of memory for %lld parameters", op, (long long)n);
    return p;
}

/* ---- affine kernel: y = x * scale[c] + shift[c] over planes ----------------------------- */

typedef struct affine_job {
    bool dbl;
    const char *x;
    char *y;
    const double *scale, *shift;   /* per channel */
    int64_t channels, inner;       /* plane p has channel p % channels, `inner` elements */
} affine_job;

static inline void affine_plane(const affine_job *j, int64_t plane, bool dbl)
{
    int64_t c = plane % j->channels, off = plane * j->inner;
    if (dbl) {
        const double *x = (const double *)j->x + off;
        double *y = (double *)j->y + off, a = j->scale[c], b = j->shift[c];
        for (int64_t i = 0; i < j->inner; i++) y[i] = x[i] * a + b;
    } else {
        const float *x = (const float *)j->x + off;
        float *y = (float *)j->y + off, a = (float)j->scale[c], b = (float)j->shift[c];
        for (int64_t i = 0; i < j->inner; i++) y[i] = x[i] * a + b;
    }
}

static void affine_planes(int64_t begin, int64_t end, void *ctx)
{
    const affine_job *j = ctx;
    for (int64_t p = begin; p < end; p++) affine_plane(j, p, j->dbl);
}

/* ---- batch norm ----------------------------------------------------------------------- */

ts_tensor *ts_batch_norm(const ts_tensor *x, const ts_tensor *mean, const ts_tensor *var,
                         const ts_tensor *weight, const ts_tensor *bias, double eps)
{
    const char *op = "batch_norm";
    char sx[TS_SHAPE_STR_CAP];
    if (ts_require_float_cpu(op, "input", x)) return NULL;
    if (x->ndim < 2)
        return ts_fail_null(TS_ERR_ARG, "%s: input must be [N, C, ...] (at least 2 dims), got %s", op,
                            ts_shape_str(x->shape, x->ndim, sx, sizeof sx));
    int64_t c = x->shape[1];
    if (check_param(op, "running_mean", mean, &c, 1) || check_param(op, "running_var", var, &c, 1) ||
        check_param(op, "weight", weight, &c, 1) || check_param(op, "bias", bias, &c, 1))
        return NULL;
    double *m = alloc_doubles(op, 4 * c);
    if (!m) return NULL;
    double *v = m + c, *w = m + 2 * c, *b = m + 3 * c;
    ts_dtype ct = ts_float_compute_dtype(x->dtype);
    ts_tensor *xc = NULL, *y = NULL;
    if (param_values(mean, c, 0, m) || param_values(var, c, 1, v) || param_values(weight, c, 1, w) ||
        param_values(bias, c, 0, b))
        goto done;
    for (int64_t i = 0; i < c; i++) {   /* fold into one scale and shift per channel */
        double scale = w[i] / sqrt(v[i] + eps);
        b[i] -= m[i] * scale;
        w[i] = scale;
    }
    if (!(xc = ts_contiguous_as(x, ct)) || !(y = ts_tensor_new(x->shape, x->ndim, ct))) goto done;
    int64_t n = ts_tensor_numel(x), inner = 1;
    for (int i = 2; i < x->ndim; i++) inner *= x->shape[i];
    affine_job j = { ct == TS_F64, ts_tensor_data(xc), ts_tensor_data(y), w, b, c, inner };
    if (n > 0) ts_parallel_for(x->shape[0] * c, TS_GRAIN_ELEMENTWISE / (inner + 1) + 1, affine_planes, &j);
done:
    free(m);
    ts_tensor_release(xc);
    return ts_narrow_dtype(y, x->dtype);
}

/* ---- vector-friendly helpers -------------------------------------------------------------
 * Sums run over LANES independent partial sums so the compiler can use SIMD
 * without reassociating (the order is fixed, so results stay deterministic).
 * Selections go through bit masks: a `?:` on floats keeps GCC from
 * vectorising a loop unless -fno-trapping-math. */

#define LANES 8

/* Sum of (x - mean)^2 over n contiguous values, in double. */
static double sqdev_run(const char *p, int64_t n, double mean, bool dbl)
{
    double acc[LANES] = { 0 }, s = 0;
    int64_t i = 0;
    if (dbl) {
        const double *x = (const double *)p;
        for (; i + LANES <= n; i += LANES)
            for (int k = 0; k < LANES; k++) acc[k] += (x[i + k] - mean) * (x[i + k] - mean);
        for (; i < n; i++) s += (x[i] - mean) * (x[i] - mean);
    } else {
        const float *x = (const float *)p;
        for (; i + LANES <= n; i += LANES)
            for (int k = 0; k < LANES; k++) acc[k] += ((double)x[i + k] - mean) * ((double)x[i + k] - mean);
        for (; i < n; i++) s += ((double)x[i] - mean) * ((double)x[i] - mean);
    }
    for (int k = 0; k < LANES; k++) s += acc[k];
    return s;
}

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float f32_of_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
/* a where mask is all ones, b where it is zero (mask = -(uint32_t)(comparison)). */
static inline float select_f32(uint32_t mask, float a, float b)
{
    return f32_of_bits((f32_bits(a) & mask) | (f32_bits(b) & ~mask));
}
static inline float max_f32(float a, float b) { return select_f32(-(uint32_t)(a > b), a, b); }

/* exp(x) for f32 within about 1 ulp, written so loops of it vectorise:
 * exp(x) = 2^n exp(r) with n = round(x / ln 2) and Cephes' polynomial for
 * exp(r). Below -87 it gives 0, above 88 infinity, NaN stays NaN. */
static inline float exp_f32(float x)
{
    uint32_t nan = -(uint32_t)(x != x), under = -(uint32_t)(x < -87.0f), over = -(uint32_t)(x > 88.0f);
    float xc = select_f32(nan | under, -87.0f, select_f32(over, 88.0f, x));
    float fn = xc * 1.44269504088896341f;
    int32_t n = (int32_t)(fn + select_f32(-(uint32_t)(fn < 0), -0.5f, 0.5f));
    float r = xc - (float)n * 0.693359375f - (float)n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float e = (p * r * r + r + 1.0f) * f32_of_bits((uint32_t)(n + 127) << 23);
    return select_f32(nan, x, select_f32(under, 0.0f, select_f32(over, INFINITY, e)));
}

/* ---- layer norm and group norm ------------------------------------------------------------
 * Both normalise rows of `len` contiguous elements with the row's mean and
 * (biased) variance. Layer norm then applies weight/bias per element of the
 * row; group norm per channel, each channel a run of `spatial` elements. */

typedef struct rownorm_job {
    bool dbl;
    const char *x;
    char *y;
    const double *w, *b;      /* affine values (NULL: none); layer norm: len, group norm: C */
    const float *wf, *bf;     /* the same as f32, for layer norm on f32 */
    int64_t len;              /* elements per row */
    int64_t groups;           /* group norm: rows per sample; 0 for layer norm */
    int64_t spatial;          /* group norm: elements per channel */
    double eps;
} rownorm_job;

/* Layer norm of one row: y = (x - mean) * rstd * w + b. */
static void layer_row(const rownorm_job *j, const char *xp, char *yp, double mean, double rstd)
{
    int64_t n = j->len;
    if (j->dbl) {
        const double *x = (const double *)xp;
        double *y = (double *)yp;
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mean) * rstd;
        if (j->w)
            for (int64_t i = 0; i < n; i++) y[i] = y[i] * j->w[i] + j->b[i];
        return;
    }
    const float *x = (const float *)xp;
    float *y = (float *)yp, m = (float)mean, r = (float)rstd;
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) * r;
    if (j->wf)
        for (int64_t i = 0; i < n; i++) y[i] = y[i] * j->wf[i] + j->bf[i];
}

/* Group norm of one row (group g of a sample): channel c of the group gets
 * y = x * a + b' with a = rstd * w[c], b' = b[c] - mean * a. */
static void group_row(const rownorm_job *j, int64_t g, const char *xp, char *yp, double mean, double rstd)
{
    int64_t cg = j->len / (j->spatial > 0 ? j->spatial : 1);
    for (int64_t k = 0; k < cg; k++) {
        int64_t c = g * cg + k, off = k * j->spatial;
        double a = rstd * (j->w ? j->w[c] : 1.0), b = (j->b ? j->b[c] : 0.0) - mean * a;
        if (j->dbl) {
            const double *x = (const double *)xp + off;
            double *y = (double *)yp + off;
            for (int64_t i = 0; i < j->spatial; i++) y[i] = x[i] * a + b;
        } else {
            const float *x = (const float *)xp + off;
            float *y = (float *)yp + off, af = (float)a, bf = (float)b;
            for (int64_t i = 0; i < j->spatial; i++) y[i] = x[i] * af + bf;
        }
    }
}

static void rownorm_rows(int64_t begin, int64_t end, void *ctx)
{
    const rownorm_job *j = ctx;
    size_t es = j->dbl ? 8 : 4;
    for (int64_t r = begin; r < end; r++) {
        const char *x = j->x + (size_t)(r * j->len) * es;
        char *y = j->y + (size_t)(r * j->len) * es;
        double mean = ts_sum_run(x, j->len, j->dbl) / (double)j->len;
        double rstd = 1.0 / sqrt(sqdev_run(x, j->len, mean, j->dbl) / (double)j->len + j->eps);
        if (j->groups) group_row(j, r % j->groups, x, y, mean, rstd);
        else layer_row(j, x, y, mean, rstd);
    }
}

/* Runs the job over x (rows of j->len) into a new tensor shaped like x. */
static ts_tensor *rownorm_run(rownorm_job *j, const ts_tensor *x)
{
    ts_dtype ct = ts_float_compute_dtype(x->dtype);
    ts_tensor *xc = ts_contiguous_as(x, ct);
    ts_tensor *y = xc ? ts_tensor_new(x->shape, x->ndim, ct) : NULL;
    if (y) {
        j->dbl = ct == TS_F64;
        j->x = ts_tensor_data(xc);
        j->y = ts_tensor_data(y);
        int64_t rows = j->len ? ts_tensor_numel(x) / j->len : 0;
        ts_parallel_for(rows, TS_GRAIN_HEAVY / (j->len + 1) + 1, rownorm_rows, j);
    }
    ts_tensor_release(xc);
    return ts_narrow_dtype(y, x->dtype);
}

/* Weight and bias values of n elements (defaults 1 and 0 for an absent one),
 * as doubles in *w (2n: weight then bias) and, when f32 is set, also as
 * floats in *wf (2n). NULL (both) when neither is given. */
static ts_status affine_values(const char *op, const ts_tensor *weight, const ts_tensor *bias, int64_t n, bool f32,
                               double **w, float **wf)
{
    *w = NULL;
    *wf = NULL;
    if (!weight && !bias) return TS_OK;
    if (!(*w = alloc_doubles(op, 2 * n))) return ts_last_status();
    if (param_values(weight, n, 1, *w) || param_values(bias, n, 0, *w + n)) goto fail;
    if (f32) {
        if (!(*wf = malloc(sizeof(float) * (size_t)(2 * n > 0 ? 2 * n : 1)))) {
            ts_fail(TS_ERR_MEMORY, "%s: out of memory for %lld parameters", op, (long long)n);
            goto fail;
        }
        for (int64_t i = 0; i < 2 * n; i++) (*wf)[i] = (float)(*w)[i];
    }
    return TS_OK;
fail:
    free(*w);
    *w = NULL;
    return ts_last_status();
}

ts_tensor *ts_layer_norm(const ts_tensor *x, int norm_ndim, const ts_tensor *weight, const ts_tensor *bias,
                         double eps)
{
    const char *op = "layer_norm";
    char sx[TS_SHAPE_STR_CAP];
    if (ts_require_float_cpu(op, "input", x)) return NULL;
    if (norm_ndim < 1 || norm_ndim > x->ndim)
        return ts_fail_null(TS_ERR_ARG, "%s: cannot normalise the last %d dims of input %s", op, norm_ndim,
                            ts_shape_str(x->shape, x->ndim, sx, sizeof sx));
    const int64_t *nshape = x->shape + x->ndim - norm_ndim;
    if (check_param(op, "weight", weight, nshape, norm_ndim) || check_param(op, "bias", bias, nshape, norm_ndim))
        return NULL;
    int64_t len = 1;
    for (int i = 0; i < norm_ndim; i++) len *= nshape[i];
    double *w;
    float *wf;
    if (affine_values(op, weight, bias, len, x->dtype != TS_F64, &w, &wf)) return NULL;
    rownorm_job j = { .w = w, .b = w ? w + len : NULL, .wf = wf, .bf = wf ? wf + len : NULL, .len = len,
                      .eps = eps };
    ts_tensor *y = rownorm_run(&j, x);
    free(w);
    free(wf);
    return y;
}

ts_tensor *ts_group_norm(const ts_tensor *x, int64_t groups, const ts_tensor *weight, const ts_tensor *bias,
                         double eps)
{
    const char *op = "group_norm";
    char sx[TS_SHAPE_STR_CAP];
    if (ts_require_float_cpu(op, "input", x)) return NULL;
    if (x->ndim < 2)
        return ts_fail_null(TS_ERR_ARG, "%s: input must be [N, C, ...] (at least 2 dims), got %s", op,
                            ts_shape_str(x->shape, x->ndim, sx, sizeof sx));
    int64_t c = x->shape[1];
    if (groups < 1 || c % groups)
        return ts_fail_null(TS_ERR_ARG, "%s: %lld channels cannot be split into %lld groups", op, (long long)c,
                            (long long)groups);
    if (check_param(op, "weight", weight, &c, 1) || check_param(op, "bias", bias, &c, 1)) return NULL;
    int64_t spatial = 1;
    for (int i = 2; i < x->ndim; i++) spatial *= x->shape[i];
    double *w;
    float *wf;
    if (affine_values(op, weight, bias, c, false, &w, &wf)) return NULL;
    rownorm_job j = { .w = w, .b = w ? w + c : NULL, .len = c / groups * spatial, .groups = groups,
                      .spatial = spatial, .eps = eps };
    ts_tensor *y = rownorm_run(&j, x);
    free(w);
    return y;
}

/* ---- softmax ---------------------------------------------------------------------------
 * x is viewed as [outer, D, inner] with D the softmax dim. inner == 1: each
 * row of D is contiguous. inner > 1: blocks of up to SOFTMAX_COLS inner
 * positions are processed together so every pass reads memory in order.
 * f32 has its own loops (vectorised exp); f64 goes through the generic ones.
 * A NaN anywhere in a row makes the whole row NaN, like PyTorch. */

#define SOFTMAX_COLS 64

typedef struct softmax_job {
    bool dbl, log;
    const char *x;
    char *y;
    int64_t outer, d, inner, nchunks;
} softmax_job;

/* One contiguous f32 row of n values. */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
static void softmax_row_f32(const float *x, float *y, int64_t n, bool take_log)
{
    float lane[LANES];
    for (int k = 0; k < LANES; k++) lane[k] = -INFINITY;
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) lane[k] = max_f32(x[i + k], lane[k]);
    float m = -INFINITY;
    for (; i < n; i++) m = max_f32(x[i], m);
    for (int k = 0; k < LANES; k++) m = max_f32(lane[k], m);
    for (i = 0; i < n; i++) y[i] = exp_f32(x[i] - m);
    double sum = ts_sum_run((const char *)y, n, false);
    if (take_log) {
        float lse = (float)(m + log(sum));
        for (i = 0; i < n; i++) y[i] = x[i] - lse;
    } else {
        float inv = (float)(1.0 / sum);
        for (i = 0; i < n; i++) y[i] *= inv;
    }
}

/* One contiguous f64 row of n values. */
static void softmax_row_f64(const double *x, double *y, int64_t n, bool take_log)
{
    double m = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    for (int64_t i = 0; i < n; i++) sum += (y[i] = exp(x[i] - m));
    if (take_log) {
        double lse = m + log(sum);
        for (int64_t i = 0; i < n; i++) y[i] = x[i] - lse;
    } else {
        for (int64_t i = 0; i < n; i++) y[i] /= sum;
    }
}

/* nc f32 columns: D rows of stride s. */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
static void softmax_cols_f32(const float *x, float *y, int64_t d, int64_t s, int64_t nc, bool take_log)
{
    float m[SOFTMAX_COLS], sum[SOFTMAX_COLS];
    for (int64_t c = 0; c < nc; c++) { m[c] = -INFINITY; sum[c] = 0; }
    for (int64_t k = 0; k < d; k++)
        for (int64_t c = 0; c < nc; c++) m[c] = max_f32(x[k * s + c], m[c]);
    for (int64_t k = 0; k < d; k++)
        for (int64_t c = 0; c < nc; c++) {
            float e = exp_f32(x[k * s + c] - m[c]);
            y[k * s + c] = e;
            sum[c] += e;
        }
    for (int64_t c = 0; c < nc; c++) sum[c] = take_log ? m[c] + logf(sum[c]) : 1.0f / sum[c];
    for (int64_t k = 0; k < d; k++)
        for (int64_t c = 0; c < nc; c++) y[k * s + c] = take_log ? x[k * s + c] - sum[c] : y[k * s + c] * sum[c];
}

/* nc f64 columns: D rows of stride s. */
static void softmax_cols_f64(const double *x, double *y, int64_t d, int64_t s, int64_t nc, bool take_log)
{
    double m[SOFTMAX_COLS], sum[SOFTMAX_COLS];
    for (int64_t c = 0; c < nc; c++) { m[c] = -INFINITY; sum[c] = 0; }
    for (int64_t k = 0; k < d; k++)
        for (int64_t c = 0; c < nc; c++) m[c] = x[k * s + c] > m[c] ? x[k * s + c] : m[c];
    for (int64_t k = 0; k < d; k++)
        for (int64_t c = 0; c < nc; c++) sum[c] += (y[k * s + c] = exp(x[k * s + c] - m[c]));
    for (int64_t c = 0; c < nc; c++) sum[c] = take_log ? m[c] + log(sum[c]) : 1.0 / sum[c];
    for (int64_t k = 0; k < d; k++)
        for (int64_t c = 0; c < nc; c++) y[k * s + c] = take_log ? x[k * s + c] - sum[c] : y[k * s + c] * sum[c];
}

static void softmax_units(int64_t begin, int64_t end, void *ctx)
{
    const softmax_job *j = ctx;
    size_t es = j->dbl ? 8 : 4;
    for (int64_t u = begin; u < end; u++) {
        size_t off;
        int64_t n;
        if (j->inner == 1) {   /* unit = one row */
            off = (size_t)(u * j->d) * es;
            n = j->d;
        } else {               /* unit = (outer block, column chunk) */
            int64_t o = u / j->nchunks, c0 = (u % j->nchunks) * SOFTMAX_COLS;
            off = (size_t)(o * j->d * j->inner + c0) * es;
            n = j->inner - c0 < SOFTMAX_COLS ? j->inner - c0 : SOFTMAX_COLS;
        }
        const char *x = j->x + off;
        char *y = j->y + off;
        if (j->inner == 1 && j->dbl) softmax_row_f64((const double *)x, (double *)y, n, j->log);
        else if (j->inner == 1) softmax_row_f32((const float *)x, (float *)y, n, j->log);
        else if (j->dbl) softmax_cols_f64((const double *)x, (double *)y, j->d, j->inner, n, j->log);
        else softmax_cols_f32((const float *)x, (float *)y, j->d, j->inner, n, j->log);
    }
}

ts_status ts_cpu_softmax(ts_tensor *out, const ts_tensor *x, int dim, bool log)
{
    ts_dtype ct = ts_float_compute_dtype(out->dtype);
    softmax_job j = { ct == TS_F64, log, NULL, NULL, 1, 1, 1, 1 };
    for (int i = 0; i < x->ndim; i++) {
        if (i < dim) j.outer *= x->shape[i];
        else if (i > dim) j.inner *= x->shape[i];
    }
    if (x->ndim > 0) j.d = x->shape[dim];
    j.nchunks = (j.inner + SOFTMAX_COLS - 1) / SOFTMAX_COLS;
    if (ts_tensor_numel(x) == 0) return TS_OK;
    ts_tensor *xc = ts_contiguous_as(x, ct);
    bool in_place = out->dtype == ct && ts_tensor_is_contiguous(out);
    ts_tensor *yc = !xc ? NULL : in_place ? out : ts_tensor_new(out->shape, out->ndim, ct);
    ts_status status = TS_OK;
    if (!yc) {
        status = ts_last_status();
    } else {
        j.x = ts_tensor_data(xc);
        j.y = ts_tensor_data(yc);
        int64_t units = j.inner == 1 ? j.outer : j.outer * j.nchunks;
        int64_t per_unit = j.d * (j.inner == 1 ? 1 : SOFTMAX_COLS);
        ts_parallel_for(units, TS_GRAIN_HEAVY / (per_unit + 1) + 1, softmax_units, &j);
        if (!in_place) status = ts_copy_(out, yc);
    }
    ts_tensor_release(xc);
    if (yc && !in_place) ts_tensor_release(yc);
    return status;
}

static ts_tensor *softmax_front(const char *op, const ts_tensor *x, int dim, bool log)
{
    if (!ts_dtype_is_float(x->dtype))
        return ts_fail_null(TS_ERR_ARG, "%s: needs a floating dtype, got %s", op, ts_dtype_name(x->dtype));
    int d;
    if (ts_wrap_dim(op, dim, x->ndim, &d)) return NULL;
    const ts_backend *be = ts_backend_of(x);
    if (!be->softmax) return ts_fail_null(TS_ERR_UNSUPPORTED, "%s: not implemented on %s", op, be->name);
    ts_tensor *out = ts_tensor_new_on(x, x->shape, x->ndim, x->dtype);
    if (out && be->softmax(out, x, d, log)) {
        ts_tensor_release(out);
        return NULL;
    }
    return out;
}

ts_tensor *ts_softmax(const ts_tensor *x, int dim) { return softmax_front("softmax", x, dim, false); }
ts_tensor *ts_log_softmax(const ts_tensor *x, int dim) { return softmax_front("log_softmax", x, dim, true); }
