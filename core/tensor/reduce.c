/* reduce.c — reductions over dims: the ts_reduce front-end (dtype rules,
 * keepdim), var/std and norm built on it, and the CPU kernel ts_cpu_reduce.
 * (Ops along one dim that return indices or keep the dim — max/min with
 * indices, argmax, cumsum, sort, topk — are in sort.c.)
 *
 * The CPU kernel splits the input's dims into kept dims (one position per
 * output element) and reduced dims, drops size-1 dims, merges dims that are
 * contiguous among themselves, and orders the reduced dims so the innermost
 * has the smallest stride. Then one of two loop shapes runs:
 *  - rows: each output reduces runs of elements along the innermost reduced
 *    dim (sum over the last dim, or over everything);
 *  - columns: up to COLS neighbouring outputs are reduced together when a
 *    kept dim is innermost in memory (sum over dim 0 of a row-major matrix),
 *    so every load stays contiguous.
 * The work is cut into tasks = (output group, block of the reduced elements)
 * whose sizes depend only on the shapes; the partial results of the blocks
 * are combined in block order, so results never depend on the thread count.
 *
 * Accumulators: double for floating inputs, wrapping int64 for integer
 * sum/prod/amax/amin, 0/1 for any/all. f32 sums have fast paths the
 * compiler vectorises: rows add 16 float lanes over each block of 256
 * elements and the block total into a double; columns add 8 rows in float
 * before each double accumulate. Other dtypes and strided runs are staged
 * through a small buffer (f16/bf16 thus accumulate in double too). */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const redop_names[TS_REDOP_COUNT] = {
    "sum", "mean", "prod", "amax", "amin", "logsumexp", "any", "all",
};

static const char *redop_name(ts_redop op) { return (unsigned)op < TS_REDOP_COUNT ? redop_names[op] : "reduce"; }

/* ---- accumulators ------------------------------------------------------------ */

/* What the input is staged to before accumulating. */
typedef enum { ACC_F64, ACC_I64, ACC_BOOL } acc_kind;

static acc_kind acc_kind_of(ts_redop op, ts_dtype in)
{
    if (op == TS_ANY || op == TS_ALL) return ACC_BOOL;
    if (op == TS_MEAN || op == TS_LOGSUMEXP || ts_dtype_is_float(in)) return ACC_F64;
    return ACC_I64;
}

/* One running reduction. Floats: v is the sum / product / extreme; for
 * logsumexp v is the running max and s the sum of exp(x - v). Integers and
 * any/all use i. */
typedef struct { double v, s; int64_t i; } red_acc;

static red_acc acc_init(ts_redop op)
{
    red_acc a = { 0, 0, 0 };
    switch (op) {
    case TS_PROD: a.v = 1; a.i = 1; break;
    case TS_AMAX: a.v = -INFINITY; a.i = INT64_MIN; break;
    case TS_AMIN: a.v = INFINITY; a.i = INT64_MAX; break;
    case TS_LOGSUMEXP: a.v = -INFINITY; break;
    case TS_ALL: a.i = 1; break;
    default: break;
    }
    return a;
}

static int64_t wrap_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static int64_t wrap_mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }

/* NaN-propagating max/min of two doubles (NaN wins, like PyTorch). */
static double nan_max(double a, double b) { return a == a && !(b <= a) ? b : a; }
static double nan_min(double a, double b) { return a == a && !(b >= a) ? b : a; }

/* Merges a partial logsumexp (max m2, sum s2 of exp(x - m2)) into a.
 * NaN anywhere gives NaN; +inf gives +inf; -inf elements add nothing. */
static void lse_merge(red_acc *a, double m2, double s2)
{
    double m = a->v;
    if (m != m) return;
    if (m2 != m2) { a->v = m2; return; }
    if (m == INFINITY) return;
    if (m2 == INFINITY) { a->v = m2; return; }
    if (m2 == -INFINITY) return;
    if (m == -INFINITY) { a->v = m2; a->s = s2; return; }
    if (m2 > m) { a->s = a->s * exp(m - m2) + s2; a->v = m2; }
    else a->s += s2 * exp(m2 - m);
}

/* ---- horizontal accumulation: one accumulator, a chunk of staged values ----- */

