/* optim.c — fused multi-tensor optimizer steps (SGD, Adam/AdamW, RMSprop,
 * Adagrad) and gradient clipping by norm and by value (see torsh/optim.h).
 *
 * A step is a job: the front-end checks the tensors, turns each parameter
 * into a segment (pointers to the parameter, its gradient and up to three
 * state arrays, all contiguous and of one float type) and precomputes the
 * scalar hyperparameters in both float and double, rounded the way PyTorch
 * rounds its Python scalars. The segments are laid end to end as one range
 * of elements that ts_parallel_for splits across threads; each piece runs the
 * optimizer's kernel on the parts of the segments it covers. Every element
 * is updated independently, so results never depend on the thread count.
 * Tensors the kernels cannot address directly (f16/bf16, non-contiguous,
 * a gradient of another dtype) are staged through contiguous f32/f64 copies
 * that are written back after the run.
 *
 * The kernels are plain loops the compiler vectorises. A loop that calls
 * sqrtf does not vectorise (errno), and one with many options does not
 * either, so the kernels run in chunks of CHUNK elements (kept in L1) as a
 * few simple loops: for Adam, RMSprop and Adagrad the moments (and the value
 * to take the root of), then the roots with SSE, then the update; for SGD
 * the direction, the momentum buffer, then the update. sqrtps and sqrtf
 * round identically (IEEE), so results do not depend on the path.
 *
 * Uses: internal.h (ts_require_cpu/writable), ts_to_dtype, ts_copy_,
 * ts_binary_scalar_ and ts_clamp_ from the tensor core, ts_parallel_for. */
#include "internal.h"
#include "torsh/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_STATES 3
#define STEP_GRAIN 16384     /* elements per thread below which a step stays on one thread */
#define NORM_BLOCK 16384     /* elements per partial sum of the gradient norm */
#define CHUNK 256            /* elements per pass of the kernels */

/* ---- jobs ----------------------------------------------------------------------------- */

/* One parameter as the kernels see it: contiguous arrays of one float type. */
typedef struct seg {
    int64_t start, n;        /* place in the job's element range, element count */
    bool f64;
    char *p;
    const char *g;
    char *s[MAX_STATES];     /* NULL when the state is unused */
} seg;

typedef struct job job;
typedef void (*kernel_fn)(const job *j, const seg *s, int64_t lo, int64_t hi);

struct job {
    const char *op;
    int n, nstates;
    ts_tensor *const *params;
    ts_tensor *const *const *states;  /* nstates arrays (an array may be NULL) */
    seg *segs;
    ts_tensor **staged;               /* n rows of (param, grad, states...) copies; NULL = direct */
    kernel_fn kernel;
    const void *hp;                   /* the optimizer's precomputed scalars */
    int64_t total;
};

#define STAGE_COLS (2 + MAX_STATES)

static ts_status check_param(const char *op, int i, const ts_tensor *p, const ts_tensor *g)
{
    if (!p) return ts_fail(TS_ERR_ARG, "%s: params[%d] is NULL", op, i);
    if (!ts_dtype_is_float(p->dtype))
        return ts_fail(TS_ERR_ARG, "%s: params[%d] has dtype %s; only floating tensors can be optimized",
                       op, i, ts_dtype_name(p->dtype));
    if (ts_require_cpu(op, p) || ts_require_writable(op, p)) return ts_last_status();
    if (!g) return ts_fail(TS_ERR_ARG, "%s: grads[%d] is NULL", op, i);
    if (!ts_dtype_is_float(g->dtype))
        return ts_fail(TS_ERR_ARG, "%s: grads[%d] has dtype %s; gradients are floating", op, i,
                       ts_dtype_name(g->dtype));
    if (ts_require_cpu(op, g)) return ts_last_status();
    if (g->ndim != p->ndim || memcmp(g->shape, p->shape, sizeof(int64_t) * (size_t)p->ndim) != 0) {
        char a[TS_SHAPE_STR_CAP], b[TS_SHAPE_STR_CAP];
        return ts_fail(TS_ERR_ARG, "%s: grads[%d] has shape %s but params[%d] has shape %s", op, i,
                       ts_shape_str(g->shape, g->ndim, a, sizeof a), i, ts_shape_str(p->shape, p->ndim, b, sizeof b));
    }
    return TS_OK;
}

static ts_status check_state(const char *op, const char *name, int i, const ts_tensor *s, const ts_tensor *p)
{
    if (!s) return ts_fail(TS_ERR_ARG, "%s: %s[%d] is NULL", op, name, i);
    if (s->ndim != p->ndim || memcmp(s->shape, p->shape, sizeof(int64_t) * (size_t)p->ndim) != 0) {
        char a[TS_SHAPE_STR_CAP], b[TS_SHAPE_STR_CAP];
        return ts_fail(TS_ERR_ARG, "%s: %s[%d] has shape %s but params[%d] has shape %s", op, name, i,
                       ts_shape_str(s->shape, s->ndim, a, sizeof a), i, ts_shape_str(p->shape, p->ndim, b, sizeof b));
    }
    if (s->dtype != p->dtype)
        return ts_fail(TS_ERR_ARG, "%s: %s[%d] has dtype %s but params[%d] has dtype %s", op, name, i,
                       ts_dtype_name(s->dtype), i, ts_dtype_name(p->dtype));
    if (ts_require_cpu(op, s) || ts_require_writable(op, s)) return ts_last_status();
    return TS_OK;
}

static bool kernel_dtype(ts_dtype dt) { return dt == TS_F32 || dt == TS_F64; }

