/* elementwise_kernels.c — inner loops of the elementwise ops for the three
 * compute types. A loop-shape macro writes the four broadcast cases of each
 * binary kernel (both vectors, vector-scalar, scalar-vector, scalars) so the
 * compiler vectorises each case; every kernel is still spelled out per type.
 * Semantics follow PyTorch: integer +,-,* wrap; max/min propagate NaN;
 * remainder takes the divisor's sign; integer division by zero gives 0
 * instead of trapping (PyTorch raises; torsh must not crash). */
#include "elementwise_kernels.h"

#include <math.h>
#include <stdint.h>

#define BIN_LOOP(T, OT, EXPR)                                                   \
    {                                                                           \
        OT *o = out;                                                            \
        const T *x = a, *y = b;                                                 \
        if (sa && sb) for (int64_t i = 0; i < n; i++) { T u = x[i], v = y[i]; o[i] = (OT)(EXPR); } \
        else if (sa) { T v = y[0]; for (int64_t i = 0; i < n; i++) { T u = x[i]; o[i] = (OT)(EXPR); } } \
        else if (sb) { T u = x[0]; for (int64_t i = 0; i < n; i++) { T v = y[i]; o[i] = (OT)(EXPR); } } \
        else { T u = x[0], v = y[0]; OT r = (OT)(EXPR); for (int64_t i = 0; i < n; i++) o[i] = r; } \
    }
#define BIN(name, T, OT, EXPR) \
    static void name(int64_t n, void *out, const void *a, int64_t sa, const void *b, int64_t sb) BIN_LOOP(T, OT, EXPR)

/* integer helpers without undefined behaviour */
static inline int64_t wadd(int64_t u, int64_t v) { return (int64_t)((uint64_t)u + (uint64_t)v); }
static inline int64_t wsub(int64_t u, int64_t v) { return (int64_t)((uint64_t)u - (uint64_t)v); }
static inline int64_t wmul(int64_t u, int64_t v) { return (int64_t)((uint64_t)u * (uint64_t)v); }
static inline int64_t ipow(int64_t b, int64_t e)
{
    if (e < 0) return b == 1 ? 1 : b == -1 ? (e & 1 ? -1 : 1) : 0;
    int64_t r = 1;
    while (e) { if (e & 1) r = wmul(r, b); b = wmul(b, b); e >>= 1; }
    return r;
}
static inline int64_t ifloordiv(int64_t u, int64_t v)
{
    if (v == 0) return 0;
    if (v == -1) return wsub(0, u);
    int64_t q = u / v;
    return (u % v != 0 && ((u < 0) != (v < 0))) ? q - 1 : q;
}
static inline int64_t iremainder(int64_t u, int64_t v)
{
    if (v == 0 || v == -1) return 0;
    int64_t r = u % v;
    return (r != 0 && ((r < 0) != (v < 0))) ? r + v : r;
}
static inline double dremainder(double u, double v) { double r = fmod(u, v); return (r != 0 && ((r < 0) != (v < 0))) ? r + v : r; }
static inline float fremainder(float u, float v) { float r = fmodf(u, v); return (r != 0 && ((r < 0) != (v < 0))) ? r + v : r; }