static void chunk_f64(ts_redop op, red_acc *a, const double *x, int64_t n)
{
    switch (op) {
    case TS_SUM: case TS_MEAN: {
        double l[4] = { 0, 0, 0, 0 };
        int64_t i = 0;
        for (; i + 4 <= n; i += 4)
            for (int j = 0; j < 4; j++) l[j] += x[i + j];
        for (; i < n; i++) l[0] += x[i];
        a->v += (l[0] + l[1]) + (l[2] + l[3]);
        break;
    }
    case TS_PROD: {
        double p = a->v;
        for (int64_t i = 0; i < n; i++) p *= x[i];
        a->v = p;
        break;
    }
    case TS_AMAX: case TS_AMIN: {
        double m = a->v;
        bool want_max = op == TS_AMAX;
        for (int64_t i = 0; i < n && m == m; i++) {
            double y = x[i];
            if (y != y || (want_max ? y > m : y < m)) m = y;
        }
        a->v = m;
        break;
    }
    case TS_LOGSUMEXP: {
        double m = -INFINITY;
        for (int64_t i = 0; i < n; i++) {
            if (x[i] != x[i]) { lse_merge(a, x[i], 0); return; }
            if (x[i] > m) m = x[i];
        }
        if (m == -INFINITY || m == INFINITY) { lse_merge(a, m, 0); return; }
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += exp(x[i] - m);
        lse_merge(a, m, s);
        break;
    }
    default: break;
    }
}

static void chunk_i64(ts_redop op, red_acc *a, const int64_t *x, int64_t n)
{
    int64_t r = a->i;
    switch (op) {
    case TS_SUM: for (int64_t i = 0; i < n; i++) r = wrap_add(r, x[i]); break;
    case TS_PROD: for (int64_t i = 0; i < n; i++) r = wrap_mul(r, x[i]); break;
    case TS_AMAX: for (int64_t i = 0; i < n; i++) r = x[i] > r ? x[i] : r; break;
    case TS_AMIN: for (int64_t i = 0; i < n; i++) r = x[i] < r ? x[i] : r; break;
    default: break;
    }
    a->i = r;
}

static void chunk_bool(ts_redop op, red_acc *a, const uint8_t *x, int64_t n)
{
    uint8_t want = op == TS_ANY;    /* the value that decides the result */
    if ((a->i != 0) == want) return;
    for (int64_t i = 0; i < n; i++)
        if ((x[i] != 0) == want) { a->i = want; return; }
}

/* Merges the partial result b into a (a covers the elements before b's). */
static void acc_combine(ts_redop op, acc_kind k, red_acc *a, const red_acc *b)
{
    if (k == ACC_BOOL) {
        a->i = op == TS_ANY ? (a->i | b->i) : (a->i & b->i);
        return;
    }
    if (k == ACC_I64) {
        switch (op) {
        case TS_SUM: a->i = wrap_add(a->i, b->i); break;
        case TS_PROD: a->i = wrap_mul(a->i, b->i); break;
        case TS_AMAX: a->i = b->i > a->i ? b->i : a->i; break;
        case TS_AMIN: a->i = b->i < a->i ? b->i : a->i; break;
        default: break;
        }
        return;
    }
    switch (op) {
    case TS_SUM: case TS_MEAN: a->v += b->v; break;
    case TS_PROD: a->v *= b->v; break;
    case TS_AMAX: a->v = nan_max(a->v, b->v); break;
    case TS_AMIN: a->v = nan_min(a->v, b->v); break;
    case TS_LOGSUMEXP: lse_merge(a, b->v, b->s); break;
    default: break;
    }
}

/* Writes the final value of a (over `count` elements) to dst of dtype dt. */
static void acc_store(ts_redop op, acc_kind k, const red_acc *a, int64_t count, char *dst, ts_dtype dt)
{
    if (k != ACC_F64) { ts_store_i64(dst, dt, 0, a->i); return; }
    double v = a->v;
    if (op == TS_MEAN) v /= (double)count;
    else if (op == TS_LOGSUMEXP && isfinite(v)) v += log(a->s);
    ts_store_f64(dst, dt, 0, v);
}

/* ---- the kernel's plan ----------------------------------------------------------- */

#define CHUNK 256          /* staging buffer, in elements */
#define COLS 1024          /* outputs reduced together in the column shape */
#define ROW_BLOCK 32768    /* reduced elements per task in the row shape */
#define COL_TASKS 64       /* tasks the column shape aims for when outputs are few */
#define TASK_GRAIN 32768   /* elements of work below which a loop stays on one thread */

typedef struct {
    ts_redop op;
    acc_kind kind;
    ts_dtype dt, odt;
    int64_t es, oes;              /* element sizes of input and output */
    const char *a;
    char *out;
    bool fast_sum;                /* f32/f64 sum or mean: contiguous runs skip staging */
    /* kept dims, outer to inner: sizes, input strides, output strides (elements) */
    int nk;
    int64_t kshape[TS_MAX_DIMS], kstride[TS_MAX_DIMS], ostride[TS_MAX_DIMS];
    /* reduced dims, innermost (smallest stride) last */
    int nr;
    int64_t rshape[TS_MAX_DIMS], rstride[TS_MAX_DIMS];
    int64_t nout, nred;
    /* tasks: group g, block b -> task g * nb + b */
    bool columns;
    int64_t ncg;                  /* column groups per outer position (columns) */
    int64_t ngroups, nb, block;   /* block: reduced elements (rows) or positions (columns) per task */
    red_acc *partial;             /* [ngroups][nb][COLS or 1] when nb > 1 */
} red_ctx;

