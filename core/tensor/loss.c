/* loss.c — fused classification losses with PyTorch 1.13's semantics, and
 * their backward kernels: ts_cross_entropy (a stable log-softmax and the
 * loss of each position in one pass over its logits) and ts_nll_loss (over
 * log-probabilities). Both take class indices (any integer dtype, 0-based),
 * an optional per-class weight, ignore_index and a reduction; cross-entropy
 * also label smoothing, which with weights and 'mean' follows PyTorch:
 *   loss_i = (1 - e) w[t_i] (lse_i - z_i,t_i) + e / C * sum_c w[c] (lse_i - z_i,c)
 * for counted positions (t_i != ignore_index; others give 0), 'mean'
 * dividing the sum by the summed w[t_i] of the counted positions.
 *
 * Logits are [N, C], [N, C, d...] (class dim 1) or [C] with a 0-dim target.
 * A position is one (n, d...) entry; positions are the units handed to
 * ts_parallel_for and their losses are added in order, so results do not
 * depend on the thread count. Sums run in double; f16/bf16 are read as f32.
 * The forward also returns each position's logsumexp (f64), which the
 * backward uses to rebuild the softmax: (softmax - smoothed one-hot) times
 * the weights over the denominator. */
#include "nn_grad.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct loss_geom {
    int64_t outer, c, inner;     /* element (n, k, s) at (n * C + k) * inner + s */
    int64_t positions;           /* outer * inner */
} loss_geom;

typedef struct loss_job {
    loss_geom g;
    bool dbl, smooth_on;
    const char *x;               /* logits (or log-probabilities), compute dtype */
    const int64_t *t;            /* [positions] */
    const double *w;             /* [C] or NULL */
    double wsum;                 /* sum of w (C without weights) */
    int64_t ignore;
    double eps;                  /* label smoothing */
    double *loss, *lse, *wt;     /* [positions]: loss, logsumexp, counted weight (0 when ignored) */
    /* backward */
    const double *gy;            /* [positions] (reduction none) or NULL */
    double gscale;               /* the scalar gradient over the denominator */
    char *gx;
} loss_job;

static inline double at(const loss_job *j, int64_t i) /* element i of x */
{
    return j->dbl ? ((const double *)j->x)[i] : (double)((const float *)j->x)[i];
}

/* ---- checks ------------------------------------------------------------------------------ */

static ts_status loss_check(const char *op, const ts_tensor *x, const ts_tensor *target, const ts_tensor *weight,
                            loss_geom *g)
{
    char a[TS_SHAPE_STR_CAP], b[TS_SHAPE_STR_CAP], c[TS_SHAPE_STR_CAP];
    if (ts_require_cpu(op, x) || ts_require_cpu(op, target)) return ts_last_status();
    if (!ts_dtype_is_float(x->dtype))
        return ts_fail(TS_ERR_ARG, "%s: input needs a floating dtype, got %s", op, ts_dtype_name(x->dtype));
    if (ts_dtype_info(target->dtype)->kind != TS_KIND_INT)
        return ts_fail(TS_ERR_ARG, "%s: target must hold integer class indices, got %s", op,
                       ts_dtype_name(target->dtype));
    if (x->ndim < 1)
        return ts_fail(TS_ERR_ARG, "%s: input must be [N, C], [N, C, d...] or [C], got a 0-dim tensor", op);
    int64_t want[TS_MAX_DIMS];
    int nw = 0;
    for (int i = 0; i < x->ndim; i++)
        if (i != (x->ndim == 1 ? 0 : 1)) want[nw++] = x->shape[i];
    bool same = target->ndim == nw;
    for (int i = 0; same && i < nw; i++) same = target->shape[i] == want[i];
    if (!same)
        return ts_fail(TS_ERR_ARG, "%s: target must be %s for input %s, got %s", op, ts_shape_str(want, nw, a, sizeof a),
                       ts_shape_str(x->shape, x->ndim, b, sizeof b),
                       ts_shape_str(target->shape, target->ndim, c, sizeof c));
    g->c = x->ndim == 1 ? x->shape[0] : x->shape[1];
    g->outer = x->ndim == 1 ? 1 : x->shape[0];
    g->inner = 1;
    for (int i = 2; i < x->ndim; i++) g->inner *= x->shape[i];
    g->positions = g->outer * g->inner;
    if (weight) {
        if (!ts_dtype_is_float(weight->dtype))
            return ts_fail(TS_ERR_ARG, "%s: weight needs a floating dtype, got %s", op, ts_dtype_name(weight->dtype));
        if (weight->ndim != 1 || weight->shape[0] != g->c)
            return ts_fail(TS_ERR_ARG, "%s: weight must be [%lld] (one value per class), got %s", op, (long long)g->c,
                           ts_shape_str(weight->shape, weight->ndim, a, sizeof a));
    }
    return TS_OK;
}

