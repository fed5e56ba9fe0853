/* safetensors_internal.h — what the .safetensors reader and writer share
 * (core/io/safetensors.c, safetensors_write.c; not installed): the dtype
 * table (spelling, bits, torsh dtype, the reference writer's sort rank),
 * a UTF-8 validator and the host byte-order check. */
#ifndef TORSH_SAFETENSORS_INTERNAL_H
#define TORSH_SAFETENSORS_INTERNAL_H

#include "torsh/dtype.h"

#include <stdint.h>
#include <string.h>

typedef struct st_dtype {
    const char *name;
    unsigned bits;
    ts_dtype dt;            /* TS_DTYPE_COUNT: known to safetensors, not to torsh */
    int rank;               /* the reference writer's sort key (larger first) */
} st_dtype;

/* Ranks follow the reference Dtype enum: larger = later = written first. */
static const st_dtype ST_DTYPES[] = {
    { "BOOL", 8, TS_BOOL, 0 },         { "F4", 4, TS_DTYPE_COUNT, 1 },
    { "F6_E2M3", 6, TS_DTYPE_COUNT, 2 }, { "F6_E3M2", 6, TS_DTYPE_COUNT, 3 },
    { "U8", 8, TS_U8, 4 },             { "I8", 8, TS_I8, 5 },
    { "F8_E5M2", 8, TS_DTYPE_COUNT, 6 }, { "F8_E4M3", 8, TS_DTYPE_COUNT, 7 },
    { "F8_E8M0", 8, TS_DTYPE_COUNT, 8 }, { "F8_E4M3FNUZ", 8, TS_DTYPE_COUNT, 8 },
    { "F8_E5M2FNUZ", 8, TS_DTYPE_COUNT, 8 },
    { "I16", 16, TS_I16, 9 },          { "U16", 16, TS_DTYPE_COUNT, 10 },
    { "F16", 16, TS_F16, 11 },         { "BF16", 16, TS_BF16, 12 },
    { "I32", 32, TS_I32, 13 },         { "U32", 32, TS_DTYPE_COUNT, 14 },
    { "F32", 32, TS_F32, 15 },         { "C64", 64, TS_DTYPE_COUNT, 16 },
    { "F64", 64, TS_F64, 17 },         { "I64", 64, TS_I64, 18 },
    { "U64", 64, TS_DTYPE_COUNT, 19 },
};
#define ST_N_DTYPES (sizeof ST_DTYPES / sizeof *ST_DTYPES)

static inline const st_dtype *st_dtype_by_name(const char *s)
{
    for (size_t i = 0; i < ST_N_DTYPES; i++)
        if (strcmp(ST_DTYPES[i].name, s) == 0) return &ST_DTYPES[i];
    return NULL;
}

static inline const st_dtype *st_dtype_of(ts_dtype dt)
{
    for (size_t i = 0; i < ST_N_DTYPES; i++)
        if (ST_DTYPES[i].dt == dt) return &ST_DTYPES[i];
    return NULL;
}

static inline bool st_host_is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* Length of the valid UTF-8 prefix of s[0..n) (n when all of it is valid):
 * no overlong forms, surrogates or code points past U+10FFFF. */
static inline size_t st_utf8_valid_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t len;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
        else return i;
        if (n - i < len) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return i;
        if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return i;
        i += len;
    }
    return n;
}

#endif