/* A row-major position in an nd-dim box, advanced one step at a time. */
typedef struct { int64_t idx[TS_MAX_DIMS]; } counter;

static void counter_set(counter *c, const int64_t *shape, int nd, int64_t linear)
{
    for (int d = nd - 1; d >= 0; d--) {
        c->idx[d] = linear % shape[d];
        linear /= shape[d];
    }
}

static void counter_inc(counter *c, const int64_t *shape, int nd)
{
    for (int d = nd - 1; d >= 0; d--) {
        if (++c->idx[d] < shape[d]) return;
        c->idx[d] = 0;
    }
}

static int64_t counter_dot(const counter *c, const int64_t *stride, int nd)
{
    int64_t off = 0;
    for (int d = 0; d < nd; d++) off += c->idx[d] * stride[d];
    return off;
}

/* Merges adjacent dims (outer to inner) that are contiguous in every stride array. */
static int merge_dims(int n, int64_t *shape, int64_t *s1, int64_t *s2)
{
    int m = 0;
    for (int d = 0; d < n; d++) {
        if (m > 0 && s1[m - 1] == s1[d] * shape[d] && (!s2 || s2[m - 1] == s2[d] * shape[d])) {
            shape[m - 1] *= shape[d];
            s1[m - 1] = s1[d];
            if (s2) s2[m - 1] = s2[d];
            continue;
        }
        shape[m] = shape[d];
        s1[m] = s1[d];
        if (s2) s2[m] = s2[d];
        m++;
    }
    return m;
}

static void plan_dims(red_ctx *c, const ts_tensor *a, const ts_tensor *out, const bool *mask)
{
    c->nk = c->nr = 0;
    c->nout = c->nred = 1;
    for (int d = 0; d < a->ndim; d++) {
        int64_t n = a->shape[d];
        if (mask[d]) c->nred *= n; else c->nout *= n;
        if (n == 1) continue;
        if (mask[d]) {
            /* insert keeping strides in descending order (stable) */
            int at = c->nr++;
            while (at > 0 && c->rstride[at - 1] < a->stride[d]) {
                c->rshape[at] = c->rshape[at - 1];
                c->rstride[at] = c->rstride[at - 1];
                at--;
            }
            c->rshape[at] = n;
            c->rstride[at] = a->stride[d];
        } else {
            c->kshape[c->nk] = n;
            c->kstride[c->nk] = a->stride[d];
            c->ostride[c->nk] = out->stride[d];
            c->nk++;
        }
    }
    c->nk = merge_dims(c->nk, c->kshape, c->kstride, c->ostride);
    c->nr = merge_dims(c->nr, c->rshape, c->rstride, NULL);
    if (c->nk == 0) { c->nk = 1; c->kshape[0] = 1; c->kstride[0] = c->ostride[0] = 0; }
    if (c->nr == 0) { c->nr = 1; c->rshape[0] = 1; c->rstride[0] = 0; }
}

/* Task sizes: a function of the shapes only (never of the thread count). */
static void plan_tasks(red_ctx *c)
{
    int64_t inner = c->kshape[c->nk - 1], ks = c->kstride[c->nk - 1];
    c->columns = inner >= 16 && ks != 0 && ks < c->rstride[c->nr - 1];
    if (!c->columns) {
        c->ngroups = c->nout;
        c->block = c->nred < ROW_BLOCK ? c->nred : ROW_BLOCK;
        c->nb = (c->nred + c->block - 1) / c->block;
        return;
    }
    c->ncg = (inner + COLS - 1) / COLS;
    c->ngroups = c->nout / inner * c->ncg;
    int64_t cols = inner < COLS ? inner : COLS;
    c->nb = 1;
    if (c->ngroups < COL_TASKS && c->nred * cols >= 2 * TASK_GRAIN) {
        int64_t want = (COL_TASKS + c->ngroups - 1) / c->ngroups, most = (c->nred + 255) / 256;
        c->nb = want < most ? want : most;
    }
    c->block = (c->nred + c->nb - 1) / c->nb;
    c->nb = (c->nred + c->block - 1) / c->block;
}

/* ---- staging ------------------------------------------------------------------------ */

/* Converts n elements at p (dtype dt, stride in elements) into buf as the
 * accumulator's type: double, int64 or 0/1 bytes. */
