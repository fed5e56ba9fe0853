/* norm_backward.c — training-mode batch norm (ts_batch_norm_train: batch
 * statistics, the running-statistics update) and the backward kernels of
 * batch norm (train and eval), layer norm, group norm and softmax /
 * log_softmax.
 *
 * Each kernel makes one or two passes over the data with the sums it needs
 * accumulated in double (over partial sums, in a fixed order): batch norm
 * takes a range of channels per unit of work and walks it sample by sample
 * (memory order), layer and group norm one row (a sample, or a sample's
 * group), softmax one row or a block of columns. The weight gradients of layer norm sum over rows into partials
 * per fixed chunk of rows, and group norm's into per-sample slots; both are
 * added in order afterwards, so no result depends on the thread count.
 * f32 and f64 run natively; f16 and bf16 as f32. CPU only, like norm.c. */
#include "nn_grad.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LANES 32   /* partial sums: enough independent chains to keep AVX-512 busy */

/* ---- shared helpers ---------------------------------------------------------------------- */


/* Fails unless the optional t is a floating 1-D tensor of n elements. */
static ts_status check_vector(const char *op, const char *what, const ts_tensor *t, int64_t n)
{
    if (!t) return TS_OK;
    if (ts_require_float_cpu(op, what, t)) return ts_last_status();
    if (t->ndim != 1 || t->shape[0] != n) {
        char s[TS_SHAPE_STR_CAP];
        return ts_fail(TS_ERR_ARG, "%s: %s must be [%lld], got %s", op, what, (long long)n,
                       ts_shape_str(t->shape, t->ndim, s, sizeof s));
    }
    return TS_OK;
}

/* The n values of t (any shape of n elements) as malloc'd doubles; NULL
 * (no error) when t is NULL, NULL with an error on failure (*bad set). */
static double *values_of(const ts_tensor *t, int64_t n, bool *bad)
{
    if (!t) return NULL;
    double *v = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    ts_tensor *d = v ? ts_to_dtype(t, TS_F64) : NULL;
    if (!d) {
        if (!v) ts_fail(TS_ERR_MEMORY, "out of memory for %lld values", (long long)n);
        free(v);
        *bad = true;
        return NULL;
    }
    memcpy(v, ts_tensor_data(d), sizeof(double) * (size_t)n);
    ts_tensor_release(d);
    return v;
}

/* A new 1-D tensor of dtype dt holding n doubles. */
static ts_tensor *vector_of(const double *v, int64_t n, ts_dtype dt)
{
    return ts_tensor_from_data(v, TS_F64, &n, 1, dt);
}

/* Sums of a run go over LANES partial sums in double: lane k takes elements
 * k, k + LANES, ... of the run, the tail goes to the first lanes, and the
 * lanes are added up pairwise at the end. The order is fixed, so results
 * are deterministic. Runs shorter than LANES are summed straight. */

/* acc[] += the n values at p. */
TS_NN_INLINE void lanes_sum(double *acc, const char *p, int64_t n, bool dbl)
{
    int64_t i = 0;
    if (dbl) {
        const double *x = (const double *)p;
        for (; i + LANES <= n; i += LANES)
            for (int k = 0; k < LANES; k++) acc[k] += x[i + k];
        for (int k = 0; i < n; i++, k++) acc[k] += x[i];
    } else {
        const float *x = (const float *)p;
        for (; i + LANES <= n; i += LANES)
            for (int k = 0; k < LANES; k++) acc[k] += x[i + k];
        for (int k = 0; i < n; i++, k++) acc[k] += x[i];
    }
}

/* acc[] += (x - m)^2 over the n values at p. */
TS_NN_INLINE void lanes_sqdev(double *acc, const char *p, int64_t n, double m, bool dbl)
{
    int64_t i = 0;
    if (dbl) {
        const double *x = (const double *)p;
        for (; i + LANES <= n; i += LANES)
            for (int k = 0; k < LANES; k++) acc[k] += (x[i + k] - m) * (x[i + k] - m);
        for (int k = 0; i < n; i++, k++) acc[k] += (x[i] - m) * (x[i] - m);
    } else {
        const float *x = (const float *)p;
        for (; i + LANES <= n; i += LANES)
            for (int k = 0; k < LANES; k++) acc[k] += ((double)x[i + k] - m) * ((double)x[i + k] - m);
        for (int k = 0; i < n; i++, k++) acc[k] += ((double)x[i] - m) * ((double)x[i] - m);
    }
}

