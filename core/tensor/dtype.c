/* dtype.c — the dtype traits table, name parsing, promotion and conversion.
 * Conversions go through a 256-element staging buffer of double (floats) or
 * int64 (integers) with one loop per source and one per destination type,
 * plus direct fast paths for the pairs models hit hard (f32 <-> f16/bf16/f64). */
#include "torsh/dtype.h"

#include <math.h>
#include <string.h>
#include <strings.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static const ts_dtype_traits traits[TS_DTYPE_COUNT] = {
    [TS_F32]  = { "f32",  "float32",  4, TS_KIND_FLOAT, true },
    [TS_F64]  = { "f64",  "float64",  8, TS_KIND_FLOAT, true },
    [TS_F16]  = { "f16",  "float16",  2, TS_KIND_FLOAT, true },
    [TS_BF16] = { "bf16", "bfloat16", 2, TS_KIND_FLOAT, true },
    [TS_I8]   = { "i8",   "int8",     1, TS_KIND_INT,   true },
    [TS_U8]   = { "u8",   "uint8",    1, TS_KIND_INT,   false },
    [TS_I16]  = { "i16",  "int16",    2, TS_KIND_INT,   true },
    [TS_I32]  = { "i32",  "int32",    4, TS_KIND_INT,   true },
    [TS_I64]  = { "i64",  "int64",    8, TS_KIND_INT,   true },
    [TS_BOOL] = { "bool", "bool",     1, TS_KIND_BOOL,  false },
};

const ts_dtype_traits *ts_dtype_info(ts_dtype dt) { return &traits[dt]; }
const char *ts_dtype_name(ts_dtype dt) { return (unsigned)dt < TS_DTYPE_COUNT ? traits[dt].name : "?"; }

ts_status ts_dtype_parse(const char *name, ts_dtype *out)
{
    static const struct { const char *alias; ts_dtype dt; } aliases[] = {
        {"float", TS_F32}, {"half", TS_F16}, {"double", TS_F64}, {"long", TS_I64},
        {"int", TS_I32}, {"short", TS_I16}, {"byte", TS_U8}, {"char", TS_I8},
        {"float16", TS_F16}, {"float32", TS_F32}, {"float64", TS_F64},
    };
    if (!name) return ts_fail(TS_ERR_ARG, "dtype: missing name");
    const char *n = strncmp(name, "torch.", 6) == 0 ? name + 6 : name;
    for (int i = 0; i < TS_DTYPE_COUNT; i++)
        if (strcasecmp(n, traits[i].name) == 0 || strcasecmp(n, traits[i].torch) == 0) {
            *out = (ts_dtype)i;
            return TS_OK;
        }
    for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
        if (strcasecmp(n, aliases[i].alias) == 0) {
            *out = aliases[i].dt;
            return TS_OK;
        }
    return ts_fail(TS_ERR_ARG, "unknown dtype '%s' (known: f32 f64 f16 bf16 i8 u8 i16 i32 i64 bool)", name);
}

static int int_rank(ts_dtype d)
{
    switch (d) {
    case TS_I8: case TS_U8: return 1;
    case TS_I16: return 2;
    case TS_I32: return 3;
    default: return 4;
    }
}

ts_dtype ts_dtype_promote(ts_dtype a, ts_dtype b)
{
    if (a == b) return a;
    ts_dtype_kind ka = traits[a].kind, kb = traits[b].kind;
    if (ka != kb) {
        /* a higher category wins outright */
        if (ka == TS_KIND_FLOAT) return a;
        if (kb == TS_KIND_FLOAT) return b;
        return ka == TS_KIND_INT ? a : b;       /* int vs bool */
    }
    if (ka == TS_KIND_FLOAT) {
        if (a == TS_F64 || b == TS_F64) return TS_F64;
        if (a == TS_F32 || b == TS_F32) return TS_F32;
        return TS_F32;                          /* f16 with bf16 */
    }
    /* both integers */
    if ((a == TS_U8 && b == TS_I8) || (a == TS_I8 && b == TS_U8)) return TS_I16;
    return int_rank(a) >= int_rank(b) ? a : b;
}

/* ---- scalar f16 / bf16 ------------------------------------------------------ */

