/* random.c — seeded random numbers (see torsh/random.h): the Philox-4x32-10
 * counter-based generator (Salmon et al., "Parallel random numbers: as easy
 * as 1, 2, 3", SC 2011) and the fills built on it: rand, randn, randint,
 * bernoulli, randperm, uniform_ and normal_.
 *
 * Element i of a request draws one Philox block (4 x 32 bits) from counter
 * (g->offset + i) under the key g->seed; the request then advances
 * g->offset by the number of elements. Fills of big tensors run in
 * parallel, each element computed from its own counter, so the numbers do
 * not depend on the thread count or the split. */
#include "internal.h"
#include "torsh/random.h"

#include <math.h>
#include <string.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u
#define RANDOM_GRAIN 8192

void ts_generator_seed(ts_generator *g, uint64_t seed) { g->seed = seed; g->offset = 0; }

/* ---- Philox-4x32-10 ---------------------------------------------------------------- */

typedef struct { uint32_t v[4]; } philox_block;

static inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t *hi)
{
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

/* The block for 64-bit counter `ctr` under 64-bit key `key`. */
static inline philox_block philox(uint64_t key, uint64_t ctr)
{
    uint32_t c0 = (uint32_t)ctr, c1 = (uint32_t)(ctr >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = mulhilo(PHILOX_M0, c0, &hi0);
        uint32_t lo1 = mulhilo(PHILOX_M1, c2, &hi1);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    return (philox_block){ { c0, c1, c2, c3 } };
}

static inline uint64_t word64(const philox_block *b, int half)
{
    return (uint64_t)b->v[2 * half] | (uint64_t)b->v[2 * half + 1] << 32;
}

/* Blocks for PHILOX_BATCH consecutive counters, word k of block j in
 * w[k][j]: the same numbers as philox(), computed lane by lane so the
 * compiler vectorises the rounds (an AVX2 clone where the CPU has it). */
#define PHILOX_BATCH 64
typedef struct { uint32_t w[4][PHILOX_BATCH]; } philox_batch;

__attribute__((target_clones("avx2", "default")))
static void philox_many(uint64_t key, uint64_t first, philox_batch *b)
{
    uint32_t *c0 = b->w[0], *c1 = b->w[1], *c2 = b->w[2], *c3 = b->w[3];
    for (int j = 0; j < PHILOX_BATCH; j++) {
        uint64_t ctr = first + (uint64_t)j;
        c0[j] = (uint32_t)ctr;
        c1[j] = (uint32_t)(ctr >> 32);
        c2[j] = 0;
        c3[j] = 0;
    }
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int round = 0; round < 10; round++) {
        for (int j = 0; j < PHILOX_BATCH; j++) {
            uint64_t p0 = (uint64_t)PHILOX_M0 * c0[j], p1 = (uint64_t)PHILOX_M1 * c2[j];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[j] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3[j] ^ k1;
            c1[j] = (uint32_t)p1;
            c3[j] = (uint32_t)p0;
            c0[j] = n0;
            c2[j] = n2;
        }
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
}

/* The 64-bit word `half` (0 or 1) of block j. */
static inline uint64_t batch_word64(const philox_batch *b, int j, int half)
{
    return (uint64_t)b->w[2 * half][j] | (uint64_t)b->w[2 * half + 1][j] << 32;
}

/* Runs the body (the last argument) for each element i in [begin, end) with its block j of `b`. */
#define FOR_EACH_DRAW(c, begin, end, b, i, j, ...)                                \
    for (int64_t base_ = (begin); base_ < (end); base_ += PHILOX_BATCH) {           \
        int m_ = (end) - base_ < PHILOX_BATCH ? (int)((end) - base_) : PHILOX_BATCH; \
        philox_many((c)->key, (c)->first + (uint64_t)base_, &(b));                  \
        for (int j = 0; j < m_; j++) {                                              \
            int64_t i = base_ + j;                                                  \
            __VA_ARGS__                                                             \
        }                                                                           \
    }

/* High 64 bits of a * b. */
static inline uint64_t mulhi64(uint64_t a, uint64_t b)
{
    uint64_t a_lo = (uint32_t)a, a_hi = a >> 32, b_lo = (uint32_t)b, b_hi = b >> 32;
    uint64_t lo_lo = a_lo * b_lo, hi_lo = a_hi * b_lo, lo_hi = a_lo * b_hi, hi_hi = a_hi * b_hi;
    uint64_t cross = (lo_lo >> 32) + (uint32_t)hi_lo + lo_hi;
    return hi_hi + (hi_lo >> 32) + (cross >> 32);
}

/* Uniform in [0, 1) from the top 53 bits of r. */
static inline double unit_double(uint64_t r) { return (double)(r >> 11) * 0x1p-53; }

/* Mantissa bits of a float dtype: every value k * 2^-bits is exact in it. */
static int mantissa_bits(ts_dtype dt)
{
    switch (dt) {
    case TS_F64: return 53;
    case TS_F16: return 11;
    case TS_BF16: return 8;
    default: return 24;
    }
}

/* Reserves `n` counters of g; returns the first. */
static uint64_t take_counters(ts_generator *g, int64_t n)
{
    uint64_t first = g->offset;
    g->offset += (uint64_t)n;
    return first;
}

/* ---- fills of contiguous tensors --------------------------------------------------- */

typedef enum { FILL_UNIFORM, FILL_NORMAL, FILL_RANDINT, FILL_BERNOULLI } fill_kind;

typedef struct {
    fill_kind kind;
    uint64_t key, first;
    void *out;
    ts_dtype dt;
    double a, b;            /* uniform: lo, hi; normal: mean, std; bernoulli: p */
    int64_t lo;             /* randint: lo and range */
    uint64_t range;
    const void *p;          /* bernoulli: contiguous probabilities (NULL: use a) */
    ts_dtype pdt;
} fill_ctx;

static void fill_uniform(const fill_ctx *c, int64_t begin, int64_t end)
{
    double lo = c->a, hi = c->b, span = c->b - c->a;
    philox_batch b;
    if (c->dt == TS_F32) {
        float *o = c->out;
        float flo = (float)lo, fhi = (float)hi;
        bool unit = lo == 0 && hi == 1;
        FOR_EACH_DRAW(c, begin, end, b, i, j, {
            float u = (float)(b.w[0][j] >> 8) * 0x1p-24f;
            float v = unit ? u : (float)(lo + span * u);
            /* rounding may reach hi: keep the interval half-open */
            o[i] = v < fhi || flo == fhi ? v : nextafterf(fhi, flo);
        })
        return;
    }
    int bits = mantissa_bits(c->dt);
    double scale = ldexp(1.0, -bits);
    FOR_EACH_DRAW(c, begin, end, b, i, j, {
        double v = lo + span * ((double)(batch_word64(&b, j, 0) >> (64 - bits)) * scale);
        if (c->dt == TS_F64) {
            ((double *)c->out)[i] = v < hi || span == 0 ? v : nextafter(hi, lo);
        } else {
            ts_store_f64(c->out, c->dt, i, v);
            /* f16 / bf16 rounding reached hi (rare): fall back to lo */
            if (span > 0 && ts_load_f64(c->out, c->dt, i) >= hi) ts_store_f64(c->out, c->dt, i, lo);
        }
    })
}

/* Box-Muller from the element's own block: u1 in (0, 1] so log is finite. */
static void fill_normal(const fill_ctx *c, int64_t begin, int64_t end)
{
    double mean = c->a, std = c->b;
    philox_batch b;
    if (c->dt == TS_F64) {
        double *o = c->out;
        FOR_EACH_DRAW(c, begin, end, b, i, j, {
            double u1 = (double)((batch_word64(&b, j, 0) >> 11) + 1) * 0x1p-53;
            double u2 = (double)(batch_word64(&b, j, 1) >> 11) * 0x1p-53;
            o[i] = mean + std * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
        })
        return;
    }
    float fmean = (float)mean, fstd = (float)std;
    FOR_EACH_DRAW(c, begin, end, b, i, j, {
        float u1 = (float)((b.w[0][j] >> 8) + 1) * 0x1p-24f;
        float u2 = (float)(b.w[1][j] >> 8) * 0x1p-24f;
        float v = fmean + fstd * sqrtf(-2.0f * logf(u1)) * cosf(2.0f * (float)M_PI * u2);
        if (c->dt == TS_F32) ((float *)c->out)[i] = v;
        else ts_store_f64(c->out, c->dt, i, v);
    })
}

/* lo + floor(r * range / 2^64): no rejection, bias below 2^-64 * range. */
static void fill_randint(const fill_ctx *c, int64_t begin, int64_t end)
{
    philox_batch b;
    FOR_EACH_DRAW(c, begin, end, b, i, j, {
        int64_t v = (int64_t)((uint64_t)c->lo + mulhi64(batch_word64(&b, j, 0), c->range));
        if (c->dt == TS_I64) ((int64_t *)c->out)[i] = v;
        else ts_store_i64(c->out, c->dt, i, v);
    })
}

static void fill_bernoulli(const fill_ctx *c, int64_t begin, int64_t end)
{
    philox_batch b;
    FOR_EACH_DRAW(c, begin, end, b, i, j, {
        double p = c->p ? ts_load_f64(c->p, c->pdt, i) : c->a;
        ts_store_f64(c->out, c->dt, i, unit_double(batch_word64(&b, j, 0)) < p ? 1.0 : 0.0);
    })
}

static void fill_part(int64_t begin, int64_t end, void *vctx)
{
    const fill_ctx *c = vctx;
    switch (c->kind) {
    case FILL_UNIFORM: fill_uniform(c, begin, end); break;
    case FILL_NORMAL: fill_normal(c, begin, end); break;
    case FILL_RANDINT: fill_randint(c, begin, end); break;
    case FILL_BERNOULLI: fill_bernoulli(c, begin, end); break;
    }
}

/* Fills the contiguous tensor t, drawing counters from g. */
static void run_fill(ts_generator *g, fill_ctx *c, ts_tensor *t)
{
    int64_t n = ts_tensor_numel(t);
    c->key = g->seed;
    c->first = take_counters(g, n);
    c->out = ts_tensor_data(t);
    c->dt = t->dtype;
    if (n < 2 * RANDOM_GRAIN) fill_part(0, n, c);
    else ts_parallel_for(n, RANDOM_GRAIN, fill_part, c);
}

/* A new contiguous tensor filled by c. */
static ts_tensor *new_filled(ts_generator *g, fill_ctx *c, const int64_t *shape, int ndim, ts_dtype dt)
{
    ts_tensor *t = ts_tensor_new(shape, ndim, dt);
    if (t) run_fill(g, c, t);
    return t;
}

/* Fills any (possibly strided) tensor: in place when contiguous, else
 * through a contiguous temporary, so element i is always the i-th in
 * row-major order. */
static ts_status fill_any(const char *op, ts_generator *g, fill_ctx *c, ts_tensor *t)
{
    if (ts_require_cpu(op, t) || ts_require_writable(op, t)) return ts_last_status();
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] > 1 && t->stride[d] == 0)
            return ts_fail(TS_ERR_ARG, "%s: the tensor has elements sharing memory (an expanded view); clone() it first", op);
    if (ts_tensor_is_contiguous(t)) { run_fill(g, c, t); return TS_OK; }
    ts_tensor *tmp = ts_tensor_new(t->shape, t->ndim, t->dtype);
    if (!tmp) return ts_last_status();
    run_fill(g, c, tmp);
    ts_status st = ts_copy_(t, tmp);
    ts_tensor_release(tmp);
    return st;
}