/* a[] += g, b[] += g (x - m) over n values. */
TS_NN_INLINE void lanes_dot(double *a, double *b, const char *gp, const char *xp, int64_t n, double m, bool dbl)
{
    int64_t i = 0;
    if (dbl) {
        const double *g = (const double *)gp, *x = (const double *)xp;
        for (; i + LANES <= n; i += LANES)
            for (int k = 0; k < LANES; k++) { a[k] += g[i + k]; b[k] += g[i + k] * (x[i + k] - m); }
        for (int k = 0; i < n; i++, k++) { a[k] += g[i]; b[k] += g[i] * (x[i] - m); }
    } else {
        const float *g = (const float *)gp, *x = (const float *)xp;
        for (; i + LANES <= n; i += LANES)
            for (int k = 0; k < LANES; k++) {
                a[k] += g[i + k];
                b[k] += (double)g[i + k] * ((double)x[i + k] - m);
            }
        for (int k = 0; i < n; i++, k++) { a[k] += g[i]; b[k] += (double)g[i] * ((double)x[i] - m); }
    }
}

/* The total of the lanes (added pairwise; acc is left changed). */
TS_NN_INLINE double lanes_total(double *acc)
{
    for (int w = LANES / 2; w > 0; w /= 2)
        for (int k = 0; k < w; k++) acc[k] += acc[k + w];
    return acc[0];
}

TS_NN_INLINE double sqdev_run(const char *p, int64_t n, double m, bool dbl)
{
    if (n < LANES) {
        double t = 0;
        for (int64_t i = 0; i < n; i++) {
            double d = (dbl ? ((const double *)p)[i] : ((const float *)p)[i]) - m;
            t += d * d;
        }
        return t;
    }
    double acc[LANES] = { 0 };
    lanes_sqdev(acc, p, n, m, dbl);
    return lanes_total(acc);
}

/* *s1 += sum of g, *s2 += sum of g * (x - m), over n contiguous values. */
TS_NN_INLINE void dot_run(const char *gp, const char *xp, int64_t n, double m, bool dbl, double *s1, double *s2)
{
    if (n < LANES) {
        for (int64_t i = 0; i < n; i++) {
            double g = dbl ? ((const double *)gp)[i] : ((const float *)gp)[i];
            double x = dbl ? ((const double *)xp)[i] : ((const float *)xp)[i];
            *s1 += g;
            *s2 += g * (x - m);
        }
        return;
    }
    double a[LANES] = { 0 }, b[LANES] = { 0 };
    lanes_dot(a, b, gp, xp, n, m, dbl);
    *s1 += lanes_total(a);
    *s2 += lanes_total(b);
}

/* out[i] = a * g[i] + b * x[i] + c over n contiguous values (g or x may be
 * NULL when its factor is 0). */
TS_NN_INLINE void combine_run(const char *gp, const char *xp, char *op, int64_t n, double a, double b, double c, bool dbl)
{
    if (dbl) {
        const double *g = (const double *)gp, *x = (const double *)xp;
        double *o = (double *)op;
        if (!x) for (int64_t i = 0; i < n; i++) o[i] = a * g[i] + c;
        else if (!g) for (int64_t i = 0; i < n; i++) o[i] = b * x[i] + c;
        else for (int64_t i = 0; i < n; i++) o[i] = a * g[i] + b * x[i] + c;
        return;
    }
    const float *restrict g = (const float *)gp, *restrict x = (const float *)xp;
    float *restrict o = (float *)op;
    float af = (float)a, bf = (float)b, cf = (float)c;
    if (!x) for (int64_t i = 0; i < n; i++) o[i] = af * g[i] + cf;
    else if (!g) for (int64_t i = 0; i < n; i++) o[i] = bf * x[i] + cf;
    else for (int64_t i = 0; i < n; i++) o[i] = af * g[i] + bf * x[i] + cf;
}

/* ---- batch norm: forward with batch statistics ------------------------------------------ */

typedef struct bn_job {
    bool dbl, train;
    const char *x, *gy;
    char *out;                   /* forward: y; backward: gx (NULL: not wanted) */
    int64_t n, c, inner;
    double eps;
    const double *w, *b;         /* [C] or NULL (1 and 0) */
    double *mean, *var, *invstd; /* [C] */
    double *s1, *s2;             /* backward: sum gy, sum gy (x - mean); NULL: not needed */
} bn_job;

/* Batch norm takes a range of channels [begin, end) at a time and walks it
 * sample by sample, so every pass streams through memory in order (going
 * channel by channel would read a channel's planes scattered over the
 * batch, which costs several times more). The statistics merge each plane's
 * mean and squared deviations into its channel's (Chan, Golub and LeVeque),
 * in sample order whatever the range, so results do not depend on it. */