/* True when the kernels can work on parameter i's tensors in place. */
static bool is_direct(const job *j, int i, const ts_tensor *g)
{
    const ts_tensor *p = j->params[i];
    if (!kernel_dtype(p->dtype) || !ts_tensor_is_contiguous(p)) return false;
    if (g->dtype != p->dtype || !ts_tensor_is_contiguous(g)) return false;
    for (int k = 0; k < j->nstates; k++)
        if (j->states[k] && !ts_tensor_is_contiguous(j->states[k][i])) return false;
    return true;
}

/* Contiguous copies of parameter i's tensors in its compute dtype. */
static ts_status stage(job *j, int i, const ts_tensor *g)
{
    const ts_tensor *p = j->params[i];
    ts_dtype cd = p->dtype == TS_F64 ? TS_F64 : TS_F32;
    ts_tensor **row = j->staged + (size_t)i * STAGE_COLS;
    row[0] = ts_to_dtype(p, cd);
    if (!row[0]) return ts_last_status();
    row[1] = ts_to_dtype(g, cd);
    if (!row[1]) return ts_last_status();
    for (int k = 0; k < j->nstates; k++) {
        if (!j->states[k]) continue;
        row[2 + k] = ts_to_dtype(j->states[k][i], cd);
        if (!row[2 + k]) return ts_last_status();
    }
    return TS_OK;
}

static void release_job(job *j)
{
    if (j->staged)
        for (size_t k = 0; k < (size_t)j->n * STAGE_COLS; k++) ts_tensor_release(j->staged[k]);
    free(j->staged);
    free(j->segs);
}

/* Checks every tensor and builds the segments (staging where needed). */
static ts_status prepare(job *j, ts_tensor *const *grads, const char *const *state_names)
{
    if (j->n < 0) return ts_fail(TS_ERR_ARG, "%s: negative tensor count %d", j->op, j->n);
    if (j->n > 0 && (!j->params || !grads)) return ts_fail(TS_ERR_ARG, "%s: params or grads array is NULL", j->op);
    for (int i = 0; i < j->n; i++) {
        if (check_param(j->op, i, j->params[i], grads[i])) return ts_last_status();
        for (int k = 0; k < j->nstates; k++)
            if (j->states[k] && check_state(j->op, state_names[k], i, j->states[k][i], j->params[i]))
                return ts_last_status();
    }
    j->segs = calloc((size_t)j->n + 1, sizeof *j->segs);
    j->staged = calloc((size_t)j->n * STAGE_COLS + 1, sizeof *j->staged);
    if (!j->segs || !j->staged) return ts_fail(TS_ERR_MEMORY, "%s: out of memory", j->op);
    int64_t start = 0;
    for (int i = 0; i < j->n; i++) {
        seg *s = &j->segs[i];
        const ts_tensor *g = grads[i];
        s->start = start;
        s->n = ts_tensor_numel(j->params[i]);
        start += s->n;
        if (is_direct(j, i, g)) {
            s->f64 = j->params[i]->dtype == TS_F64;
            s->p = ts_tensor_data(j->params[i]);
            s->g = ts_tensor_data(g);
            for (int k = 0; k < j->nstates; k++)
                s->s[k] = j->states[k] ? ts_tensor_data(j->states[k][i]) : NULL;
            continue;
        }
        if (stage(j, i, g)) return ts_last_status();
        ts_tensor **row = j->staged + (size_t)i * STAGE_COLS;
        s->f64 = row[0]->dtype == TS_F64;
        s->p = ts_tensor_data(row[0]);
        s->g = ts_tensor_data(row[1]);
        for (int k = 0; k < j->nstates; k++) s->s[k] = row[2 + k] ? ts_tensor_data(row[2 + k]) : NULL;
    }
    j->total = start;
    return TS_OK;
}

/* Runs the kernel over elements [begin, end) of the job's range. */
static void run_range(int64_t begin, int64_t end, void *ctx)
{
    const job *j = ctx;
    int lo = 0, hi = j->n;                  /* first segment that ends after begin */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (j->segs[mid].start + j->segs[mid].n <= begin) lo = mid + 1;
        else hi = mid;
    }
    for (int k = lo; k < j->n && j->segs[k].start < end; k++) {
        const seg *s = &j->segs[k];
        int64_t a = begin > s->start ? begin - s->start : 0;
        int64_t b = end < s->start + s->n ? end - s->start : s->n;
        if (a < b) j->kernel(j, s, a, b);
    }
}

/* Copies staged parameters and states back into the caller's tensors. */
static ts_status write_back(job *j)
{
    for (int i = 0; i < j->n; i++) {
        ts_tensor **row = j->staged + (size_t)i * STAGE_COLS;
        if (!row[0]) continue;
        if (ts_copy_(j->params[i], row[0])) return ts_last_status();
        for (int k = 0; k < j->nstates; k++)
            if (row[2 + k] && ts_copy_(j->states[k][i], row[2 + k])) return ts_last_status();
    }
    return TS_OK;
}

static ts_status run_job(job *j, ts_tensor *const *grads, const char *const *state_names)
{
    ts_status st = prepare(j, grads, state_names);
    if (st == TS_OK) {
        ts_parallel_for(j->total, STEP_GRAIN, run_range, j);
        st = write_back(j);
    }
    release_job(j);
    return st;
}

/* Element pointers of a segment at offset lo (NULL stays NULL). */
static inline float *f32_at(const char *base, int64_t lo) { return base ? (float *)base + lo : NULL; }
static inline double *f64_at(const char *base, int64_t lo) { return base ? (double *)base + lo : NULL; }

/* Fails unless v >= 0 (NaN fails too). */
static ts_status need_nonneg(const char *op, const char *name, double v)
{
    if (!(v >= 0)) return ts_fail(TS_ERR_ARG, "%s: invalid %s %g (must be >= 0)", op, name, v);
    return TS_OK;
}