/* Fails on a target that is neither a class nor ignore_index. */
static ts_status check_targets(const char *op, const int64_t *t, int64_t n, int64_t c, int64_t ignore)
{
    for (int64_t i = 0; i < n; i++)
        if (t[i] != ignore && (t[i] < 0 || t[i] >= c))
            return ts_fail(TS_ERR_ARG, "%s: target %lld is out of bounds for %lld classes (ignore_index %lld)", op,
                           (long long)t[i], (long long)c, (long long)ignore);
    return TS_OK;
}

/* The shared set-up: targets as i64, weights as doubles, logits as a
 * contiguous compute-dtype copy. Releases what it made on failure. */
typedef struct loss_inputs {
    ts_tensor *xc, *tc;
    double *w;
} loss_inputs;

static void inputs_free(loss_inputs *in)
{
    ts_tensor_release(in->xc);
    ts_tensor_release(in->tc);
    free(in->w);
    memset(in, 0, sizeof *in);
}

static ts_status inputs_load(const char *op, loss_job *j, loss_inputs *in, const ts_tensor *x, const ts_tensor *target,
                             const ts_tensor *weight, int64_t ignore)
{
    memset(in, 0, sizeof *in);
    ts_dtype ct = x->dtype == TS_F64 ? TS_F64 : TS_F32;
    j->dbl = ct == TS_F64;
    j->ignore = ignore;
    j->wsum = (double)j->g.c;
    if (!(in->tc = ts_contiguous_as(target, TS_I64))) goto fail;
    if (check_targets(op, ts_tensor_data(in->tc), j->g.positions, j->g.c, ignore)) goto fail;
    if (!(in->xc = ts_contiguous_as(x, ct))) goto fail;
    if (weight) {
        ts_tensor *wd = ts_to_dtype(weight, TS_F64);
        if (!wd) goto fail;
        in->w = malloc(sizeof(double) * (size_t)(j->g.c + 1));
        if (in->w) memcpy(in->w, ts_tensor_data(wd), sizeof(double) * (size_t)j->g.c);
        ts_tensor_release(wd);
        if (!in->w) {
            ts_fail(TS_ERR_MEMORY, "%s: out of memory", op);
            goto fail;
        }
        j->wsum = 0;
        for (int64_t k = 0; k < j->g.c; k++) j->wsum += in->w[k];
    }
    j->x = ts_tensor_data(in->xc);
    j->t = ts_tensor_data(in->tc);
    j->w = in->w;
    return TS_OK;
fail:
    inputs_free(in);
    return ts_last_status();
}

/* ---- forward ----------------------------------------------------------------------------- */

/* Position i: its logsumexp, loss and counted weight. */
static void ce_position(const loss_job *j, int64_t i, bool is_ce)
{
    int64_t n = i / j->g.inner, s = i % j->g.inner, base = n * j->g.c * j->g.inner + s, st = j->g.inner;
    int64_t t = j->t[i];
    double lse = 0;
    if (is_ce) {
        double m = -INFINITY, sum = 0;
        for (int64_t k = 0; k < j->g.c; k++) {
            double v = at(j, base + k * st);
            m = v > m || isnan(v) ? v : m;
        }
        if (isinf(m) && m < 0) m = 0;   /* all -inf: lse = -inf below */
        if (j->dbl)
            for (int64_t k = 0; k < j->g.c; k++) sum += exp(((const double *)j->x)[base + k * st] - m);
        else
            for (int64_t k = 0; k < j->g.c; k++) sum += expf((float)(((const float *)j->x)[base + k * st] - m));
        lse = m + log(sum);
        j->lse[i] = lse;
    }
    if (t == j->ignore) {
        j->loss[i] = 0;
        j->wt[i] = 0;
        return;
    }
    double wt = j->w ? j->w[t] : 1.0;
    double nll = wt * (lse - at(j, base + t * st));   /* for nll_loss, lse is 0: -w log p */
    double loss = nll;
    if (j->smooth_on) {
        double sm = 0;
        for (int64_t k = 0; k < j->g.c; k++) sm += (j->w ? j->w[k] : 1.0) * (lse - at(j, base + k * st));
        loss = (1.0 - j->eps) * nll + j->eps / (double)j->g.c * sm;
    }
    j->loss[i] = loss;
    j->wt[i] = wt;
}

static void ce_positions(int64_t begin, int64_t end, void *ctx)
{
    for (int64_t i = begin; i < end; i++) ce_position(ctx, i, true);
}