TS_NN_SIMD
static void bn_forward_channels(int64_t begin, int64_t end, void *ctx)
{
    const bn_job *j = ctx;
    int64_t es = j->dbl ? 8 : 4;
    double per = (double)j->inner;
    for (int64_t n = 0; n < j->n; n++)
        for (int64_t c = begin; c < end; c++) {
            const char *xp = j->x + (n * j->c + c) * j->inner * es;
            double pm = ts_sum_run(xp, j->inner, j->dbl) / per, pq = sqdev_run(xp, j->inner, pm, j->dbl);
            if (n == 0) {
                j->mean[c] = pm;
                j->var[c] = pq;   /* the sum of squared deviations until the end */
                continue;
            }
            double seen = (double)n * per, total = seen + per, delta = pm - j->mean[c];
            j->mean[c] += delta * per / total;
            j->var[c] += pq + delta * delta * seen * per / total;
        }
    for (int64_t c = begin; c < end; c++) {
        j->var[c] /= (double)j->n * per;
        j->invstd[c] = 1.0 / sqrt(j->var[c] + j->eps);
    }
    for (int64_t n = 0; n < j->n; n++)
        for (int64_t c = begin; c < end; c++) {
            int64_t off = (n * j->c + c) * j->inner * es;
            double a = (j->w ? j->w[c] : 1.0) * j->invstd[c], b = (j->b ? j->b[c] : 0.0) - j->mean[c] * a;
            combine_run(NULL, j->x + off, j->out + off, j->inner, 0.0, a, b, j->dbl);
        }
}

/* running = (1 - momentum) * running + momentum * factor * stat, in place. */
static ts_status update_running(ts_tensor *r, const double *stat, int64_t n, double momentum, double factor)
{
    ts_tensor *v = ts_to_dtype(r, TS_F64);
    if (!v) return ts_last_status();
    double *d = ts_tensor_data(v);
    for (int64_t i = 0; i < n; i++) d[i] = (1.0 - momentum) * d[i] + momentum * factor * stat[i];
    ts_status st = ts_copy_(r, v);
    ts_tensor_release(v);
    return st;
}

/* Checks of batch norm's operands; *c gets the channel count. */
static ts_status bn_check(const char *op, const ts_tensor *x, const ts_tensor *weight, const ts_tensor *bias,
                          const ts_tensor *mean, const ts_tensor *var, int64_t *c)
{
    char sx[TS_SHAPE_STR_CAP];
    if (ts_require_float_cpu(op, "input", x)) return ts_last_status();
    if (x->ndim < 2)
        return ts_fail(TS_ERR_ARG, "%s: input must be [N, C, ...] (at least 2 dims), got %s", op,
                       ts_shape_str(x->shape, x->ndim, sx, sizeof sx));
    *c = x->shape[1];
    if (check_vector(op, "weight", weight, *c) || check_vector(op, "bias", bias, *c) ||
        check_vector(op, "running_mean", mean, *c) || check_vector(op, "running_var", var, *c))
        return ts_last_status();
    return TS_OK;
}

ts_tensor *ts_batch_norm_train(const ts_tensor *x, const ts_tensor *weight, const ts_tensor *bias,
                               ts_tensor *running_mean, ts_tensor *running_var, double momentum, double eps,
                               ts_tensor **save_mean, ts_tensor **save_invstd)
{
    const char *op = "batch_norm_train";
    char sx[TS_SHAPE_STR_CAP];
    int64_t c = 0;
    if (save_mean) *save_mean = NULL;
    if (save_invstd) *save_invstd = NULL;
    if (bn_check(op, x, weight, bias, running_mean, running_var, &c)) return NULL;
    int64_t count = c ? ts_tensor_numel(x) / c : 0;
    if (count <= 1)
        return ts_fail_null(TS_ERR_ARG, "%s: expected more than 1 value per channel when training, got input %s", op,
                            ts_shape_str(x->shape, x->ndim, sx, sizeof sx));
    if ((running_mean && ts_require_writable(op, running_mean)) || (running_var && ts_require_writable(op, running_var)))
        return NULL;
    ts_dtype ct = ts_float_compute_dtype(x->dtype);
    bool bad = false;
    double *w = values_of(weight, c, &bad), *b = bad ? NULL : values_of(bias, c, &bad);
    double *stats = bad ? NULL : malloc(sizeof(double) * (size_t)(3 * c));
    ts_tensor *xc = NULL, *y = NULL, *sm = NULL, *si = NULL;
    if (!stats) {
        if (!bad) ts_fail(TS_ERR_MEMORY, "%s: out of memory", op);
        goto fail;
    }
    if (!(xc = ts_contiguous_as(x, ct)) || !(y = ts_tensor_new(x->shape, x->ndim, ct))) goto fail;
    bn_job j = { .dbl = ct == TS_F64, .x = ts_tensor_data(xc), .out = ts_tensor_data(y), .n = x->shape[0], .c = c,
                 .inner = count / x->shape[0], .eps = eps, .w = w, .b = b, .mean = stats, .var = stats + c,
                 .invstd = stats + 2 * c };
    ts_parallel_for(c, TS_GRAIN_HEAVY / (count + 1) + 1, bn_forward_channels, &j);
    if (running_mean && update_running(running_mean, j.mean, c, momentum, 1.0)) goto fail;
    if (running_var && update_running(running_var, j.var, c, momentum, (double)count / (double)(count - 1))) goto fail;
    if ((save_mean && !(sm = vector_of(j.mean, c, TS_F64))) || (save_invstd && !(si = vector_of(j.invstd, c, TS_F64))))
        goto fail;
    free(w);
    free(b);
    free(stats);
    ts_tensor_release(xc);
    if (!(y = ts_narrow_dtype(y, x->dtype))) {
        ts_tensor_release(sm);
        ts_tensor_release(si);
        return NULL;
    }
    if (save_mean) *save_mean = sm;
    if (save_invstd) *save_invstd = si;
    return y;
fail:
    free(w);
    free(b);
    free(stats);
    ts_tensor_release(xc);
    ts_tensor_release(y);
    ts_tensor_release(sm);
    ts_tensor_release(si);
    return NULL;
}