BIN(add_f32, float, float, u + v)   BIN(add_f64, double, double, u + v)   BIN(add_i64, int64_t, int64_t, wadd(u, v))
BIN(sub_f32, float, float, u - v)   BIN(sub_f64, double, double, u - v)   BIN(sub_i64, int64_t, int64_t, wsub(u, v))
BIN(mul_f32, float, float, u * v)   BIN(mul_f64, double, double, u * v)   BIN(mul_i64, int64_t, int64_t, wmul(u, v))
BIN(div_f32, float, float, u / v)   BIN(div_f64, double, double, u / v)
BIN(pow_f32, float, float, powf(u, v)) BIN(pow_f64, double, double, pow(u, v)) BIN(pow_i64, int64_t, int64_t, ipow(u, v))
BIN(max_f32, float, float, u != u ? u : (v != v ? v : (u > v ? u : v)))
BIN(max_f64, double, double, u != u ? u : (v != v ? v : (u > v ? u : v)))
BIN(max_i64, int64_t, int64_t, u > v ? u : v)
BIN(min_f32, float, float, u != u ? u : (v != v ? v : (u < v ? u : v)))
BIN(min_f64, double, double, u != u ? u : (v != v ? v : (u < v ? u : v)))
BIN(min_i64, int64_t, int64_t, u < v ? u : v)
BIN(rem_f32, float, float, fremainder(u, v)) BIN(rem_f64, double, double, dremainder(u, v)) BIN(rem_i64, int64_t, int64_t, iremainder(u, v))
BIN(fdiv_f32, float, float, floorf(u / v)) BIN(fdiv_f64, double, double, floor(u / v)) BIN(fdiv_i64, int64_t, int64_t, ifloordiv(u, v))
BIN(atan2_f32, float, float, atan2f(u, v)) BIN(atan2_f64, double, double, atan2(u, v))
BIN(eq_f32, float, uint8_t, u == v) BIN(eq_f64, double, uint8_t, u == v) BIN(eq_i64, int64_t, uint8_t, u == v)
BIN(ne_f32, float, uint8_t, u != v) BIN(ne_f64, double, uint8_t, u != v) BIN(ne_i64, int64_t, uint8_t, u != v)
BIN(lt_f32, float, uint8_t, u < v)  BIN(lt_f64, double, uint8_t, u < v)  BIN(lt_i64, int64_t, uint8_t, u < v)
BIN(le_f32, float, uint8_t, u <= v) BIN(le_f64, double, uint8_t, u <= v) BIN(le_i64, int64_t, uint8_t, u <= v)
BIN(gt_f32, float, uint8_t, u > v)  BIN(gt_f64, double, uint8_t, u > v)  BIN(gt_i64, int64_t, uint8_t, u > v)
BIN(ge_f32, float, uint8_t, u >= v) BIN(ge_f64, double, uint8_t, u >= v) BIN(ge_i64, int64_t, uint8_t, u >= v)
BIN(and_f32, float, uint8_t, (u != 0) & (v != 0)) BIN(and_f64, double, uint8_t, (u != 0) & (v != 0)) BIN(and_i64, int64_t, uint8_t, (u != 0) & (v != 0))
BIN(or_f32, float, uint8_t, (u != 0) | (v != 0))  BIN(or_f64, double, uint8_t, (u != 0) | (v != 0))  BIN(or_i64, int64_t, uint8_t, (u != 0) | (v != 0))
BIN(xor_f32, float, uint8_t, (u != 0) ^ (v != 0)) BIN(xor_f64, double, uint8_t, (u != 0) ^ (v != 0)) BIN(xor_i64, int64_t, uint8_t, (u != 0) ^ (v != 0))

static const ts_binary_kernel binary_table[TS_BINOP_COUNT][3] = {
    [TS_ADD] = { add_f32, add_f64, add_i64 },
    [TS_SUB] = { sub_f32, sub_f64, sub_i64 },
    [TS_MUL] = { mul_f32, mul_f64, mul_i64 },
    [TS_DIV] = { div_f32, div_f64, NULL },
    [TS_POW] = { pow_f32, pow_f64, pow_i64 },
    [TS_MAXIMUM] = { max_f32, max_f64, max_i64 },
    [TS_MINIMUM] = { min_f32, min_f64, min_i64 },
    [TS_REMAINDER] = { rem_f32, rem_f64, rem_i64 },
    [TS_FLOOR_DIVIDE] = { fdiv_f32, fdiv_f64, fdiv_i64 },
    [TS_ATAN2] = { atan2_f32, atan2_f64, NULL },
    [TS_EQ] = { eq_f32, eq_f64, eq_i64 },
    [TS_NE] = { ne_f32, ne_f64, ne_i64 },
    [TS_LT] = { lt_f32, lt_f64, lt_i64 },
    [TS_LE] = { le_f32, le_f64, le_i64 },
    [TS_GT] = { gt_f32, gt_f64, gt_i64 },
    [TS_GE] = { ge_f32, ge_f64, ge_i64 },
    [TS_LOGICAL_AND] = { and_f32, and_f64, and_i64 },
    [TS_LOGICAL_OR] = { or_f32, or_f64, or_i64 },
    [TS_LOGICAL_XOR] = { xor_f32, xor_f64, xor_i64 },
};

/* ---- unary ------------------------------------------------------------------ */
#define UN(name, T, OT, EXPR) \
    static void name(int64_t n, void *out, const void *a) \
    { OT *o = out; const T *x = a; for (int64_t i = 0; i < n; i++) { T u = x[i]; o[i] = (OT)(EXPR); } }