static void nll_positions(int64_t begin, int64_t end, void *ctx)
{
    for (int64_t i = begin; i < end; i++) ce_position(ctx, i, false);
}

static ts_status check_reduction(const char *op, ts_reduction r)
{
    if (r != TS_REDUCTION_NONE && r != TS_REDUCTION_MEAN && r != TS_REDUCTION_SUM)
        return ts_fail(TS_ERR_ARG, "%s: unknown reduction %d", op, (int)r);
    return TS_OK;
}

/* Runs the forward of either loss; lse (cross-entropy only) may be NULL. */
static ts_tensor *loss_forward(const char *op, bool is_ce, const ts_tensor *x, const ts_tensor *target,
                               const ts_tensor *weight, int64_t ignore, double eps, ts_reduction red, ts_tensor **lse)
{
    if (lse) *lse = NULL;
    loss_job j;
    memset(&j, 0, sizeof j);
    if (check_reduction(op, red) || loss_check(op, x, target, weight, &j.g)) return NULL;
    if (is_ce && (eps < 0 || eps > 1))
        return ts_fail_null(TS_ERR_ARG, "%s: label_smoothing must be in [0, 1], got %g", op, eps);
    j.eps = eps;
    j.smooth_on = is_ce && eps > 0;
    loss_inputs in;
    if (inputs_load(op, &j, &in, x, target, weight, ignore)) return NULL;
    int64_t p = j.g.positions;
    ts_tensor *lt = ts_tensor_new(target->shape, target->ndim, TS_F64);
    ts_tensor *wt = lt ? ts_tensor_new(target->shape, target->ndim, TS_F64) : NULL;
    ts_tensor *lset = wt && is_ce ? ts_tensor_new(target->shape, target->ndim, TS_F64) : NULL;
    ts_tensor *out = NULL;
    if (!wt || (is_ce && !lset)) goto done;
    j.loss = ts_tensor_data(lt);
    j.wt = ts_tensor_data(wt);
    j.lse = lset ? ts_tensor_data(lset) : NULL;
    ts_parallel_for(p, TS_GRAIN_HEAVY / (j.g.c * (j.smooth_on ? 2 : 1) + 1) + 1, is_ce ? ce_positions : nll_positions, &j);
    if (red == TS_REDUCTION_NONE) {
        out = ts_to_dtype(lt, x->dtype);
    } else {
        double total = 0, denom = 0;
        for (int64_t i = 0; i < p; i++) {
            total += j.loss[i];
            denom += j.wt[i];
        }
        out = ts_tensor_scalar(red == TS_REDUCTION_SUM ? total : total / denom, x->dtype);
    }
    if (out && lse) {
        *lse = lset;
        lset = NULL;
    }
done:
    inputs_free(&in);
    ts_tensor_release(lt);
    ts_tensor_release(wt);
    ts_tensor_release(lset);
    return out;
}

ts_tensor *ts_cross_entropy_lse(const ts_tensor *logits, const ts_tensor *target, const ts_tensor *weight,
                                int64_t ignore_index, double label_smoothing, ts_reduction reduction, ts_tensor **lse)
{
    return loss_forward("cross_entropy", true, logits, target, weight, ignore_index, label_smoothing, reduction, lse);
}

ts_tensor *ts_cross_entropy(const ts_tensor *logits, const ts_tensor *target, const ts_tensor *weight,
                            int64_t ignore_index, double label_smoothing, ts_reduction reduction)
{
    return ts_cross_entropy_lse(logits, target, weight, ignore_index, label_smoothing, reduction, NULL);
}

ts_tensor *ts_nll_loss(const ts_tensor *logp, const ts_tensor *target, const ts_tensor *weight, int64_t ignore_index,
                       ts_reduction reduction)
{
    return loss_forward("nll_loss", false, logp, target, weight, ignore_index, 0.0, reduction, NULL);
}

/* ---- backward ---------------------------------------------------------------------------- */

static inline void put(const loss_job *j, int64_t i, double v)
{
    if (j->dbl) ((double *)j->gx)[i] = v;
    else ((float *)j->gx)[i] = (float)v;
}