/* ---- batch norm backward ---------------------------------------------------------------- */

/* Two passes, sample by sample like the forward: the sums per channel, then
 * the input gradient
 *   train: gx = k (gy - mean(gy) - (x - mean) invstd^2 mean(gy (x - mean))), k = w invstd;
 *   eval:  gx = k gy. */
TS_NN_SIMD
static void bn_backward_channels(int64_t begin, int64_t end, void *ctx)
{
    const bn_job *j = ctx;
    int64_t es = j->dbl ? 8 : 4;
    double count = (double)(j->n * j->inner);
    if (j->s1) {
        for (int64_t c = begin; c < end; c++) j->s1[c] = j->s2[c] = 0;
        for (int64_t n = 0; n < j->n; n++)
            for (int64_t c = begin; c < end; c++) {
                int64_t off = (n * j->c + c) * j->inner * es;
                dot_run(j->gy + off, j->x + off, j->inner, j->mean[c], j->dbl, &j->s1[c], &j->s2[c]);
            }
    }
    if (!j->out) return;
    for (int64_t n = 0; n < j->n; n++)
        for (int64_t c = begin; c < end; c++) {
            int64_t off = (n * j->c + c) * j->inner * es;
            double invstd = j->invstd[c], k = (j->w ? j->w[c] : 1.0) * invstd, a = k, b = 0, cc = 0;
            if (j->train) {
                double proj = j->s2[c] * invstd * invstd / count, mgy = j->s1[c] / count;
                b = -k * proj;
                cc = k * (proj * j->mean[c] - mgy);
            }
            combine_run(j->gy + off, j->train ? j->x + off : NULL, j->out + off, j->inner, a, b, cc, j->dbl);
        }
}

/* Shared body of both batch norm backwards: the job has mean/invstd/w set. */
static ts_status bn_backward_run(bn_job *j, const ts_tensor *gy, const ts_tensor *x, ts_tensor **gx, double *sums)
{
    ts_dtype ct = ts_float_compute_dtype(x->dtype);
    ts_tensor *gc = ts_contiguous_as(gy, ct), *xc = gc ? ts_contiguous_as(x, ct) : NULL;
    ts_tensor *r = xc && gx ? ts_tensor_new(x->shape, x->ndim, ct) : NULL;
    if (!xc || (gx && !r)) {
        ts_tensor_release(gc);
        ts_tensor_release(xc);
        return ts_last_status();
    }
    int64_t count = ts_tensor_numel(x) / (j->c ? j->c : 1);
    j->dbl = ct == TS_F64;
    j->gy = ts_tensor_data(gc);
    j->x = ts_tensor_data(xc);
    j->out = r ? ts_tensor_data(r) : NULL;
    j->n = x->shape[0];
    j->inner = j->n ? count / j->n : 0;
    j->s1 = sums;
    j->s2 = sums ? sums + j->c : NULL;
    if (sums) memset(sums, 0, sizeof(double) * (size_t)(2 * j->c));
    if (count > 0) ts_parallel_for(j->c, TS_GRAIN_HEAVY / (count + 1) + 1, bn_backward_channels, j);
    ts_tensor_release(gc);
    ts_tensor_release(xc);
    if (gx) *gx = r;
    return TS_OK;
}