static inline float sigmoidf(float u) { return 1.0f / (1.0f + expf(-u)); }
static inline double sigmoidd(double u) { return 1.0 / (1.0 + exp(-u)); }
static inline float geluf(float u) { return 0.5f * u * (1.0f + erff(u * 0.70710678118654752f)); }
static inline double gelud(double u) { return 0.5 * u * (1.0 + erf(u * 0.70710678118654752)); }
static inline float gelu_tanhf(float u) { return 0.5f * u * (1.0f + tanhf(0.7978845608028654f * (u + 0.044715f * u * u * u))); }
static inline double gelu_tanhd(double u) { return 0.5 * u * (1.0 + tanh(0.7978845608028654 * (u + 0.044715 * u * u * u))); }
static inline float roundf_even(float u) { return nearbyintf(u); }   /* default rounding mode: half to even, like torch.round */

UN(abs_f32, float, float, fabsf(u))       UN(abs_f64, double, double, fabs(u))    UN(abs_i64, int64_t, int64_t, u < 0 ? wsub(0, u) : u)
UN(neg_f32, float, float, -u)             UN(neg_f64, double, double, -u)         UN(neg_i64, int64_t, int64_t, wsub(0, u))
UN(exp_f32, float, float, expf(u))        UN(exp_f64, double, double, exp(u))
UN(log_f32, float, float, logf(u))        UN(log_f64, double, double, log(u))
UN(sqrt_f32, float, float, sqrtf(u))      UN(sqrt_f64, double, double, sqrt(u))
UN(rsqrt_f32, float, float, 1.0f / sqrtf(u)) UN(rsqrt_f64, double, double, 1.0 / sqrt(u))
UN(sin_f32, float, float, sinf(u))        UN(sin_f64, double, double, sin(u))
UN(cos_f32, float, float, cosf(u))        UN(cos_f64, double, double, cos(u))
UN(tan_f32, float, float, tanf(u))        UN(tan_f64, double, double, tan(u))
UN(tanh_f32, float, float, tanhf(u))      UN(tanh_f64, double, double, tanh(u))
UN(sigmoid_f32, float, float, sigmoidf(u)) UN(sigmoid_f64, double, double, sigmoidd(u))
UN(relu_f32, float, float, u > 0 ? u : 0) UN(relu_f64, double, double, u > 0 ? u : 0) UN(relu_i64, int64_t, int64_t, u > 0 ? u : 0)
UN(gelu_f32, float, float, geluf(u))      UN(gelu_f64, double, double, gelud(u))
UN(gelut_f32, float, float, gelu_tanhf(u)) UN(gelut_f64, double, double, gelu_tanhd(u))
UN(silu_f32, float, float, u * sigmoidf(u)) UN(silu_f64, double, double, u * sigmoidd(u))
UN(erf_f32, float, float, erff(u))        UN(erf_f64, double, double, erf(u))
UN(floor_f32, float, float, floorf(u))    UN(floor_f64, double, double, floor(u))  UN(ident_i64, int64_t, int64_t, u)
UN(ceil_f32, float, float, ceilf(u))      UN(ceil_f64, double, double, ceil(u))
UN(round_f32, float, float, roundf_even(u)) UN(round_f64, double, double, nearbyint(u))
UN(trunc_f32, float, float, truncf(u))    UN(trunc_f64, double, double, trunc(u))
UN(sign_f32, float, float, (u > 0) - (u < 0)) UN(sign_f64, double, double, (u > 0) - (u < 0)) UN(sign_i64, int64_t, int64_t, (u > 0) - (u < 0))
UN(recip_f32, float, float, 1.0f / u)     UN(recip_f64, double, double, 1.0 / u)
UN(square_f32, float, float, u * u)       UN(square_f64, double, double, u * u)    UN(square_i64, int64_t, int64_t, wmul(u, u))
UN(log1p_f32, float, float, log1pf(u))    UN(log1p_f64, double, double, log1p(u))
UN(expm1_f32, float, float, expm1f(u))    UN(expm1_f64, double, double, expm1(u))
UN(log2_f32, float, float, log2f(u))      UN(log2_f64, double, double, log2(u))
UN(exp2_f32, float, float, exp2f(u))      UN(exp2_f64, double, double, exp2(u))
UN(asin_f32, float, float, asinf(u))      UN(asin_f64, double, double, asin(u))
UN(acos_f32, float, float, acosf(u))      UN(acos_f64, double, double, acos(u))
UN(atan_f32, float, float, atanf(u))      UN(atan_f64, double, double, atan(u))
UN(sinh_f32, float, float, sinhf(u))      UN(sinh_f64, double, double, sinh(u))
UN(cosh_f32, float, float, coshf(u))      UN(cosh_f64, double, double, cosh(u))
UN(not_f32, float, uint8_t, u == 0)       UN(not_f64, double, uint8_t, u == 0)     UN(not_i64, int64_t, uint8_t, u == 0)
UN(isnan_f32, float, uint8_t, u != u)     UN(isnan_f64, double, uint8_t, u != u)
UN(isinf_f32, float, uint8_t, isinf(u))   UN(isinf_f64, double, uint8_t, isinf(u))