static void stage(void *buf, acc_kind k, const char *p, ts_dtype dt, int64_t stride, int64_t n)
{
    if (k == ACC_F64 && dt == TS_F32) {
        const float *x = (const float *)p;
        double *d = buf;
        for (int64_t i = 0; i < n; i++) d[i] = x[i * stride];
    } else if (k == ACC_F64 && dt == TS_F64) {
        const double *x = (const double *)p;
        double *d = buf;
        for (int64_t i = 0; i < n; i++) d[i] = x[i * stride];
    } else {
        ts_convert(buf, k == ACC_F64 ? TS_F64 : k == ACC_I64 ? TS_I64 : TS_BOOL, 1, p, dt, stride, n);
    }
}

/* Sum of n contiguous floats: 16 float lanes over each block of 256 (the
 * compiler vectorises the independent lanes without -ffast-math), each block
 * total added into a double, so long runs keep f64-like accuracy. */
static double sum_f32(const float *x, int64_t n)
{
    double total = 0;
    for (int64_t i = 0; i < n; i += 256) {
        int64_t m = n - i < 256 ? n - i : 256, k = 0;
        const float *b = x + i;
        float lane[16] = { 0 };
        for (; k + 16 <= m; k += 16)
            for (int j = 0; j < 16; j++) lane[j] += b[k + j];
        for (; k < m; k++) lane[k & 15] += b[k];
        for (int w = 8; w > 0; w /= 2)
            for (int j = 0; j < w; j++) lane[j] += lane[j + w];
        total += lane[0];
    }
    return total;
}

static double sum_f64(const double *x, int64_t n)
{
    double l[8] = { 0 };
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) l[j] += x[i + j];
    double t = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
    for (; i < n; i++) t += x[i];
    return t;
}

/* Accumulates a run of n elements at p (stride in elements) into a. */
static void acc_run(const red_ctx *c, red_acc *a, const char *p, int64_t stride, int64_t n)
{
    if (c->fast_sum && stride == 1) {
        a->v += c->dt == TS_F32 ? sum_f32((const float *)p, n) : sum_f64((const double *)p, n);
        return;
    }
    _Alignas(64) char buf[CHUNK * 8];
    for (int64_t off = 0; off < n; off += CHUNK) {
        int64_t m = n - off < CHUNK ? n - off : CHUNK;
        stage(buf, c->kind, p + off * stride * c->es, c->dt, stride, m);
        if (c->kind == ACC_F64) chunk_f64(c->op, a, (const double *)buf, m);
        else if (c->kind == ACC_I64) chunk_i64(c->op, a, (const int64_t *)buf, m);
        else chunk_bool(c->op, a, (const uint8_t *)buf, m);
    }
}

/* ---- the row shape ---------------------------------------------------------------- */

/* Accumulates the reduced elements [r0, r1) (row-major over the reduced
 * dims) of the output whose input elements start at base. */
static void acc_range(const red_ctx *c, red_acc *a, const char *base, int64_t r0, int64_t r1)
{
    int nouter = c->nr - 1;
    int64_t inner = c->rshape[nouter], istride = c->rstride[nouter];
    counter k;
    counter_set(&k, c->rshape, nouter, r0 / inner);
    int64_t j = r0 % inner;
    for (int64_t pos = r0; pos < r1;) {
        int64_t n = inner - j < r1 - pos ? inner - j : r1 - pos;
        acc_run(c, a, base + (counter_dot(&k, c->rstride, nouter) + j * istride) * c->es, istride, n);
        pos += n;
        j = 0;
        counter_inc(&k, c->rshape, nouter);
    }
}

static void row_tasks(int64_t begin, int64_t end, void *vc)
{
    const red_ctx *c = vc;
    counter k;
    int64_t o = begin / c->nb;
    counter_set(&k, c->kshape, c->nk, o);
    for (int64_t t = begin; t < end; t++) {
        int64_t g = t / c->nb, b = t % c->nb;
        for (; o < g; o++) counter_inc(&k, c->kshape, c->nk);
        const char *base = c->a + counter_dot(&k, c->kstride, c->nk) * c->es;
        int64_t r0 = b * c->block, r1 = r0 + c->block < c->nred ? r0 + c->block : c->nred;
        red_acc acc = acc_init(c->op);
        acc_range(c, &acc, base, r0, r1);
        if (c->nb > 1) c->partial[t] = acc;
        else acc_store(c->op, c->kind, &acc, c->nred, c->out + counter_dot(&k, c->ostride, c->nk) * c->oes, c->odt);
    }
}

/* ---- the column shape ---------------------------------------------------------- */

/* Accumulators of one column group (24 KiB: lives on the task's stack). */
typedef struct { double v[COLS], s[COLS]; int64_t i[COLS]; } col_accs;