ts_status ts_batch_norm_train_backward(const ts_tensor *gy, const ts_tensor *x, const ts_tensor *weight,
                                       const ts_tensor *save_mean, const ts_tensor *save_invstd,
                                       ts_tensor **gx, ts_tensor **gw, ts_tensor **gb)
{
    ts_dtype ct = ts_float_compute_dtype(x->dtype);
    int64_t c = x->shape[1];
    if (gx) *gx = NULL;
    if (gw) *gw = NULL;
    if (gb) *gb = NULL;
    bool bad = false;
    double *w = values_of(weight, c, &bad), *mean = bad ? NULL : values_of(save_mean, c, &bad);
    double *invstd = bad ? NULL : values_of(save_invstd, c, &bad);
    /* the input gradient needs the sums too */
    double *sums = bad ? NULL : malloc(sizeof(double) * (size_t)(2 * c + 1));
    ts_status st = TS_OK;
    if (!sums) {
        st = bad ? ts_last_status() : ts_fail(TS_ERR_MEMORY, "batch_norm backward: out of memory");
        goto done;
    }
    bn_job j = { .train = true, .c = c, .w = w, .mean = mean, .invstd = invstd };
    if ((st = bn_backward_run(&j, gy, x, gx, sums))) goto done;
    for (int64_t i = 0; i < c; i++) sums[c + i] *= invstd[i];   /* sum gy x_hat */
    if ((gw && !(*gw = vector_of(sums + c, c, ct))) || (gb && !(*gb = vector_of(sums, c, ct)))) {
        st = ts_last_status();
        if (gx) { ts_tensor_release(*gx); *gx = NULL; }
        if (gw) { ts_tensor_release(*gw); *gw = NULL; }
    }
done:
    free(w);
    free(mean);
    free(invstd);
    free(sums);
    return st;
}

ts_status ts_batch_norm_backward(const ts_tensor *gy, const ts_tensor *x, const ts_tensor *mean, const ts_tensor *var,
                                 const ts_tensor *weight, double eps, ts_tensor **gx, ts_tensor **gmean,
                                 ts_tensor **gvar, ts_tensor **gw, ts_tensor **gb)
{
    ts_dtype ct = ts_float_compute_dtype(x->dtype);
    int64_t c = x->shape[1];
    ts_tensor **outs[5] = { gx, gmean, gvar, gw, gb };
    for (int i = 0; i < 5; i++)
        if (outs[i]) *outs[i] = NULL;
    bool bad = false, need_sums = gmean || gvar || gw || gb;
    double *w = values_of(weight, c, &bad), *m = bad ? NULL : values_of(mean, c, &bad);
    double *v = bad ? NULL : values_of(var, c, &bad);
    double *buf = bad ? NULL : malloc(sizeof(double) * (size_t)(4 * c + 1));   /* mean, invstd, sums */
    ts_status st = TS_OK;
    if (!buf) {
        st = bad ? ts_last_status() : ts_fail(TS_ERR_MEMORY, "batch_norm backward: out of memory");
        goto done;
    }
    double *mv = buf, *invstd = buf + c, *sums = buf + 2 * c;
    for (int64_t i = 0; i < c; i++) {
        mv[i] = m ? m[i] : 0.0;
        invstd[i] = 1.0 / sqrt((v ? v[i] : 1.0) + eps);
    }
    bn_job j = { .train = false, .c = c, .w = w, .mean = mv, .invstd = invstd };
    if ((st = bn_backward_run(&j, gy, x, gx, need_sums ? sums : NULL)) || !need_sums) goto done;
    /* y = (x - m) invstd w + b: d/dm = -sum(gy) w invstd, d/dv = -sum(gy (x - m)) w invstd^3 / 2 */
    double *tmp = malloc(sizeof(double) * (size_t)(c + 1));
    if (!tmp) {
        st = ts_fail(TS_ERR_MEMORY, "batch_norm backward: out of memory");
        goto undo;
    }
    for (int k = 1; k < 5; k++) {
        if (!outs[k]) continue;
        for (int64_t i = 0; i < c; i++) {
            double wi = w ? w[i] : 1.0, s1 = sums[i], s2 = sums[c + i], is = invstd[i];
            tmp[i] = k == 1 ? -s1 * wi * is : k == 2 ? -0.5 * s2 * wi * is * is * is : k == 3 ? s2 * is : s1;
        }
        if (!(*outs[k] = vector_of(tmp, c, ct))) {
            st = ts_last_status();
            break;
        }
    }
    free(tmp);
undo:
    if (st)
        for (int i = 0; i < 5; i++)
            if (outs[i]) { ts_tensor_release(*outs[i]); *outs[i] = NULL; }
done:
    free(w);
    free(m);
    free(v);
    free(buf);
    return st;
}

/* ---- layer norm backward ------------------------------------------------------------------ */

typedef struct ln_job {
    bool dbl;
    const char *x, *gy;
    char *gx;                    /* NULL: not wanted */
    int64_t rows, len, chunk, nchunks;
    double eps;
    const double *w;             /* [len] or NULL */
    double *gw_part, *gb_part;   /* [nchunks, len] or NULL */
} ln_job;

/* One row: its statistics, its input gradient and its share of the
 * weight/bias gradients (added into gwp/gbp). */