uint16_t ts_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u)                           /* inf or nan */
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);   /* rounds to inf */
    if (ax < 0x38800000u) {                           /* subnormal or zero in f16 */
        if (ax < 0x33000000u) return (uint16_t)sign;  /* below half the smallest subnormal */
        uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e;                      /* 14..24 */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t h = ((ax >> 13) - (112u << 10));         /* rebias exponent 127 -> 15 */
    uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float ts_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, x;
    if (e == 0) {
        if (m == 0) x = sign;
        else {                                        /* normalise the subnormal */
            e = 113;
            while (!(m & 0x400u)) { m <<= 1; e--; }
            x = sign | (e << 23) | ((m & 0x3ffu) << 13);
        }
    } else if (e == 31) x = sign | 0x7f800000u | (m << 13);
    else x = sign | ((e + 112) << 23) | (m << 13);
    float f;
    memcpy(&f, &x, 4);
    return f;
}

uint16_t ts_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);  /* quiet nan */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

float ts_bf16_to_f32(uint16_t h)
{
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* ---- vector fast paths --------------------------------------------------- */
#if defined(__x86_64__)
__attribute__((target("f16c,avx")))
static void f32_to_f16_f16c(uint16_t *d, const float *s, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(d + i), _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) d[i] = ts_f32_to_f16(s[i]);
}

__attribute__((target("f16c,avx")))
static void f16_to_f32_f16c(float *d, const uint16_t *s, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
    for (; i < n; i++) d[i] = ts_f16_to_f32(s[i]);
}

__attribute__((target("avx512f,avx512bf16,avx512vl")))
static void f32_to_bf16_avx512(uint16_t *d, const float *s, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256bh v = _mm512_cvtneps_pbh(_mm512_loadu_ps(s + i));
        _mm256_storeu_si256((__m256i *)(d + i), (__m256i)v);
    }
    for (; i < n; i++) d[i] = ts_f32_to_bf16(s[i]);
}
#endif

static void f32_to_f16_vec(uint16_t *d, const float *s, int64_t n)
{
#if defined(__x86_64__)
    if (ts_cpu()->f16c) { f32_to_f16_f16c(d, s, n); return; }
#endif
    for (int64_t i = 0; i < n; i++) d[i] = ts_f32_to_f16(s[i]);
}

static void f16_to_f32_vec(float *d, const uint16_t *s, int64_t n)
{
#if defined(__x86_64__)
    if (ts_cpu()->f16c) { f16_to_f32_f16c(d, s, n); return; }
#endif
    for (int64_t i = 0; i < n; i++) d[i] = ts_f16_to_f32(s[i]);
}

static void f32_to_bf16_vec(uint16_t *d, const float *s, int64_t n)
{
#if defined(__x86_64__)
    if (ts_cpu()->avx512_bf16) { f32_to_bf16_avx512(d, s, n); return; }
#endif
    for (int64_t i = 0; i < n; i++) d[i] = ts_f32_to_bf16(s[i]);
}

static void bf16_to_f32_vec(float *d, const uint16_t *s, int64_t n)
{
    for (int64_t i = 0; i < n; i++) d[i] = ts_bf16_to_f32(s[i]);
}

/* ---- element access ---------------------------------------------------------- */

double ts_load_f64(const void *p, ts_dtype dt, int64_t i)
{
    switch (dt) {
    case TS_F32: return ((const float *)p)[i];
    case TS_F64: return ((const double *)p)[i];
    case TS_F16: return ts_f16_to_f32(((const uint16_t *)p)[i]);
    case TS_BF16: return ts_bf16_to_f32(((const uint16_t *)p)[i]);
    case TS_I8: return ((const int8_t *)p)[i];
    case TS_U8: return ((const uint8_t *)p)[i];
    case TS_I16: return ((const int16_t *)p)[i];
    case TS_I32: return ((const int32_t *)p)[i];
    case TS_I64: return (double)((const int64_t *)p)[i];
    case TS_BOOL: return ((const uint8_t *)p)[i] != 0;
    default: return 0;
    }
}

/* Float to integer as C does, but defined for NaN (0) and out-of-range
 * values (saturate), where C leaves it undefined. */
static int64_t f64_to_i64(double v)
{
    if (v != v) return 0;
    if (v >= 9.2233720368547758e18) return INT64_MAX;
    if (v <= -9.2233720368547758e18) return INT64_MIN;
    return (int64_t)v;
}