/* Fails unless 0 <= v < 1. */
static ts_status need_unit(const char *op, const char *name, double v)
{
    if (!(v >= 0 && v < 1)) return ts_fail(TS_ERR_ARG, "%s: invalid %s %g (must be in [0, 1))", op, name, v);
    return TS_OK;
}

static ts_status need_step(const char *op, int64_t step)
{
    if (step < 1)
        return ts_fail(TS_ERR_ARG, "%s: step must be >= 1 (the count after this update), got %lld", op, (long long)step);
    return TS_OK;
}

/* ---- SGD ---------------------------------------------------------------------------------- */

typedef struct sgd_hp {
    bool decay, momentum, nesterov, maximize, first;
    float wd_f, mom_f, damp_f, neg_lr_f;       /* wd, momentum, 1 - dampening, -lr */
    double wd_d, mom_d, damp_d, neg_lr_d;
} sgd_hp;

/* d = (maximize ? -g : g) + wd * p, then the momentum buffer; returns the
 * array holding the direction (d itself, or the buffer without nesterov). */
static const float *sgd_direction_f32(const sgd_hp *h, const float *restrict p, const float *restrict g,
                                      float *restrict buf, float *restrict d, int64_t n)
{
    const float wd = h->wd_f, mom = h->mom_f, damp = h->damp_f;
    const bool maximize = h->maximize, decay = h->decay;
    for (int64_t i = 0; i < n; i++) {
        float x = maximize ? -g[i] : g[i];
        d[i] = decay ? x + wd * p[i] : x;
    }
    if (!h->momentum) return d;
    if (h->first) memcpy(buf, d, sizeof(float) * (size_t)n);
    else
        for (int64_t i = 0; i < n; i++) buf[i] = buf[i] * mom + damp * d[i];
    if (!h->nesterov) return buf;
    for (int64_t i = 0; i < n; i++) d[i] = d[i] + mom * buf[i];
    return d;
}

static const double *sgd_direction_f64(const sgd_hp *h, const double *restrict p, const double *restrict g,
                                       double *restrict buf, double *restrict d, int64_t n)
{
    const double wd = h->wd_d, mom = h->mom_d, damp = h->damp_d;
    const bool maximize = h->maximize, decay = h->decay;
    for (int64_t i = 0; i < n; i++) {
        double x = maximize ? -g[i] : g[i];
        d[i] = decay ? x + wd * p[i] : x;
    }
    if (!h->momentum) return d;
    if (h->first) memcpy(buf, d, sizeof(double) * (size_t)n);
    else
        for (int64_t i = 0; i < n; i++) buf[i] = buf[i] * mom + damp * d[i];
    if (!h->nesterov) return buf;
    for (int64_t i = 0; i < n; i++) d[i] = d[i] + mom * buf[i];
    return d;
}

static void sgd_kernel(const job *j, const seg *s, int64_t lo, int64_t hi)
{
    const sgd_hp *h = j->hp;
    for (int64_t o = lo; o < hi; o += CHUNK) {
        int64_t k = hi - o < CHUNK ? hi - o : CHUNK;
        if (s->f64) {
            double tmp[CHUNK], *p = f64_at(s->p, o);
            const double *d = sgd_direction_f64(h, p, f64_at(s->g, o), f64_at(s->s[0], o), tmp, k);
            for (int64_t i = 0; i < k; i++) p[i] = p[i] + h->neg_lr_d * d[i];
        } else {
            float tmp[CHUNK], *p = f32_at(s->p, o);
            const float *d = sgd_direction_f32(h, p, f32_at(s->g, o), f32_at(s->s[0], o), tmp, k);
            const float nlr = h->neg_lr_f;
            for (int64_t i = 0; i < k; i++) p[i] = p[i] + nlr * d[i];
        }
    }
}

ts_status ts_sgd_step(ts_tensor *const *params, ts_tensor *const *grads, ts_tensor *const *momentum_buffers,
                      int n, const ts_sgd_opts *o, bool first_step)
{
    const char *op = "sgd";
    if (!o) return ts_fail(TS_ERR_ARG, "%s: options are NULL", op);
    if (need_nonneg(op, "learning rate", o->lr) || need_nonneg(op, "momentum", o->momentum) ||
        need_nonneg(op, "weight_decay", o->weight_decay))
        return ts_last_status();
    if (isnan(o->dampening)) return ts_fail(TS_ERR_ARG, "%s: dampening is NaN", op);
    if (o->nesterov && (o->momentum <= 0 || o->dampening != 0))
        return ts_fail(TS_ERR_ARG, "%s: nesterov momentum requires a momentum > 0 and zero dampening", op);
    bool use_buf = o->momentum != 0;
    if (use_buf && n > 0 && !momentum_buffers)
        return ts_fail(TS_ERR_ARG, "%s: momentum %g needs momentum buffers", op, o->momentum);
    sgd_hp h = {
        .decay = o->weight_decay != 0, .momentum = use_buf, .nesterov = o->nesterov,
        .maximize = o->maximize, .first = first_step,
        .wd_f = (float)o->weight_decay, .mom_f = (float)o->momentum, .damp_f = (float)(1 - o->dampening),
        .neg_lr_f = (float)-o->lr,
        .wd_d = o->weight_decay, .mom_d = o->momentum, .damp_d = 1 - o->dampening, .neg_lr_d = -o->lr,
    };
    ts_tensor *const *states[1] = { use_buf ? momentum_buffers : NULL };
    static const char *const names[1] = { "momentum_buffers" };
    job j = { .op = op, .n = n, .nstates = 1, .params = params, .states = states, .kernel = sgd_kernel, .hp = &h };
    return run_job(&j, grads, names);
}