/* Folds one staged value per column into the column accumulators. */
static void cols_update(const red_ctx *c, col_accs *a, const void *buf, int64_t n)
{
    ts_redop op = c->op;
    if (c->kind == ACC_BOOL) {
        const uint8_t *x = buf;
        if (op == TS_ANY) for (int64_t j = 0; j < n; j++) a->i[j] |= x[j] != 0;
        else for (int64_t j = 0; j < n; j++) a->i[j] &= x[j] != 0;
        return;
    }
    if (c->kind == ACC_I64) {
        const int64_t *x = buf;
        switch (op) {
        case TS_SUM: for (int64_t j = 0; j < n; j++) a->i[j] = wrap_add(a->i[j], x[j]); break;
        case TS_PROD: for (int64_t j = 0; j < n; j++) a->i[j] = wrap_mul(a->i[j], x[j]); break;
        case TS_AMAX: for (int64_t j = 0; j < n; j++) a->i[j] = x[j] > a->i[j] ? x[j] : a->i[j]; break;
        case TS_AMIN: for (int64_t j = 0; j < n; j++) a->i[j] = x[j] < a->i[j] ? x[j] : a->i[j]; break;
        default: break;
        }
        return;
    }
    const double *x = buf;
    switch (op) {
    case TS_SUM: case TS_MEAN: for (int64_t j = 0; j < n; j++) a->v[j] += x[j]; break;
    case TS_PROD: for (int64_t j = 0; j < n; j++) a->v[j] *= x[j]; break;
    case TS_AMAX: for (int64_t j = 0; j < n; j++) a->v[j] = nan_max(a->v[j], x[j]); break;
    case TS_AMIN: for (int64_t j = 0; j < n; j++) a->v[j] = nan_min(a->v[j], x[j]); break;
    case TS_LOGSUMEXP:
        for (int64_t j = 0; j < n; j++) {
            red_acc r = { a->v[j], a->s[j], 0 };
            lse_merge(&r, x[j], 1);
            a->v[j] = r.v;
            a->s[j] = r.s;
        }
        break;
    default: break;
    }
}

/* acc[j] += x0[j] + ... + x7[j]: eight rows of f32 added in float (a
 * pairwise tree), then into the double accumulators, which cuts the
 * accumulator traffic eightfold. */
static void sum8_cols(double *restrict acc, const float *const *x, int64_t n)
{
    const float *restrict x0 = x[0], *restrict x1 = x[1], *restrict x2 = x[2], *restrict x3 = x[3];
    const float *restrict x4 = x[4], *restrict x5 = x[5], *restrict x6 = x[6], *restrict x7 = x[7];
    for (int64_t j = 0; j < n; j++)
        acc[j] += ((x0[j] + x1[j]) + (x2[j] + x3[j])) + ((x4[j] + x5[j]) + (x6[j] + x7[j]));
}

/* Reduces positions [r0, r1) of the reduced dims for n columns at base
 * (column stride ks, in elements). */
static void cols_range(const red_ctx *c, col_accs *a, const char *base, int64_t ks, int64_t n, int64_t r0, int64_t r1)
{
    counter k;
    counter_set(&k, c->rshape, c->nr, r0);
    _Alignas(64) char buf[COLS * 8];
    bool direct = c->fast_sum && c->dt == TS_F32 && ks == 1;
    for (int64_t r = r0; r < r1;) {
        if (direct && r1 - r >= 8) {
            const float *x[8];
            for (int q = 0; q < 8; q++) {
                x[q] = (const float *)(base + counter_dot(&k, c->rstride, c->nr) * c->es);
                counter_inc(&k, c->rshape, c->nr);
            }
            sum8_cols(a->v, x, n);
            r += 8;
            continue;
        }
        const char *p = base + counter_dot(&k, c->rstride, c->nr) * c->es;
        if (direct) {
            const float *x = (const float *)p;
            for (int64_t j = 0; j < n; j++) a->v[j] += x[j];
        } else {
            stage(buf, c->kind, p, c->dt, ks, n);
            cols_update(c, a, buf, n);
        }
        counter_inc(&k, c->rshape, c->nr);
        r++;
    }
}

/* Offsets (elements) of column group g's first input and output elements. */
static void col_group_offsets(const red_ctx *c, int64_t g, int64_t *ia, int64_t *io, int64_t *ncols)
{
    int nouter = c->nk - 1;
    int64_t inner = c->kshape[nouter], q = g / c->ncg, j0 = g % c->ncg * COLS;
    counter k;
    counter_set(&k, c->kshape, nouter, q);
    *ia = counter_dot(&k, c->kstride, nouter) + j0 * c->kstride[nouter];
    *io = counter_dot(&k, c->ostride, nouter) + j0 * c->ostride[nouter];
    *ncols = inner - j0 < COLS ? inner - j0 : COLS;
}