/* ---- argument checks ------------------------------------------------------------- */

static ts_status need_float(const char *op, ts_dtype dt)
{
    if ((unsigned)dt >= TS_DTYPE_COUNT) return ts_fail(TS_ERR_ARG, "%s: invalid dtype %d", op, (int)dt);
    if (!ts_dtype_is_float(dt))
        return ts_fail(TS_ERR_ARG, "%s: needs a floating dtype (f32, f64, f16, bf16), got %s", op, ts_dtype_name(dt));
    return TS_OK;
}

static ts_status check_uniform(const char *op, double lo, double hi)
{
    if (!isfinite(lo) || !isfinite(hi) || lo > hi)
        return ts_fail(TS_ERR_ARG, "%s: needs finite bounds with lo <= hi, got [%g, %g)", op, lo, hi);
    return TS_OK;
}

static ts_status check_normal(const char *op, double mean, double std)
{
    if (!isfinite(mean) || !isfinite(std) || std < 0)
        return ts_fail(TS_ERR_ARG, "%s: needs a finite mean and std >= 0, got mean %g, std %g", op, mean, std);
    return TS_OK;
}

static ts_status check_probability(const char *op, double p)
{
    if (!(p >= 0 && p <= 1)) return ts_fail(TS_ERR_ARG, "%s: probability must be in [0, 1], got %g", op, p);
    return TS_OK;
}