static void ln_row(const ln_job *j, int64_t r, double *gwp, double *gbp)
{
    int64_t d = j->len, es = j->dbl ? 8 : 4;
    const char *xr = j->x + r * d * es, *gr = j->gy + r * d * es;
    double mean = ts_sum_run(xr, d, j->dbl) / (double)d;
    double rstd = 1.0 / sqrt(sqdev_run(xr, d, mean, j->dbl) / (double)d + j->eps);
    double a = 0, b = 0;         /* sum gy w, sum gy w (x - mean) */
    for (int64_t i = 0; i < d; i++) {
        double g = j->dbl ? ((const double *)gr)[i] : ((const float *)gr)[i];
        double x = j->dbl ? ((const double *)xr)[i] : ((const float *)xr)[i];
        double gw = g * (j->w ? j->w[i] : 1.0);
        a += gw;
        b += gw * (x - mean);
        if (gwp) {
            gwp[i] += g * (x - mean) * rstd;
            gbp[i] += g;
        }
    }
    if (!j->gx) return;
    /* gx = rstd (gy w - a / d - (x - mean) rstd^2 b / d) */
    double c1 = a / (double)d, c2 = rstd * rstd * b / (double)d;
    if (j->dbl) {
        const double *x = (const double *)xr, *g = (const double *)gr;
        double *o = (double *)j->gx + r * d;
        for (int64_t i = 0; i < d; i++) o[i] = rstd * (g[i] * (j->w ? j->w[i] : 1.0) - c1 - (x[i] - mean) * c2);
    } else {
        const float *x = (const float *)xr, *g = (const float *)gr;
        float *o = (float *)j->gx + r * d;
        float rs = (float)rstd, m = (float)mean, f1 = (float)c1, f2 = (float)c2;
        if (j->w)
            for (int64_t i = 0; i < d; i++) o[i] = rs * (g[i] * (float)j->w[i] - f1 - (x[i] - m) * f2);
        else
            for (int64_t i = 0; i < d; i++) o[i] = rs * (g[i] - f1 - (x[i] - m) * f2);
    }
}

TS_NN_SIMD
static void ln_chunks(int64_t begin, int64_t end, void *ctx)
{
    const ln_job *j = ctx;
    for (int64_t k = begin; k < end; k++) {
        double *gwp = j->gw_part ? j->gw_part + k * j->len : NULL;
        double *gbp = j->gb_part ? j->gb_part + k * j->len : NULL;
        int64_t r1 = (k + 1) * j->chunk < j->rows ? (k + 1) * j->chunk : j->rows;
        for (int64_t r = k * j->chunk; r < r1; r++) ln_row(j, r, gwp, gbp);
    }
}

/* Sums the partials [nchunks, n] in order into a new tensor of dtype dt. */
static ts_tensor *sum_partials(const double *part, int64_t nchunks, int64_t n, ts_dtype dt, double *tmp)
{
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t k = 0; k < nchunks; k++) s += part[k * n + i];
        tmp[i] = s;
    }
    return vector_of(tmp, n, dt);
}

ts_status ts_layer_norm_backward(const ts_tensor *gy, const ts_tensor *x, int norm_ndim, const ts_tensor *weight,
                                 double eps, ts_tensor **gx, ts_tensor **gw, ts_tensor **gb)
{
    ts_dtype ct = ts_float_compute_dtype(x->dtype);
    int64_t len = 1;
    for (int i = x->ndim - norm_ndim; i < x->ndim; i++) len *= x->shape[i];
    int64_t rows = len ? ts_tensor_numel(x) / len : 0;
    if (gx) *gx = NULL;
    if (gw) *gw = NULL;
    if (gb) *gb = NULL;
    bool want_w = gw || gb, bad = false;
    ln_job j = { .dbl = ct == TS_F64, .rows = rows, .len = len, .eps = eps };
    int64_t most = rows < 64 ? rows : 64;
    if (want_w && most > ((int64_t)1 << 22) / (len + 1) + 1) most = ((int64_t)1 << 22) / (len + 1) + 1;
    j.chunk = most > 0 ? (rows + most - 1) / most : 1;
    j.nchunks = (rows + j.chunk - 1) / j.chunk;
    double *w = values_of(weight, len, &bad);
    double *part = bad || !want_w ? NULL : calloc((size_t)(2 * j.nchunks * len + len + 1), sizeof(double));
    ts_tensor *gc = NULL, *xc = NULL, *r = NULL;
    ts_status st = TS_OK;
    if (bad || (want_w && !part)) {
        st = bad ? ts_last_status() : ts_fail(TS_ERR_MEMORY, "layer_norm backward: out of memory");
        goto done;
    }
    if (!(gc = ts_contiguous_as(gy, ct)) || !(xc = ts_contiguous_as(x, ct)) ||
        (gx && !(r = ts_tensor_new(x->shape, x->ndim, ct)))) {
        st = ts_last_status();
        goto done;
    }
    j.x = ts_tensor_data(xc);
    j.gy = ts_tensor_data(gc);
    j.gx = r ? ts_tensor_data(r) : NULL;
    j.w = w;
    j.gw_part = part;
    j.gb_part = part ? part + j.nchunks * len : NULL;
    if (rows > 0) ts_parallel_for(j.nchunks, TS_GRAIN_HEAVY / (j.chunk * len + 1) + 1, ln_chunks, &j);
    if (gw && !(*gw = sum_partials(j.gw_part, j.nchunks, len, ct, part + 2 * j.nchunks * len))) st = ts_last_status();
    if (!st && gb && !(*gb = sum_partials(j.gb_part, j.nchunks, len, ct, part + 2 * j.nchunks * len)))
        st = ts_last_status();
    if (st && gw) { ts_tensor_release(*gw); *gw = NULL; }
done:
    free(w);
    free(part);
    ts_tensor_release(gc);
    ts_tensor_release(xc);
    if (st) ts_tensor_release(r);
    else if (gx) *gx = r;
    return st;
}