static void col_tasks(int64_t begin, int64_t end, void *vc)
{
    const red_ctx *c = vc;
    col_accs accs;
    col_accs *acc = &accs;
    red_acc init = acc_init(c->op);
    int64_t ks = c->kstride[c->nk - 1], os = c->ostride[c->nk - 1];
    for (int64_t t = begin; t < end; t++) {
        int64_t g = t / c->nb, b = t % c->nb, ia, io, n;
        col_group_offsets(c, g, &ia, &io, &n);
        for (int64_t j = 0; j < n; j++) { acc->v[j] = init.v; acc->s[j] = init.s; acc->i[j] = init.i; }
        int64_t r0 = b * c->block, r1 = r0 + c->block < c->nred ? r0 + c->block : c->nred;
        cols_range(c, acc, c->a + ia * c->es, ks, n, r0, r1);
        for (int64_t j = 0; j < n; j++) {
            red_acc r = { acc->v[j], acc->s[j], acc->i[j] };
            if (c->nb > 1) c->partial[t * COLS + j] = r;
            else acc_store(c->op, c->kind, &r, c->nred, c->out + (io + j * os) * c->oes, c->odt);
        }
    }
}

/* Combines the blocks' partial results in block order and stores them. */
static void combine_partials(const red_ctx *c)
{
    int64_t width = c->columns ? COLS : 1;
    counter k;
    counter_set(&k, c->kshape, c->nk, 0);
    for (int64_t g = 0; g < c->ngroups; g++) {
        int64_t io, n = 1;
        if (c->columns) {
            int64_t ia;
            col_group_offsets(c, g, &ia, &io, &n);
        } else {
            io = counter_dot(&k, c->ostride, c->nk);
            counter_inc(&k, c->kshape, c->nk);
        }
        for (int64_t j = 0; j < n; j++) {
            red_acc acc = c->partial[(g * c->nb) * width + j];
            for (int64_t b = 1; b < c->nb; b++) acc_combine(c->op, c->kind, &acc, &c->partial[(g * c->nb + b) * width + j]);
            int64_t oo = c->columns ? io + j * c->ostride[c->nk - 1] : io;
            acc_store(c->op, c->kind, &acc, c->nred, c->out + oo * c->oes, c->odt);
        }
    }
}

/* Value of a reduction over no elements (amax/amin have none). */
static double empty_value(ts_redop op)
{
    switch (op) {
    case TS_MEAN: return NAN;
    case TS_PROD: case TS_ALL: return 1;
    case TS_LOGSUMEXP: return -INFINITY;
    default: return 0;
    }
}

ts_status ts_cpu_reduce(ts_redop op, ts_tensor *out, const ts_tensor *a, const bool *mask)
{
    const char *name = redop_name(op);
    if ((unsigned)op >= TS_REDOP_COUNT) return ts_fail(TS_ERR_ARG, "reduce: invalid op %d", (int)op);
    if (out->ndim != a->ndim) return ts_fail(TS_ERR_INTERNAL, "%s: output has %d dims, input %d", name, out->ndim, a->ndim);
    for (int d = 0; d < a->ndim; d++)
        if (out->shape[d] != (mask[d] ? 1 : a->shape[d]))
            return ts_fail(TS_ERR_INTERNAL, "%s: output shape does not match the reduction (dim %d)", name, d);
    red_ctx c;
    memset(&c, 0, sizeof c);
    plan_dims(&c, a, out, mask);
    if (c.nout == 0) return TS_OK;
    if (c.nred == 0) {
        if (op == TS_AMAX || op == TS_AMIN)
            return ts_fail(TS_ERR_ARG, "%s: cannot perform reduction on an empty dim", name);
        return ts_fill_(out, empty_value(op));
    }
    if (c.nred == 1) return ts_copy_(out, a);    /* x itself, converted (any/all: x != 0) */
    c.op = op;
    c.kind = acc_kind_of(op, a->dtype);
    c.dt = a->dtype;
    c.odt = out->dtype;
    c.es = (int64_t)ts_dtype_size(c.dt);
    c.oes = (int64_t)ts_dtype_size(c.odt);
    c.a = ts_tensor_data(a);
    c.out = ts_tensor_data(out);
    c.fast_sum = (op == TS_SUM || op == TS_MEAN) && (c.dt == TS_F32 || c.dt == TS_F64);
    plan_tasks(&c);
    int64_t ntasks = c.ngroups * c.nb;
    if (c.nb > 1) {
        size_t width = c.columns ? COLS : 1;
        c.partial = malloc(sizeof(red_acc) * width * (size_t)ntasks);
        if (!c.partial) return ts_fail(TS_ERR_MEMORY, "%s: out of memory for %lld partial results", name, (long long)ntasks);
    }
    int64_t per_task = c.columns ? c.block * (c.kshape[c.nk - 1] < COLS ? c.kshape[c.nk - 1] : COLS) : c.block;
    int64_t grain = per_task >= TASK_GRAIN ? 1 : TASK_GRAIN / per_task;
    ts_parallel_for(ntasks, grain, c.columns ? col_tasks : row_tasks, &c);
    if (c.nb > 1) combine_partials(&c);
    free(c.partial);
    return TS_OK;
}