/* Smallest and largest values an integer dtype holds. */
static void int_limits(ts_dtype dt, int64_t *min, int64_t *max)
{
    switch (dt) {
    case TS_I8: *min = INT8_MIN; *max = INT8_MAX; break;
    case TS_U8: *min = 0; *max = UINT8_MAX; break;
    case TS_I16: *min = INT16_MIN; *max = INT16_MAX; break;
    case TS_I32: *min = INT32_MIN; *max = INT32_MAX; break;
    case TS_BOOL: *min = 0; *max = 1; break;
    default: *min = INT64_MIN; *max = INT64_MAX; break;
    }
}

/* ---- public entries ---------------------------------------------------------------- */

ts_tensor *ts_rand(ts_generator *g, const int64_t *shape, int ndim, ts_dtype dt, double lo, double hi)
{
    if (need_float("rand", dt) || check_uniform("rand", lo, hi)) return NULL;
    fill_ctx c = { .kind = FILL_UNIFORM, .a = lo, .b = hi };
    return new_filled(g, &c, shape, ndim, dt);
}

ts_tensor *ts_randn(ts_generator *g, const int64_t *shape, int ndim, ts_dtype dt, double mean, double std)
{
    if (need_float("randn", dt) || check_normal("randn", mean, std)) return NULL;
    fill_ctx c = { .kind = FILL_NORMAL, .a = mean, .b = std };
    return new_filled(g, &c, shape, ndim, dt);
}