/* ---- square roots ---------------------------------------------------------------------------- */

static void sqrt_f32(float *x, int64_t n)
{
    int64_t i = 0;
#if defined(__SSE2__)
    for (; i + 4 <= n; i += 4) _mm_storeu_ps(x + i, _mm_sqrt_ps(_mm_loadu_ps(x + i)));
#endif
    for (; i < n; i++) x[i] = sqrtf(x[i]);
}

static void sqrt_f64(double *x, int64_t n)
{
    int64_t i = 0;
#if defined(__SSE2__)
    for (; i + 2 <= n; i += 2) _mm_storeu_pd(x + i, _mm_sqrt_pd(_mm_loadu_pd(x + i)));
#endif
    for (; i < n; i++) x[i] = sqrt(x[i]);
}

/* ---- Adam / AdamW ------------------------------------------------------------------------------ */

typedef struct adam_f32s { float wd, decay, b1, c1, b2, c2, bc2_sqrt, eps, neg_step; } adam_f32s;
typedef struct adam_f64s { double wd, decay, b1, c1, b2, c2, bc2_sqrt, eps, neg_step; } adam_f64s;

typedef struct adam_hp {
    bool l2, decoupled, amsgrad, maximize;
    adam_f32s f;
    adam_f64s d;
} adam_hp;

/* Pass 1: weight decay, both moments, the amsgrad max; root[i] gets the
 * second moment in use. */
static void adam_moments_f32(const adam_hp *h, float *restrict p, const float *restrict g, float *restrict m,
                             float *restrict v, float *restrict vmax, float *restrict root, int64_t n)
{
    const adam_f32s c = h->f;
    const bool maximize = h->maximize, l2 = h->l2, decoupled = h->decoupled, amsgrad = h->amsgrad;
    for (int64_t i = 0; i < n; i++) {
        float gi = maximize ? -g[i] : g[i];
        if (l2) gi = gi + c.wd * p[i];
        if (decoupled) p[i] = p[i] * c.decay;
        float mi = m[i] * c.b1 + c.c1 * gi;
        float vi = v[i] * c.b2 + c.c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        if (amsgrad) {
            float x = vmax[i];
            vi = ((x != x) | (x > vi)) ? x : vi;     /* torch.maximum: NaN wins */
            vmax[i] = vi;
        }
        root[i] = vi;
    }
}

/* Pass 3: p += -step_size * m / (sqrt(v) / sqrt(bc2) + eps), root holding sqrt(v). */
static void adam_update_f32(const adam_hp *h, float *restrict p, const float *restrict m, const float *restrict root,
                            int64_t n)
{
    const adam_f32s c = h->f;
    for (int64_t i = 0; i < n; i++) {
        float den = root[i] / c.bc2_sqrt + c.eps;
        p[i] = p[i] + c.neg_step * m[i] / den;
    }
}

static void adam_moments_f64(const adam_hp *h, double *restrict p, const double *restrict g, double *restrict m,
                             double *restrict v, double *restrict vmax, double *restrict root, int64_t n)
{
    const adam_f64s c = h->d;
    const bool maximize = h->maximize, l2 = h->l2, decoupled = h->decoupled, amsgrad = h->amsgrad;
    for (int64_t i = 0; i < n; i++) {
        double gi = maximize ? -g[i] : g[i];
        if (l2) gi = gi + c.wd * p[i];
        if (decoupled) p[i] = p[i] * c.decay;
        double mi = m[i] * c.b1 + c.c1 * gi;
        double vi = v[i] * c.b2 + c.c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        if (amsgrad) {
            double x = vmax[i];
            vi = ((x != x) | (x > vi)) ? x : vi;
            vmax[i] = vi;
        }
        root[i] = vi;
    }
}

static void adam_update_f64(const adam_hp *h, double *restrict p, const double *restrict m,
                            const double *restrict root, int64_t n)
{
    const adam_f64s c = h->d;
    for (int64_t i = 0; i < n; i++) {
        double den = root[i] / c.bc2_sqrt + c.eps;
        p[i] = p[i] + c.neg_step * m[i] / den;
    }
}

static void adam_kernel(const job *j, const seg *s, int64_t lo, int64_t hi)
{
    const adam_hp *h = j->hp;
    for (int64_t o = lo; o < hi; o += CHUNK) {
        int64_t k = hi - o < CHUNK ? hi - o : CHUNK;
        if (s->f64) {
            double root[CHUNK];
            adam_moments_f64(h, f64_at(s->p, o), f64_at(s->g, o), f64_at(s->s[0], o), f64_at(s->s[1], o),
                             f64_at(s->s[2], o), root, k);
            sqrt_f64(root, k);
            adam_update_f64(h, f64_at(s->p, o), f64_at(s->s[0], o), root, k);
        } else {
            float root[CHUNK];
            adam_moments_f32(h, f32_at(s->p, o), f32_at(s->g, o), f32_at(s->s[0], o), f32_at(s->s[1], o),
                             f32_at(s->s[2], o), root, k);
            sqrt_f32(root, k);
            adam_update_f32(h, f32_at(s->p, o), f32_at(s->s[0], o), root, k);
        }
    }
}

static ts_status check_adam(const char *op, const ts_adam_opts *o, int64_t step)
{
    if (need_nonneg(op, "learning rate", o->lr) || need_nonneg(op, "eps", o->eps) ||
        need_unit(op, "beta1", o->beta1) || need_unit(op, "beta2", o->beta2) ||
        need_nonneg(op, "weight_decay", o->weight_decay) || need_step(op, step))
        return ts_last_status();
    return TS_OK;
}