/* ---- front-ends ---------------------------------------------------------------------- */

/* Result dtype of op on dtype in, like PyTorch: integer sum/prod give i64,
 * mean needs a floating input, logsumexp of integers gives f32. */
static ts_status reduce_dtype(ts_redop op, ts_dtype in, ts_dtype *out)
{
    bool fl = ts_dtype_is_float(in);
    switch (op) {
    case TS_SUM: case TS_PROD: *out = fl ? in : TS_I64; break;
    case TS_MEAN:
        if (!fl)
            return ts_fail(TS_ERR_ARG, "mean: input dtype %s is not floating point (convert it first, e.g. to('f32'))",
                           ts_dtype_name(in));
        *out = in;
        break;
    case TS_LOGSUMEXP: *out = fl ? in : TS_F32; break;
    case TS_ANY: case TS_ALL: *out = TS_BOOL; break;
    default: *out = in; break;
    }
    return TS_OK;
}

/* Fails when a reduced dim is empty (for ops without an identity). */
static ts_status check_nonempty(const char *op, const ts_tensor *a, const bool *mask)
{
    for (int d = 0; d < a->ndim; d++)
        if (mask[d] && a->shape[d] == 0) {
            char s[TS_SHAPE_STR_CAP];
            return ts_fail(TS_ERR_ARG, "%s: cannot perform reduction on an empty dim (dim %d of shape %s has size 0)", op,
                           d, ts_shape_str(a->shape, a->ndim, s, sizeof s));
        }
    return TS_OK;
}

ts_tensor *ts_reduce(ts_redop op, const ts_tensor *a, const int *dims, int ndims, bool keepdim)
{
    if ((unsigned)op >= TS_REDOP_COUNT) return ts_fail_null(TS_ERR_ARG, "reduce: invalid op %d", (int)op);
    const char *name = redop_name(op);
    if (ndims < 0 || ndims > TS_MAX_DIMS) return ts_fail_null(TS_ERR_ARG, "%s: %d dims given", name, ndims);
    bool mask[TS_MAX_DIMS];
    ts_dtype odt = a->dtype;
    if (ts_dims_mask(name, dims, ndims, a->ndim, mask) || reduce_dtype(op, a->dtype, &odt)) return NULL;
    if ((op == TS_AMAX || op == TS_AMIN) && check_nonempty(name, a, mask)) return NULL;
    const ts_backend *be = ts_backend_of(a);
    if (!be || !be->reduce)
        return ts_fail_null(TS_ERR_UNSUPPORTED, "%s: not implemented on the %s device", name, be ? be->name : "?");
    int64_t kshape[TS_MAX_DIMS], fshape[TS_MAX_DIMS];
    int fn = 0;
    for (int d = 0; d < a->ndim; d++) {
        kshape[d] = mask[d] ? 1 : a->shape[d];
        if (!mask[d] || keepdim) fshape[fn++] = kshape[d];
    }
    ts_tensor *out = ts_tensor_new_on(a, kshape, a->ndim, odt);
    if (!out) return NULL;
    if (be->reduce(op, out, a, mask)) { ts_tensor_release(out); return NULL; }
    if (keepdim) return out;
    ts_tensor *r = ts_view(out, fshape, fn);
    ts_tensor_release(out);
    return r;
}

/* a itself (a new reference) when it is f32/f64, else a new f32 copy:
 * f16/bf16 statistics are computed in f32. */
static ts_tensor *to_compute(const ts_tensor *a)
{
    if (a->dtype == TS_F32 || a->dtype == TS_F64) {
        ts_tensor_retain((ts_tensor *)a);
        return (ts_tensor *)a;
    }
    return ts_to_dtype(a, TS_F32);
}

/* Takes r and returns it as dtype dt (r itself when it already is). */
static ts_tensor *from_compute(ts_tensor *r, ts_dtype dt)
{
    if (!r || r->dtype == dt) return r;
    ts_tensor *c = ts_to_dtype(r, dt);
    ts_tensor_release(r);
    return c;
}