/* ---- group norm backward -------------------------------------------------------------------- */

typedef struct gn_job {
    bool dbl;
    const char *x, *gy;
    char *gx;
    int64_t groups, c, spatial;  /* rows are (sample, group) */
    double eps;
    const double *w;             /* [C] or NULL */
    double *ds, *db;             /* [N, C]: sum gy x_hat, sum gy */
} gn_job;

TS_NN_SIMD
static void gn_rows(int64_t begin, int64_t end, void *ctx)
{
    const gn_job *j = ctx;
    int64_t cg = j->c / j->groups, len = cg * j->spatial, es = j->dbl ? 8 : 4;
    for (int64_t r = begin; r < end; r++) {
        int64_t n = r / j->groups, c0 = (r % j->groups) * cg;
        const char *xr = j->x + r * len * es, *gr = j->gy + r * len * es;
        double mean = ts_sum_run(xr, len, j->dbl) / (double)len;
        double rstd = 1.0 / sqrt(sqdev_run(xr, len, mean, j->dbl) / (double)len + j->eps);
        double a = 0, b = 0;     /* sum gy w, sum gy w (x - mean) rstd */
        for (int64_t k = 0; k < cg; k++) {
            double s1 = 0, s2 = 0, wc = j->w ? j->w[c0 + k] : 1.0;
            dot_run(gr + k * j->spatial * es, xr + k * j->spatial * es, j->spatial, mean, j->dbl, &s1, &s2);
            j->ds[n * j->c + c0 + k] = s2 * rstd;
            j->db[n * j->c + c0 + k] = s1;
            a += wc * s1;
            b += wc * s2 * rstd;
        }
        if (!j->gx) continue;
        /* gx = rstd (w gy - a / len - (x - mean) rstd b / len) */
        double ca = a / (double)len, cb = rstd * b / (double)len;
        for (int64_t k = 0; k < cg; k++) {
            double wc = j->w ? j->w[c0 + k] : 1.0;
            int64_t off = k * j->spatial * es;
            combine_run(gr + off, xr + off, j->gx + r * len * es + off, j->spatial, rstd * wc, -rstd * cb,
                        rstd * (mean * cb - ca), j->dbl);
        }
    }
}

ts_status ts_group_norm_backward(const ts_tensor *gy, const ts_tensor *x, int64_t groups, const ts_tensor *weight,
                                 double eps, ts_tensor **gx, ts_tensor **gw, ts_tensor **gb)
{
    ts_dtype ct = ts_float_compute_dtype(x->dtype);
    int64_t n = x->shape[0], c = x->shape[1], spatial = 1;
    for (int i = 2; i < x->ndim; i++) spatial *= x->shape[i];
    if (gx) *gx = NULL;
    if (gw) *gw = NULL;
    if (gb) *gb = NULL;
    bool bad = false;
    double *w = values_of(weight, c, &bad);
    double *sums = bad ? NULL : calloc((size_t)(2 * n * c + c + 1), sizeof(double));
    ts_tensor *gc = NULL, *xc = NULL, *r = NULL;
    ts_status st = TS_OK;
    if (!sums) {
        st = bad ? ts_last_status() : ts_fail(TS_ERR_MEMORY, "group_norm backward: out of memory");
        goto done;
    }
    if (!(gc = ts_contiguous_as(gy, ct)) || !(xc = ts_contiguous_as(x, ct)) ||
        (gx && !(r = ts_tensor_new(x->shape, x->ndim, ct)))) {
        st = ts_last_status();
        goto done;
    }
    gn_job j = { .dbl = ct == TS_F64, .x = ts_tensor_data(xc), .gy = ts_tensor_data(gc), .gx = r ? ts_tensor_data(r) : NULL,
                 .groups = groups, .c = c, .spatial = spatial, .eps = eps, .w = w, .ds = sums, .db = sums + n * c };
    int64_t len = c / groups * spatial;
    if (len > 0) ts_parallel_for(n * groups, TS_GRAIN_HEAVY / (len + 1) + 1, gn_rows, &j);
    if (gw && !(*gw = sum_partials(j.ds, n, c, ct, sums + 2 * n * c))) st = ts_last_status();
    if (!st && gb && !(*gb = sum_partials(j.db, n, c, ct, sums + 2 * n * c))) st = ts_last_status();
    if (st && gw) { ts_tensor_release(*gw); *gw = NULL; }
done:
    free(w);
    free(sums);
    ts_tensor_release(gc);
    ts_tensor_release(xc);
    if (st) ts_tensor_release(r);
    else if (gx) *gx = r;
    return st;
}