ts_status ts_adam_step(ts_tensor *const *params, ts_tensor *const *grads, ts_tensor *const *exp_avg,
                       ts_tensor *const *exp_avg_sq, ts_tensor *const *max_exp_avg_sq,
                       int n, int64_t step, const ts_adam_opts *o)
{
    const char *op = o && o->decoupled ? "adamw" : "adam";
    if (!o) return ts_fail(TS_ERR_ARG, "%s: options are NULL", op);
    if (check_adam(op, o, step)) return ts_last_status();
    if (n > 0 && (!exp_avg || !exp_avg_sq || (o->amsgrad && !max_exp_avg_sq)))
        return ts_fail(TS_ERR_ARG, "%s: a state array (exp_avg, exp_avg_sq%s) is NULL", op,
                       o->amsgrad ? ", max_exp_avg_sq" : "");
    /* the scalars as PyTorch computes them in Python doubles */
    double bc1 = 1 - pow(o->beta1, (double)step), bc2 = 1 - pow(o->beta2, (double)step);
    double step_size = o->lr / bc1, bc2_sqrt = sqrt(bc2);
    double decay = 1 - o->lr * o->weight_decay;
    adam_hp h = {
        .l2 = !o->decoupled && o->weight_decay != 0, .decoupled = o->decoupled,
        .amsgrad = o->amsgrad, .maximize = o->maximize,
        .f = { (float)o->weight_decay, (float)decay, (float)o->beta1, (float)(1 - o->beta1), (float)o->beta2,
               (float)(1 - o->beta2), (float)bc2_sqrt, (float)o->eps, (float)-step_size },
        .d = { o->weight_decay, decay, o->beta1, 1 - o->beta1, o->beta2, 1 - o->beta2, bc2_sqrt, o->eps, -step_size },
    };
    ts_tensor *const *states[3] = { exp_avg, exp_avg_sq, o->amsgrad ? max_exp_avg_sq : NULL };
    static const char *const names[3] = { "exp_avg", "exp_avg_sq", "max_exp_avg_sq" };
    job j = { .op = op, .n = n, .nstates = 3, .params = params, .states = states, .kernel = adam_kernel, .hp = &h };
    return run_job(&j, grads, names);
}

/* ---- RMSprop -------------------------------------------------------------------------------------- */

typedef struct rms_f32s { float wd, alpha, c, eps, mom, neg_lr; } rms_f32s;
typedef struct rms_f64s { double wd, alpha, c, eps, mom, neg_lr; } rms_f64s;

typedef struct rms_hp {
    bool decay, centered, momentum, maximize;
    rms_f32s f;
    rms_f64s d;
} rms_hp;

/* Pass 1: gradient with weight decay into gd, the averages; root[i] gets
 * the value whose square root is the denominator. */
static void rms_moments_f32(const rms_hp *h, const float *restrict p, const float *restrict g, float *restrict sq,
                            float *restrict ga, float *restrict gd, float *restrict root, int64_t n)
{
    const rms_f32s c = h->f;
    const bool maximize = h->maximize, decay = h->decay, centered = h->centered;
    for (int64_t i = 0; i < n; i++) {
        float gi = maximize ? -g[i] : g[i];
        if (decay) gi = gi + c.wd * p[i];
        gd[i] = gi;
        float s = sq[i] * c.alpha + c.c * gi * gi;
        sq[i] = s;
        if (centered) {
            float a = ga[i] * c.alpha + c.c * gi;
            ga[i] = a;
            s = s + -1.0f * a * a;
        }
        root[i] = s;
    }
}

/* Pass 3: avg = root + eps; the momentum buffer or the parameter. */
static void rms_update_f32(const rms_hp *h, float *restrict p, float *restrict buf, const float *restrict gd,
                           const float *restrict root, int64_t n)
{
    const rms_f32s c = h->f;
    const bool momentum = h->momentum;
    for (int64_t i = 0; i < n; i++) {
        float avg = root[i] + c.eps;
        if (momentum) {
            float b = buf[i] * c.mom + gd[i] / avg;
            buf[i] = b;
            p[i] = p[i] + c.neg_lr * b;
        } else {
            p[i] = p[i] + c.neg_lr * gd[i] / avg;
        }
    }
}

static void rms_moments_f64(const rms_hp *h, const double *restrict p, const double *restrict g, double *restrict sq,
                            double *restrict ga, double *restrict gd, double *restrict root, int64_t n)
{
    const rms_f64s c = h->d;
    const bool maximize = h->maximize, decay = h->decay, centered = h->centered;
    for (int64_t i = 0; i < n; i++) {
        double gi = maximize ? -g[i] : g[i];
        if (decay) gi = gi + c.wd * p[i];
        gd[i] = gi;
        double s = sq[i] * c.alpha + c.c * gi * gi;
        sq[i] = s;
        if (centered) {
            double a = ga[i] * c.alpha + c.c * gi;
            ga[i] = a;
            s = s + -1.0 * a * a;
        }
        root[i] = s;
    }
}

static void rms_update_f64(const rms_hp *h, double *restrict p, double *restrict buf, const double *restrict gd,
                           const double *restrict root, int64_t n)
{
    const rms_f64s c = h->d;
    const bool momentum = h->momentum;
    for (int64_t i = 0; i < n; i++) {
        double avg = root[i] + c.eps;
        if (momentum) {
            double b = buf[i] * c.mom + gd[i] / avg;
            buf[i] = b;
            p[i] = p[i] + c.neg_lr * b;
        } else {
            p[i] = p[i] + c.neg_lr * gd[i] / avg;
        }
    }
}