ts_tensor *ts_randint(ts_generator *g, int64_t lo, int64_t hi, const int64_t *shape, int ndim, ts_dtype dt)
{
    if ((unsigned)dt >= TS_DTYPE_COUNT) return ts_fail_null(TS_ERR_ARG, "randint: invalid dtype %d", (int)dt);
    if (lo >= hi)
        return ts_fail_null(TS_ERR_ARG, "randint: needs lo < hi, got [%lld, %lld)", (long long)lo, (long long)hi);
    if (!ts_dtype_is_float(dt)) {
        int64_t min, max;
        int_limits(dt, &min, &max);
        if (lo < min || hi - 1 > max)
            return ts_fail_null(TS_ERR_ARG, "randint: range [%lld, %lld) does not fit dtype %s (%lld..%lld)",
                                (long long)lo, (long long)hi, ts_dtype_name(dt), (long long)min, (long long)max);
    }
    fill_ctx c = { .kind = FILL_RANDINT, .lo = lo, .range = (uint64_t)hi - (uint64_t)lo };
    return new_filled(g, &c, shape, ndim, dt);
}

ts_tensor *ts_bernoulli(ts_generator *g, const ts_tensor *p, ts_dtype dt)
{
    if ((unsigned)dt >= TS_DTYPE_COUNT) return ts_fail_null(TS_ERR_ARG, "bernoulli: invalid dtype %d", (int)dt);
    if (ts_require_cpu("bernoulli", p) || need_float("bernoulli", p->dtype)) return NULL;
    ts_tensor *pc = ts_contiguous(p);
    if (!pc) return NULL;
    const void *pd = ts_tensor_data(pc);
    int64_t n = ts_tensor_numel(pc);
    for (int64_t i = 0; i < n; i++) {
        double v = ts_load_f64(pd, pc->dtype, i);
        if (!(v >= 0 && v <= 1)) {
            ts_tensor_release(pc);
            return ts_fail_null(TS_ERR_ARG, "bernoulli: probabilities must be in [0, 1], got %g at position %lld", v,
                                (long long)i);
        }
    }
    fill_ctx c = { .kind = FILL_BERNOULLI, .p = pd, .pdt = pc->dtype };
    ts_tensor *out = new_filled(g, &c, p->shape, p->ndim, dt);
    ts_tensor_release(pc);
    return out;
}

ts_tensor *ts_bernoulli_scalar(ts_generator *g, double p, const int64_t *shape, int ndim, ts_dtype dt)
{
    if ((unsigned)dt >= TS_DTYPE_COUNT) return ts_fail_null(TS_ERR_ARG, "bernoulli: invalid dtype %d", (int)dt);
    if (check_probability("bernoulli", p)) return NULL;
    fill_ctx c = { .kind = FILL_BERNOULLI, .a = p };
    return new_filled(g, &c, shape, ndim, dt);
}

ts_tensor *ts_randperm(ts_generator *g, int64_t n)
{
    if (n < 0) return ts_fail_null(TS_ERR_ARG, "randperm: n must be non-negative, got %lld", (long long)n);
    ts_tensor *t = ts_tensor_new(&n, 1, TS_I64);
    if (!t) return NULL;
    int64_t *v = ts_tensor_data(t);
    for (int64_t i = 0; i < n; i++) v[i] = i;
    /* Fisher-Yates from the top; step i draws from counter first + i */
    uint64_t first = take_counters(g, n);
    for (int64_t i = n - 1; i > 0; i--) {
        philox_block b = philox(g->seed, first + (uint64_t)i);
        int64_t j = (int64_t)mulhi64(word64(&b, 0), (uint64_t)i + 1);
        int64_t tmp = v[i];
        v[i] = v[j];
        v[j] = tmp;
    }
    return t;
}

ts_status ts_uniform_(ts_generator *g, ts_tensor *t, double lo, double hi)
{
    if (need_float("uniform_", t->dtype) || check_uniform("uniform_", lo, hi)) return ts_last_status();
    fill_ctx c = { .kind = FILL_UNIFORM, .a = lo, .b = hi };
    return fill_any("uniform_", g, &c, t);
}

ts_status ts_normal_(ts_generator *g, ts_tensor *t, double mean, double std)
{
    if (need_float("normal_", t->dtype) || check_normal("normal_", mean, std)) return ts_last_status();
    fill_ctx c = { .kind = FILL_NORMAL, .a = mean, .b = std };
    return fill_any("normal_", g, &c, t);
}

void ts_philox4x32(uint64_t key, uint64_t counter, uint32_t out[4])
{
    philox_block b = philox(key, counter);
    memcpy(out, b.v, sizeof b.v);
}