static const ts_unary_kernel unary_table[TS_UNOP_COUNT][3] = {
    [TS_ABS] = { abs_f32, abs_f64, abs_i64 },
    [TS_NEG] = { neg_f32, neg_f64, neg_i64 },
    [TS_EXP] = { exp_f32, exp_f64, NULL },
    [TS_LOG] = { log_f32, log_f64, NULL },
    [TS_SQRT] = { sqrt_f32, sqrt_f64, NULL },
    [TS_RSQRT] = { rsqrt_f32, rsqrt_f64, NULL },
    [TS_SIN] = { sin_f32, sin_f64, NULL },
    [TS_COS] = { cos_f32, cos_f64, NULL },
    [TS_TANH] = { tanh_f32, tanh_f64, NULL },
    [TS_SIGMOID] = { sigmoid_f32, sigmoid_f64, NULL },
    [TS_RELU] = { relu_f32, relu_f64, relu_i64 },
    [TS_GELU] = { gelu_f32, gelu_f64, NULL },
    [TS_GELU_TANH] = { gelut_f32, gelut_f64, NULL },
    [TS_SILU] = { silu_f32, silu_f64, NULL },
    [TS_ERF] = { erf_f32, erf_f64, NULL },
    [TS_FLOOR] = { floor_f32, floor_f64, ident_i64 },
    [TS_CEIL] = { ceil_f32, ceil_f64, ident_i64 },
    [TS_ROUND] = { round_f32, round_f64, ident_i64 },
    [TS_TRUNC] = { trunc_f32, trunc_f64, ident_i64 },
    [TS_SIGN] = { sign_f32, sign_f64, sign_i64 },
    [TS_RECIPROCAL] = { recip_f32, recip_f64, NULL },
    [TS_SQUARE] = { square_f32, square_f64, square_i64 },
    [TS_LOG1P] = { log1p_f32, log1p_f64, NULL },
    [TS_EXPM1] = { expm1_f32, expm1_f64, NULL },
    [TS_LOG2] = { log2_f32, log2_f64, NULL },
    [TS_EXP2] = { exp2_f32, exp2_f64, NULL },
    [TS_TAN] = { tan_f32, tan_f64, NULL },
    [TS_ASIN] = { asin_f32, asin_f64, NULL },
    [TS_ACOS] = { acos_f32, acos_f64, NULL },
    [TS_ATAN] = { atan_f32, atan_f64, NULL },
    [TS_SINH] = { sinh_f32, sinh_f64, NULL },
    [TS_COSH] = { cosh_f32, cosh_f64, NULL },
    [TS_LOGICAL_NOT] = { not_f32, not_f64, not_i64 },
    [TS_ISNAN] = { isnan_f32, isnan_f64, NULL },
    [TS_ISINF] = { isinf_f32, isinf_f64, NULL },
};

int ts_compute_index(ts_dtype dt)
{
    switch (dt) {
    case TS_F32: return 0;
    case TS_F64: return 1;
    case TS_I64: return 2;
    default: return -1;
    }
}

ts_binary_kernel ts_binary_kernel_for(ts_binop op, ts_dtype compute)
{
    int i = ts_compute_index(compute);
    return i < 0 || (unsigned)op >= TS_BINOP_COUNT ? NULL : binary_table[op][i];
}

ts_unary_kernel ts_unary_kernel_for(ts_unop op, ts_dtype compute)
{
    int i = ts_compute_index(compute);
    return i < 0 || (unsigned)op >= TS_UNOP_COUNT ? NULL : unary_table[op][i];
}