/* gx_k = p_k (A + B sum(w)) - A [k == t] - B w_k, A = g (1 - e) w_t, B = g e / C. */
static void ce_grad_positions(int64_t begin, int64_t end, void *ctx)
{
    const loss_job *j = ctx;
    for (int64_t i = begin; i < end; i++) {
        int64_t n = i / j->g.inner, s = i % j->g.inner, base = n * j->g.c * j->g.inner + s, st = j->g.inner;
        int64_t t = j->t[i];
        if (t == j->ignore) {
            for (int64_t k = 0; k < j->g.c; k++) put(j, base + k * st, 0.0);
            continue;
        }
        double g = (j->gy ? j->gy[i] : 1.0) * j->gscale, lse = j->lse[i];
        double a = g * (1.0 - j->eps) * (j->w ? j->w[t] : 1.0), b = g * j->eps / (double)j->g.c;
        double pa = a + b * j->wsum;
        if (j->dbl && st == 1 && !j->w) {
            const double *x = (const double *)j->x + base;
            double *o = (double *)j->gx + base;
            for (int64_t k = 0; k < j->g.c; k++) o[k] = exp(x[k] - lse) * pa - b;
        } else if (!j->dbl && st == 1 && !j->w) {
            const float *x = (const float *)j->x + base;
            float *o = (float *)j->gx + base;
            float l = (float)lse, fa = (float)pa, fb = (float)b;
            for (int64_t k = 0; k < j->g.c; k++) o[k] = expf(x[k] - l) * fa - fb;
        } else {
            for (int64_t k = 0; k < j->g.c; k++)
                put(j, base + k * st, exp(at(j, base + k * st) - lse) * pa - b * (j->w ? j->w[k] : 1.0));
        }
        put(j, base + t * st, (j->dbl ? ((double *)j->gx)[base + t * st] : ((float *)j->gx)[base + t * st]) - a);
    }
}

/* gx = 0 except gx_t = -g w_t. */
static void nll_grad_positions(int64_t begin, int64_t end, void *ctx)
{
    const loss_job *j = ctx;
    for (int64_t i = begin; i < end; i++) {
        int64_t n = i / j->g.inner, s = i % j->g.inner, base = n * j->g.c * j->g.inner + s, st = j->g.inner;
        int64_t t = j->t[i];
        for (int64_t k = 0; k < j->g.c; k++) put(j, base + k * st, 0.0);
        if (t != j->ignore) put(j, base + t * st, -(j->gy ? j->gy[i] : 1.0) * j->gscale * (j->w ? j->w[t] : 1.0));
    }
}

static ts_tensor *loss_backward(const char *op, bool is_ce, const ts_tensor *gy, const ts_tensor *x,
                                const ts_tensor *target, const ts_tensor *weight, const ts_tensor *lse,
                                int64_t ignore, double eps, ts_reduction red)
{
    loss_job j;
    memset(&j, 0, sizeof j);
    if (loss_check(op, x, target, weight, &j.g)) return NULL;
    j.eps = is_ce ? eps : 0.0;
    loss_inputs in;
    if (inputs_load(op, &j, &in, x, target, weight, ignore)) return NULL;
    ts_tensor *gd = NULL, *lsed = NULL, *gx = NULL;
    if (red == TS_REDUCTION_NONE) {
        if (!(gd = ts_contiguous_as(gy, TS_F64))) goto done;
        j.gy = ts_tensor_data(gd);
        j.gscale = 1.0;
    } else {
        j.gscale = ts_tensor_item_at(gy, 0);
        if (red == TS_REDUCTION_MEAN) {
            double denom = 0;
            for (int64_t i = 0; i < j.g.positions; i++)
                if (j.t[i] != ignore) denom += j.w ? j.w[j.t[i]] : 1.0;
            j.gscale /= denom;
        }
    }
    if (is_ce) {
        if (!(lsed = ts_contiguous_as(lse, TS_F64))) goto done;
        j.lse = ts_tensor_data(lsed);
    }
    if (!(gx = ts_tensor_new(x->shape, x->ndim, j.dbl ? TS_F64 : TS_F32))) goto done;
    j.gx = ts_tensor_data(gx);
    ts_parallel_for(j.g.positions, TS_GRAIN_HEAVY / (j.g.c + 1) + 1, is_ce ? ce_grad_positions : nll_grad_positions, &j);
done:
    inputs_free(&in);
    ts_tensor_release(gd);
    ts_tensor_release(lsed);
    return gx;
}

ts_tensor *ts_cross_entropy_backward(const ts_tensor *gy, const ts_tensor *logits, const ts_tensor *target,
                                     const ts_tensor *weight, const ts_tensor *lse, int64_t ignore_index,
                                     double label_smoothing, ts_reduction reduction)
{
    return loss_backward("cross_entropy backward", true, gy, logits, target, weight, lse, ignore_index,
                         label_smoothing, reduction);
}

ts_tensor *ts_nll_loss_backward(const ts_tensor *gy, const ts_tensor *logp, const ts_tensor *target,
                                const ts_tensor *weight, int64_t ignore_index, ts_reduction reduction)
{
    return loss_backward("nll_loss backward", false, gy, logp, target, weight, NULL, ignore_index, 0.0, reduction);
}