static void rms_kernel(const job *j, const seg *s, int64_t lo, int64_t hi)
{
    const rms_hp *h = j->hp;
    for (int64_t o = lo; o < hi; o += CHUNK) {
        int64_t k = hi - o < CHUNK ? hi - o : CHUNK;
        if (s->f64) {
            double gd[CHUNK], root[CHUNK];
            rms_moments_f64(h, f64_at(s->p, o), f64_at(s->g, o), f64_at(s->s[0], o), f64_at(s->s[1], o), gd, root, k);
            sqrt_f64(root, k);
            rms_update_f64(h, f64_at(s->p, o), f64_at(s->s[2], o), gd, root, k);
        } else {
            float gd[CHUNK], root[CHUNK];
            rms_moments_f32(h, f32_at(s->p, o), f32_at(s->g, o), f32_at(s->s[0], o), f32_at(s->s[1], o), gd, root, k);
            sqrt_f32(root, k);
            rms_update_f32(h, f32_at(s->p, o), f32_at(s->s[2], o), gd, root, k);
        }
    }
}

ts_status ts_rmsprop_step(ts_tensor *const *params, ts_tensor *const *grads, ts_tensor *const *square_avg,
                          ts_tensor *const *grad_avg, ts_tensor *const *momentum_buffer,
                          int n, const ts_rmsprop_opts *o)
{
    const char *op = "rmsprop";
    if (!o) return ts_fail(TS_ERR_ARG, "%s: options are NULL", op);
    if (need_nonneg(op, "learning rate", o->lr) || need_nonneg(op, "eps", o->eps) ||
        need_nonneg(op, "momentum", o->momentum) || need_nonneg(op, "weight_decay", o->weight_decay) ||
        need_nonneg(op, "alpha", o->alpha))
        return ts_last_status();
    bool use_mom = o->momentum > 0;
    if (n > 0 && (!square_avg || (o->centered && !grad_avg) || (use_mom && !momentum_buffer)))
        return ts_fail(TS_ERR_ARG, "%s: a state array (square_avg%s%s) is NULL", op,
                       o->centered ? ", grad_avg" : "", use_mom ? ", momentum_buffer" : "");
    rms_hp h = {
        .decay = o->weight_decay != 0, .centered = o->centered, .momentum = use_mom, .maximize = o->maximize,
        .f = { (float)o->weight_decay, (float)o->alpha, (float)(1 - o->alpha), (float)o->eps, (float)o->momentum,
               (float)-o->lr },
        .d = { o->weight_decay, o->alpha, 1 - o->alpha, o->eps, o->momentum, -o->lr },
    };
    ts_tensor *const *states[3] = { square_avg, o->centered ? grad_avg : NULL, use_mom ? momentum_buffer : NULL };
    static const char *const names[3] = { "square_avg", "grad_avg", "momentum_buffer" };
    job j = { .op = op, .n = n, .nstates = 3, .params = params, .states = states, .kernel = rms_kernel, .hp = &h };
    return run_job(&j, grads, names);
}

/* ---- Adagrad ------------------------------------------------------------------------------------------ */

typedef struct adagrad_hp {
    bool decay, maximize;
    float wd_f, eps_f, neg_clr_f;
    double wd_d, eps_d, neg_clr_d;
} adagrad_hp;

/* Pass 1: gradient with weight decay into gd, sum += gd^2 (also into root). */
static void adagrad_moments_f32(const adagrad_hp *h, const float *restrict p, const float *restrict g,
                                float *restrict sum, float *restrict gd, float *restrict root, int64_t n)
{
    const float wd = h->wd_f;
    const bool maximize = h->maximize, decay = h->decay;
    for (int64_t i = 0; i < n; i++) {
        float gi = maximize ? -g[i] : g[i];
        if (decay) gi = gi + wd * p[i];
        gd[i] = gi;
        float s = sum[i] + 1.0f * gi * gi;
        sum[i] = s;
        root[i] = s;
    }
}

/* Pass 3: p += -clr * g / (sqrt(sum) + eps). */
static void adagrad_update_f32(const adagrad_hp *h, float *restrict p, const float *restrict gd,
                               const float *restrict root, int64_t n)
{
    const float eps = h->eps_f, nclr = h->neg_clr_f;
    for (int64_t i = 0; i < n; i++) p[i] = p[i] + nclr * gd[i] / (root[i] + eps);
}

static void adagrad_moments_f64(const adagrad_hp *h, const double *restrict p, const double *restrict g,
                                double *restrict sum, double *restrict gd, double *restrict root, int64_t n)
{
    const double wd = h->wd_d;
    const bool maximize = h->maximize, decay = h->decay;
    for (int64_t i = 0; i < n; i++) {
        double gi = maximize ? -g[i] : g[i];
        if (decay) gi = gi + wd * p[i];
        gd[i] = gi;
        double s = sum[i] + 1.0 * gi * gi;
        sum[i] = s;
        root[i] = s;
    }
}

static void adagrad_update_f64(const adagrad_hp *h, double *restrict p, const double *restrict gd,
                               const double *restrict root, int64_t n)
{
    const double eps = h->eps_d, nclr = h->neg_clr_d;
    for (int64_t i = 0; i < n; i++) p[i] = p[i] + nclr * gd[i] / (root[i] + eps);
}

static void adagrad_kernel(const job *j, const seg *s, int64_t lo, int64_t hi)
{
    const adagrad_hp *h = j->hp;
    for (int64_t o = lo; o < hi; o += CHUNK) {
        int64_t k = hi - o < CHUNK ? hi - o : CHUNK;
        if (s->f64) {
            double gd[CHUNK], root[CHUNK];
            adagrad_moments_f64(h, f64_at(s->p, o), f64_at(s->g, o), f64_at(s->s[0], o), gd, root, k);
            sqrt_f64(root, k);
            adagrad_update_f64(h, f64_at(s->p, o), gd, root, k);
        } else {
            float gd[CHUNK], root[CHUNK];
            adagrad_moments_f32(h, f32_at(s->p, o), f32_at(s->g, o), f32_at(s->s[0], o), gd, root, k);
            sqrt_f32(root, k);
            adagrad_update_f32(h, f32_at(s->p, o), gd, root, k);
        }
    }
}