/* ---- softmax backward ------------------------------------------------------------------------
 * softmax: gx = y (g - sum(g y)); log_softmax: gx = g - exp(y) sum(g), along
 * the dim; the data viewed as [outer, D, inner] like the forward. */

#define COLS 64

typedef struct smb_job {
    bool dbl, log;
    const char *g, *y;
    char *gx;
    int64_t outer, d, inner, nchunks;
} smb_job;

/* nc columns (stride s between the D entries of a column; s == 1 and
 * nc == 1 for a contiguous row). */
static void smb_cols(const smb_job *j, int64_t off, int64_t s, int64_t nc)
{
    double sum[COLS] = { 0 };
    if (j->dbl) {
        const double *g = (const double *)j->g + off, *y = (const double *)j->y + off;
        double *o = (double *)j->gx + off;
        for (int64_t k = 0; k < j->d; k++)
            for (int64_t c = 0; c < nc; c++) sum[c] += j->log ? g[k * s + c] : g[k * s + c] * y[k * s + c];
        for (int64_t k = 0; k < j->d; k++)
            for (int64_t c = 0; c < nc; c++) {
                int64_t i = k * s + c;
                o[i] = j->log ? g[i] - exp(y[i]) * sum[c] : y[i] * (g[i] - sum[c]);
            }
        return;
    }
    const float *g = (const float *)j->g + off, *y = (const float *)j->y + off;
    float *o = (float *)j->gx + off;
    for (int64_t k = 0; k < j->d; k++)
        for (int64_t c = 0; c < nc; c++) sum[c] += j->log ? g[k * s + c] : (double)g[k * s + c] * y[k * s + c];
    for (int64_t k = 0; k < j->d; k++)
        for (int64_t c = 0; c < nc; c++) {
            int64_t i = k * s + c;
            float sc = (float)sum[c];
            o[i] = j->log ? g[i] - expf(y[i]) * sc : y[i] * (g[i] - sc);
        }
}

TS_NN_SIMD
static void smb_units(int64_t begin, int64_t end, void *ctx)
{
    const smb_job *j = ctx;
    for (int64_t u = begin; u < end; u++) {
        if (j->inner == 1) {
            smb_cols(j, u * j->d, 1, 1);
        } else {
            int64_t o = u / j->nchunks, c0 = (u % j->nchunks) * COLS;
            int64_t nc = j->inner - c0 < COLS ? j->inner - c0 : COLS;
            smb_cols(j, o * j->d * j->inner + c0, j->inner, nc);
        }
    }
}

ts_tensor *ts_softmax_backward(const ts_tensor *gy, const ts_tensor *y, int dim, bool log)
{
    ts_dtype ct = ts_float_compute_dtype(y->dtype);
    smb_job j = { ct == TS_F64, log, NULL, NULL, NULL, 1, 1, 1, 1 };
    for (int i = 0; i < y->ndim; i++) {
        if (i < dim) j.outer *= y->shape[i];
        else if (i > dim) j.inner *= y->shape[i];
    }
    if (y->ndim > 0) j.d = y->shape[dim];
    j.nchunks = (j.inner + COLS - 1) / COLS;
    ts_tensor *gc = ts_contiguous_as(gy, ct), *yc = gc ? ts_contiguous_as(y, ct) : NULL;
    ts_tensor *gx = yc ? ts_tensor_new(y->shape, y->ndim, ct) : NULL;
    if (gx && ts_tensor_numel(y) > 0) {
        j.g = ts_tensor_data(gc);
        j.y = ts_tensor_data(yc);
        j.gx = ts_tensor_data(gx);
        int64_t units = j.inner == 1 ? j.outer : j.outer * j.nchunks;
        ts_parallel_for(units, TS_GRAIN_HEAVY / (j.d * (j.inner == 1 ? 1 : COLS) + 1) + 1, smb_units, &j);
    }
    ts_tensor_release(gc);
    ts_tensor_release(yc);
    return gx;
}