void ts_store_f64(void *p, ts_dtype dt, int64_t i, double v)
{
    switch (dt) {
    case TS_F32: ((float *)p)[i] = (float)v; break;
    case TS_F64: ((double *)p)[i] = v; break;
    case TS_F16: ((uint16_t *)p)[i] = ts_f32_to_f16((float)v); break;
    case TS_BF16: ((uint16_t *)p)[i] = ts_f32_to_bf16((float)v); break;
    case TS_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    default: ts_store_i64(p, dt, i, f64_to_i64(v)); break;
    }
}

int64_t ts_load_i64(const void *p, ts_dtype dt, int64_t i)
{
    switch (dt) {
    case TS_I8: return ((const int8_t *)p)[i];
    case TS_U8: return ((const uint8_t *)p)[i];
    case TS_I16: return ((const int16_t *)p)[i];
    case TS_I32: return ((const int32_t *)p)[i];
    case TS_I64: return ((const int64_t *)p)[i];
    case TS_BOOL: return ((const uint8_t *)p)[i] != 0;
    default: return f64_to_i64(ts_load_f64(p, dt, i));
    }
}

void ts_store_i64(void *p, ts_dtype dt, int64_t i, int64_t v)
{
    /* narrowing wraps modulo 2^bits, as PyTorch's integer casts do */
    switch (dt) {
    case TS_I8: ((int8_t *)p)[i] = (int8_t)(uint8_t)v; break;
    case TS_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case TS_I16: ((int16_t *)p)[i] = (int16_t)(uint16_t)v; break;
    case TS_I32: ((int32_t *)p)[i] = (int32_t)(uint32_t)v; break;
    case TS_I64: ((int64_t *)p)[i] = v; break;
    case TS_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    default: ts_store_f64(p, dt, i, (double)v); break;
    }
}

/* ---- bulk conversion ---------------------------------------------------------- */

/* Strided loops between the common dtypes and f32 / f64 / i64, the pairs that
 * mixed-dtype elementwise ops and casts hit on every training step. One loop
 * per pair, spelled out; returns false when the pair is not covered. */
#define CONV_LOOP(DT, ST, EXPR) \
    { DT *d = dst; const ST *s = src; for (int64_t i = 0; i < n; i++) { ST v = s[i * ss]; d[i * ds] = (DT)(EXPR); } return true; }

static bool convert_to_f32(float *dst, int64_t ds, const void *src, ts_dtype sdt, int64_t ss, int64_t n)
{
    switch (sdt) {
    case TS_BOOL: case TS_U8: CONV_LOOP(float, uint8_t, v)
    case TS_I8: CONV_LOOP(float, int8_t, v)
    case TS_I16: CONV_LOOP(float, int16_t, v)
    case TS_I32: CONV_LOOP(float, int32_t, v)
    case TS_I64: CONV_LOOP(float, int64_t, v)
    case TS_F64: CONV_LOOP(float, double, v)
    default: return false;
    }
}

static bool convert_to_f64(double *dst, int64_t ds, const void *src, ts_dtype sdt, int64_t ss, int64_t n)
{
    switch (sdt) {
    case TS_BOOL: case TS_U8: CONV_LOOP(double, uint8_t, v)
    case TS_I8: CONV_LOOP(double, int8_t, v)
    case TS_I32: CONV_LOOP(double, int32_t, v)
    case TS_I64: CONV_LOOP(double, int64_t, v)
    case TS_F32: CONV_LOOP(double, float, v)
    default: return false;
    }
}

static bool convert_to_i64(int64_t *dst, int64_t ds, const void *src, ts_dtype sdt, int64_t ss, int64_t n)
{
    switch (sdt) {
    case TS_BOOL: case TS_U8: CONV_LOOP(int64_t, uint8_t, v)
    case TS_I8: CONV_LOOP(int64_t, int8_t, v)
    case TS_I16: CONV_LOOP(int64_t, int16_t, v)
    case TS_I32: CONV_LOOP(int64_t, int32_t, v)
    default: return false;
    }
}