ts_status ts_adagrad_step(ts_tensor *const *params, ts_tensor *const *grads, ts_tensor *const *state_sum,
                          int n, int64_t step, const ts_adagrad_opts *o)
{
    const char *op = "adagrad";
    if (!o) return ts_fail(TS_ERR_ARG, "%s: options are NULL", op);
    if (need_nonneg(op, "learning rate", o->lr) || need_nonneg(op, "lr_decay", o->lr_decay) ||
        need_nonneg(op, "eps", o->eps) || need_nonneg(op, "weight_decay", o->weight_decay) || need_step(op, step))
        return ts_last_status();
    if (n > 0 && !state_sum) return ts_fail(TS_ERR_ARG, "%s: the state array (sum) is NULL", op);
    double clr = o->lr / (1 + (double)(step - 1) * o->lr_decay);
    adagrad_hp h = {
        .decay = o->weight_decay != 0, .maximize = o->maximize,
        .wd_f = (float)o->weight_decay, .eps_f = (float)o->eps, .neg_clr_f = (float)-clr,
        .wd_d = o->weight_decay, .eps_d = o->eps, .neg_clr_d = -clr,
    };
    ts_tensor *const *states[1] = { state_sum };
    static const char *const names[1] = { "sum" };
    job j = { .op = op, .n = n, .nstates = 1, .params = params, .states = states, .kernel = adagrad_kernel, .hp = &h };
    return run_job(&j, grads, names);
}

/* ---- gradient clipping --------------------------------------------------------------------------------- */

/* One block of one gradient: its partial sum (or max) lands in out[k]. */
typedef struct norm_task { const char *data; bool f64; int64_t lo, n; } norm_task;

typedef struct norm_job {
    double p;
    const norm_task *tasks;
    double *out;
} norm_job;

