/* torsh/dtype.h — the element types and the conversions between them.
 *
 * Each dtype has one row in a traits table (name, size, kind). Conversion
 * between any two dtypes goes through ts_convert(), which handles f16 and
 * bf16 with round-to-nearest-even (F16C / AVX512-BF16 instructions where the
 * CPU has them). Float -> integer conversion truncates toward zero like C
 * (and PyTorch); NaN -> integer gives 0; anything -> bool is "!= 0".
 */
#ifndef TORSH_DTYPE_H
#define TORSH_DTYPE_H

#include "torsh/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ts_dtype {
    TS_F32 = 0, TS_F64, TS_F16, TS_BF16,
    TS_I8, TS_U8, TS_I16, TS_I32, TS_I64, TS_BOOL,
    TS_DTYPE_COUNT
} ts_dtype;

typedef enum ts_dtype_kind { TS_KIND_FLOAT, TS_KIND_INT, TS_KIND_BOOL } ts_dtype_kind;

typedef struct ts_dtype_traits {
    const char *name;   /* "f32", "bf16", ... (the names Lua uses) */
    const char *torch;  /* PyTorch's name: "float32", "bfloat16", ... */
    size_t size;        /* bytes per element */
    ts_dtype_kind kind;
    bool is_signed;
} ts_dtype_traits;

const ts_dtype_traits *ts_dtype_info(ts_dtype dt);
const char *ts_dtype_name(ts_dtype dt);
static inline size_t ts_dtype_size(ts_dtype dt) { return ts_dtype_info(dt)->size; }
static inline bool ts_dtype_is_float(ts_dtype dt) { return ts_dtype_info(dt)->kind == TS_KIND_FLOAT; }
/* Parses "f32", "float32", "float", "bfloat16", "int64", "long", ... Returns
 * TS_ERR_ARG (with a message listing the names) when unknown. */
ts_status ts_dtype_parse(const char *name, ts_dtype *out);
/* Type promotion of two operands, following PyTorch's category rules:
 * bool < integers < floating; within a category the wider type wins;
 * u8 with a signed integer gives i16 (or the wider); f16 with bf16 gives f32. */
ts_dtype ts_dtype_promote(ts_dtype a, ts_dtype b);

/* Converts n elements from (src, sdt, sstride) to (dst, ddt, dstride);
 * strides are in elements. */
void ts_convert(void *dst, ts_dtype ddt, int64_t dstride,
                const void *src, ts_dtype sdt, int64_t sstride, int64_t n);

/* Scalar helpers. */
uint16_t ts_f32_to_f16(float f);
float ts_f16_to_f32(uint16_t h);
uint16_t ts_f32_to_bf16(float f);
float ts_bf16_to_f32(uint16_t h);
/* Reads element i of a contiguous buffer as double / writes one. */
double ts_load_f64(const void *p, ts_dtype dt, int64_t i);
void ts_store_f64(void *p, ts_dtype dt, int64_t i, double v);
int64_t ts_load_i64(const void *p, ts_dtype dt, int64_t i);
void ts_store_i64(void *p, ts_dtype dt, int64_t i, int64_t v);

#ifdef __cplusplus
}
#endif
#endif