/* Checks a floating input and the dims; returns the number of reduced elements (-1 on error). */
static int64_t stat_args(const char *op, const ts_tensor *a, const int *dims, int ndims)
{
    if (!ts_dtype_is_float(a->dtype)) {
        ts_fail(TS_ERR_ARG, "%s: input dtype %s is not floating point (convert it first, e.g. to('f32'))", op,
                ts_dtype_name(a->dtype));
        return -1;
    }
    bool mask[TS_MAX_DIMS];
    if (ndims < 0 || ndims > TS_MAX_DIMS) { ts_fail(TS_ERR_ARG, "%s: %d dims given", op, ndims); return -1; }
    if (ts_dims_mask(op, dims, ndims, a->ndim, mask)) return -1;
    int64_t count = 1;
    for (int d = 0; d < a->ndim; d++)
        if (mask[d]) count *= a->shape[d];
    return count;
}

/* sum((x - mean)^2) / max(0, N - correction), optionally its square root. */
static ts_tensor *variance(const char *op, const ts_tensor *a, const int *dims, int ndims, double correction,
                           bool keepdim, bool root)
{
    int64_t count = stat_args(op, a, dims, ndims);
    if (count < 0) return NULL;
    if (isnan(correction)) return ts_fail_null(TS_ERR_ARG, "%s: correction is NaN", op);
    ts_tensor *x = to_compute(a);
    ts_tensor *mean = x ? ts_reduce(TS_MEAN, x, dims, ndims, true) : NULL;
    ts_tensor *dev = mean ? ts_binary(TS_SUB, x, mean) : NULL;
    ts_tensor *r = dev && !ts_unary_(TS_SQUARE, dev) ? ts_reduce(TS_SUM, dev, dims, ndims, keepdim) : NULL;
    ts_tensor_release(x);
    ts_tensor_release(mean);
    ts_tensor_release(dev);
    double denom = (double)count - correction;
    if (r && (ts_binary_scalar_(TS_DIV, r, denom > 0 ? denom : 0) || (root && ts_unary_(TS_SQRT, r)))) {
        ts_tensor_release(r);
        return NULL;
    }
    return from_compute(r, a->dtype);
}

ts_tensor *ts_var(const ts_tensor *a, const int *dims, int ndims, double correction, bool keepdim)
{
    return variance("var", a, dims, ndims, correction, keepdim, false);
}

ts_tensor *ts_std(const ts_tensor *a, const int *dims, int ndims, double correction, bool keepdim)
{
    return variance("std", a, dims, ndims, correction, keepdim, true);
}

/* The p-norm of x (f32/f64) over dims; count is the number of reduced elements. */
static ts_tensor *norm_of(const ts_tensor *x, double p, const int *dims, int ndims, bool keepdim, int64_t count)
{
    if (p == 0) {                                   /* number of non-zeros */
        ts_tensor *nz = ts_binary_scalar(TS_NE, x, 0, false);
        ts_tensor *n = nz ? ts_reduce(TS_SUM, nz, dims, ndims, keepdim) : NULL;
        ts_tensor_release(nz);
        return from_compute(n, x->dtype);
    }
    if (p == 2) {
        ts_tensor *sq = ts_unary(TS_SQUARE, x);
        ts_tensor *s = sq ? ts_reduce(TS_SUM, sq, dims, ndims, keepdim) : NULL;
        ts_tensor_release(sq);
        if (s && ts_unary_(TS_SQRT, s)) { ts_tensor_release(s); return NULL; }
        return s;
    }
    ts_tensor *ab = ts_unary(TS_ABS, x), *r = NULL;
    if (!ab) return NULL;
    if (p == 1 || (p == INFINITY && count == 0)) {  /* the max of no |x| is 0, like PyTorch */
        r = ts_reduce(TS_SUM, ab, dims, ndims, keepdim);
    } else if (isinf(p)) {
        r = ts_reduce(p > 0 ? TS_AMAX : TS_AMIN, ab, dims, ndims, keepdim);
    } else {
        ts_tensor *pw = ts_binary_scalar(TS_POW, ab, p, false);
        ts_tensor *s = pw ? ts_reduce(TS_SUM, pw, dims, ndims, keepdim) : NULL;
        r = s ? ts_binary_scalar(TS_POW, s, 1.0 / p, false) : NULL;
        ts_tensor_release(pw);
        ts_tensor_release(s);
    }
    ts_tensor_release(ab);
    return r;
}

ts_tensor *ts_norm(const ts_tensor *a, double p, const int *dims, int ndims, bool keepdim)
{
    int64_t count = stat_args("norm", a, dims, ndims);
    if (count < 0) return NULL;
    if (isnan(p)) return ts_fail_null(TS_ERR_ARG, "norm: p is NaN");
    ts_tensor *x = to_compute(a);
    if (!x) return NULL;
    ts_tensor *r = norm_of(x, p, dims, ndims, keepdim, count);
    ts_tensor_release(x);
    return from_compute(r, a->dtype);
}