/* Partial of sum |x|^p (p finite) or max |x| (p infinite; NaN propagates). */
static double block_partial_f32(const float *x, int64_t n, double p)
{
    if (isinf(p)) {
        double m = 0;
        for (int64_t i = 0; i < n; i++) {
            double a = fabs((double)x[i]);
            if (a > m || a != a) m = a;
            if (m != m) break;
        }
        return m;
    }
    double acc[8] = { 0 };
    int64_t i = 0;
    if (p == 2) {
        for (; i + 8 <= n; i += 8)
            for (int k = 0; k < 8; k++) acc[k] += (double)x[i + k] * (double)x[i + k];
        for (; i < n; i++) acc[0] += (double)x[i] * (double)x[i];
    } else if (p == 1) {
        for (; i + 8 <= n; i += 8)
            for (int k = 0; k < 8; k++) acc[k] += fabs((double)x[i + k]);
        for (; i < n; i++) acc[0] += fabs((double)x[i]);
    } else {
        for (; i < n; i++) acc[0] += pow(fabs((double)x[i]), p);
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

static double block_partial_f64(const double *x, int64_t n, double p)
{
    if (isinf(p)) {
        double m = 0;
        for (int64_t i = 0; i < n; i++) {
            double a = fabs(x[i]);
            if (a > m || a != a) m = a;
            if (m != m) break;
        }
        return m;
    }
    double acc[8] = { 0 };
    int64_t i = 0;
    if (p == 2) {
        for (; i + 8 <= n; i += 8)
            for (int k = 0; k < 8; k++) acc[k] += x[i + k] * x[i + k];
        for (; i < n; i++) acc[0] += x[i] * x[i];
    } else if (p == 1) {
        for (; i + 8 <= n; i += 8)
            for (int k = 0; k < 8; k++) acc[k] += fabs(x[i + k]);
        for (; i < n; i++) acc[0] += fabs(x[i]);
    } else {
        for (; i < n; i++) acc[0] += pow(fabs(x[i]), p);
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

static void norm_range(int64_t begin, int64_t end, void *ctx)
{
    const norm_job *nj = ctx;
    for (int64_t k = begin; k < end; k++) {
        const norm_task *t = &nj->tasks[k];
        nj->out[k] = t->f64 ? block_partial_f64((const double *)t->data + t->lo, t->n, nj->p)
                            : block_partial_f32((const float *)t->data + t->lo, t->n, nj->p);
    }
}

/* Combines partials (sums, or maxima when p is infinite) into a p-norm. */
static double combine(const double *part, int64_t n, double p)
{
    double acc = 0;
    for (int64_t k = 0; k < n; k++) {
        if (isinf(p)) {
            if (part[k] > acc || part[k] != part[k]) acc = part[k];
        } else {
            acc += part[k];
        }
    }
    if (isinf(p)) return acc;
    return p == 2 ? sqrt(acc) : p == 1 ? acc : pow(acc, 1.0 / p);
}

/* A value rounded to the precision of dtype dt (f64 exact, else float). */
static double round_to(ts_dtype dt, double v) { return dt == TS_F64 ? v : (double)(float)v; }

static ts_status check_grads(const char *op, ts_tensor *const *grads, int n)
{
    if (n < 0) return ts_fail(TS_ERR_ARG, "%s: negative tensor count %d", op, n);
    if (n > 0 && !grads) return ts_fail(TS_ERR_ARG, "%s: grads array is NULL", op);
    for (int i = 0; i < n; i++) {
        const ts_tensor *g = grads[i];
        if (!g) return ts_fail(TS_ERR_ARG, "%s: grads[%d] is NULL", op, i);
        if (!ts_dtype_is_float(g->dtype))
            return ts_fail(TS_ERR_ARG, "%s: grads[%d] has dtype %s; gradients are floating", op, i,
                           ts_dtype_name(g->dtype));
        if (ts_require_cpu(op, g) || ts_require_writable(op, g)) return ts_last_status();
    }
    return TS_OK;
}

/* Norm of each gradient (rounded to its dtype) into norms[n]. */
static ts_status grad_norms(const char *op, ts_tensor *const *grads, int n, double p, double *norms)
{
    ts_tensor **views = calloc((size_t)n + 1, sizeof *views);
    int64_t *first = calloc((size_t)n + 1, sizeof *first);
    norm_task *tasks = NULL;
    double *part = NULL;
    ts_status st = TS_OK;
    if (!views || !first) { st = ts_fail(TS_ERR_MEMORY, "%s: out of memory", op); goto done; }
    int64_t ntasks = 0, total = 0;
    for (int i = 0; i < n; i++) {
        const ts_tensor *g = grads[i];
        if (kernel_dtype(g->dtype) && ts_tensor_is_contiguous(g)) {
            ts_tensor_retain(grads[i]);
            views[i] = grads[i];
        } else if (!(views[i] = ts_to_dtype(g, g->dtype == TS_F64 ? TS_F64 : TS_F32))) {
            st = ts_last_status();
            goto done;
        }
        int64_t numel = ts_tensor_numel(g);
        first[i] = ntasks;
        ntasks += (numel + NORM_BLOCK - 1) / NORM_BLOCK;
        total += numel;
    }
    first[n] = ntasks;
    tasks = calloc((size_t)ntasks + 1, sizeof *tasks);
    part = calloc((size_t)ntasks + 1, sizeof *part);
    if (!tasks || !part) { st = ts_fail(TS_ERR_MEMORY, "%s: out of memory", op); goto done; }
    for (int i = 0; i < n; i++) {
        int64_t numel = ts_tensor_numel(views[i]);
        for (int64_t k = first[i]; k < first[i + 1]; k++) {
            int64_t lo = (k - first[i]) * NORM_BLOCK;
            tasks[k] = (norm_task){ ts_tensor_data(views[i]), views[i]->dtype == TS_F64, lo,
                                    numel - lo < NORM_BLOCK ? numel - lo : NORM_BLOCK };
        }
    }
    norm_job nj = { p, tasks, part };
    if (total >= 4 * NORM_BLOCK) ts_parallel_for(ntasks, 1, norm_range, &nj);
    else norm_range(0, ntasks, &nj);
    for (int i = 0; i < n; i++)
        norms[i] = round_to(grads[i]->dtype, combine(part + first[i], first[i + 1] - first[i], p));
done:
    if (views)
        for (int i = 0; i < n; i++) ts_tensor_release(views[i]);
    free(views);
    free(first);
    free(tasks);
    free(part);
    return st;
}

ts_status ts_clip_grad_norm(ts_tensor *const *grads, int n, double max_norm, double norm_type,
                            bool error_if_nonfinite, double *total_norm_out)
{
    const char *op = "clip_grad_norm";
    if (total_norm_out) *total_norm_out = 0;
    if (check_grads(op, grads, n)) return ts_last_status();
    if (isnan(norm_type) || norm_type <= 0)
        return ts_fail(TS_ERR_ARG, "%s: norm_type must be > 0 or inf, got %g", op, norm_type);
    if (isnan(max_norm)) return ts_fail(TS_ERR_ARG, "%s: max_norm is NaN", op);
    if (n == 0) return TS_OK;
    double *norms = malloc(sizeof(double) * (size_t)n);
    if (!norms) return ts_fail(TS_ERR_MEMORY, "%s: out of memory", op);
    ts_status st = grad_norms(op, grads, n, norm_type, norms);
    if (st) { free(norms); return st; }
    /* the norm of the per-tensor norms, in the first gradient's precision */
    for (int i = 0; i < n; i++)
        if (!isinf(norm_type)) norms[i] = norm_type == 2 ? norms[i] * norms[i] : pow(norms[i], norm_type);
    ts_dtype dt = grads[0]->dtype;
    double total = round_to(dt, combine(norms, n, norm_type));
    free(norms);
    if (total_norm_out) *total_norm_out = total;
    if (error_if_nonfinite && !isfinite(total))
        return ts_fail(TS_ERR_ARG, "%s: the total norm of order %g of the gradients is non-finite (%g), so it cannot "
                       "be clipped; pass error_if_nonfinite=false to scale by it anyway", op, norm_type, total);
    /* PyTorch: clamp(max_norm / (total + 1e-6), max=1), the division done as reciprocal * max_norm */
    double coef;
    if (dt == TS_F64) coef = (1.0 / (total + 1e-6)) * max_norm;
    else coef = (double)((1.0f / ((float)total + (float)1e-6)) * (float)max_norm);
    if (coef >= 1) return TS_OK;            /* scaling by 1 changes nothing */
    for (int i = 0; i < n; i++)
        if (ts_binary_scalar_(TS_MUL, grads[i], coef)) return ts_last_status();
    return TS_OK;
}

ts_status ts_clip_grad_value(ts_tensor *const *grads, int n, double clip_value)
{
    const char *op = "clip_grad_value";
    if (check_grads(op, grads, n)) return ts_last_status();
    if (!(clip_value >= 0)) return ts_fail(TS_ERR_ARG, "%s: clip_value must be >= 0, got %g", op, clip_value);
    for (int i = 0; i < n; i++)
        if (ts_clamp_(grads[i], -clip_value, clip_value)) return ts_last_status();
    return TS_OK;
}