static bool convert_to_bool(uint8_t *dst, int64_t ds, const void *src, ts_dtype sdt, int64_t ss, int64_t n)
{
    switch (sdt) {
    case TS_U8: case TS_I8: CONV_LOOP(uint8_t, uint8_t, v != 0)
    case TS_I32: CONV_LOOP(uint8_t, int32_t, v != 0)
    case TS_I64: CONV_LOOP(uint8_t, int64_t, v != 0)
    case TS_F32: CONV_LOOP(uint8_t, float, v != 0)
    case TS_F64: CONV_LOOP(uint8_t, double, v != 0)
    default: return false;
    }
}

static bool convert_from_i64(void *dst, ts_dtype ddt, int64_t ds, const int64_t *src, int64_t ss, int64_t n)
{
    /* narrowing wraps modulo 2^bits, like ts_store_i64 */
    switch (ddt) {
    case TS_U8: CONV_LOOP(uint8_t, int64_t, (uint8_t)v)
    case TS_I8: CONV_LOOP(int8_t, int64_t, (int8_t)(uint8_t)v)
    case TS_I16: CONV_LOOP(int16_t, int64_t, (int16_t)(uint16_t)v)
    case TS_I32: CONV_LOOP(int32_t, int64_t, (int32_t)(uint32_t)v)
    default: return false;
    }
}
#undef CONV_LOOP

void ts_convert(void *dst, ts_dtype ddt, int64_t ds, const void *src, ts_dtype sdt, int64_t ss, int64_t n)
{
    if (n <= 0) return;
    size_t dsz = traits[ddt].size, ssz = traits[sdt].size;
    if (ds == 1 && ss == 1) {
        if (ddt == sdt) { memcpy(dst, src, (size_t)n * dsz); return; }
        if (sdt == TS_F32 && ddt == TS_F16) { f32_to_f16_vec(dst, src, n); return; }
        if (sdt == TS_F16 && ddt == TS_F32) { f16_to_f32_vec(dst, src, n); return; }
        if (sdt == TS_F32 && ddt == TS_BF16) { f32_to_bf16_vec(dst, src, n); return; }
        if (sdt == TS_BF16 && ddt == TS_F32) { bf16_to_f32_vec(dst, src, n); return; }
        if (sdt == TS_F32 && ddt == TS_F64) {
            const float *s = src; double *d = dst;
            for (int64_t i = 0; i < n; i++) d[i] = s[i];
            return;
        }
        if (sdt == TS_F64 && ddt == TS_F32) {
            const double *s = src; float *d = dst;
            for (int64_t i = 0; i < n; i++) d[i] = (float)s[i];
            return;
        }
    }
    if (ddt == sdt) {
        const char *s = src; char *d = dst;
        for (int64_t i = 0; i < n; i++) memcpy(d + i * ds * dsz, s + i * ss * ssz, dsz);
        return;
    }
    if ((ddt == TS_F32 && convert_to_f32(dst, ds, src, sdt, ss, n)) ||
        (ddt == TS_F64 && convert_to_f64(dst, ds, src, sdt, ss, n)) ||
        (ddt == TS_I64 && convert_to_i64(dst, ds, src, sdt, ss, n)) ||
        (ddt == TS_BOOL && convert_to_bool(dst, ds, src, sdt, ss, n)) ||
        (sdt == TS_I64 && convert_from_i64(dst, ddt, ds, src, ss, n)))
        return;
    bool int_path = traits[ddt].kind != TS_KIND_FLOAT && traits[sdt].kind != TS_KIND_FLOAT;
    /* f16/bf16 -> float goes element-wise through float, exact */
    const char *s = src;
    char *d = dst;
    if (int_path) {
        for (int64_t i = 0; i < n; i++)
            ts_store_i64(d + i * ds * dsz, ddt, 0, ts_load_i64(s + i * ss * ssz, sdt, 0));
    } else if (traits[sdt].kind != TS_KIND_FLOAT && ddt == TS_F64) {
        for (int64_t i = 0; i < n; i++)
            ((double *)(d + i * ds * dsz))[0] = (double)ts_load_i64(s + i * ss * ssz, sdt, 0);
    } else {
        for (int64_t i = 0; i < n; i++)
            ts_store_f64(d + i * ds * dsz, ddt, 0, ts_load_f64(s + i * ss * ssz, sdt, 0));
    }
}
