/* crc32c.c — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) with a
 * slicing-by-8 table and, on x86-64 CPUs with SSE4.2, the crc32 instruction;
 * TFRecord's CRC mask; and the record framing of TensorBoard event files:
 * u64 length (LE), masked crc of those 8 bytes, the data, masked crc of the
 * data. Provides tb_crc32c, tb_crc_mask, tb_frame_record and the tb_buf
 * helpers. */
#include "tb_internal.h"

#include <stdlib.h>
#include <string.h>
#include <threads.h>

/* ---- byte buffer -------------------------------------------------------------- */

ts_status tb_buf_reserve(tb_buf *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len) return ts_fail(TS_ERR_MEMORY, "tb: buffer of %zu bytes is too large", extra);
    size_t need = b->len + extra;
    if (need <= b->cap) return TS_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) return ts_fail(TS_ERR_MEMORY, "tb: out of memory (%zu bytes)", cap);
    b->data = p;
    b->cap = cap;
    return TS_OK;
}

ts_status tb_buf_put(tb_buf *b, const void *p, size_t n)
{
    if (n == 0) return TS_OK;
    if (tb_buf_reserve(b, n)) return ts_last_status();
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return TS_OK;
}

void tb_buf_free(tb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- CRC-32C ---------------------------------------------------------------------- */

static uint32_t table[8][256];
static once_flag table_once = ONCE_FLAG_INIT;
static bool have_sse42;

static void init_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++) table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
    have_sse42 = ts_cpu()->sse42;
}

static uint32_t crc_table(uint32_t c, const uint8_t *p, size_t n)
{
    while (n && ((uintptr_t)p & 7)) { c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8); n--; }
    while (n >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint32_t lo = (uint32_t)x ^ c, hi = (uint32_t)(x >> 32);
        c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
            table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^ table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc_sse42(uint32_t c, const uint8_t *p, size_t n)
{
    uint64_t c64 = c;
    while (n && ((uintptr_t)p & 7)) { c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++); n--; }
    while (n >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        c64 = __builtin_ia32_crc32di(c64, x);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c64;
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t tb_crc32c(uint32_t crc, const void *data, size_t n)
{
    call_once(&table_once, init_table);
    uint32_t c = ~crc;
#if defined(__x86_64__)
    if (have_sse42) return ~crc_sse42(c, data, n);
#endif
    return ~crc_table(c, data, n);
}

uint32_t tb_crc_mask(uint32_t crc)
{
    return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

/* ---- records ------------------------------------------------------------------------ */

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

ts_status tb_frame_record(tb_buf *out, const void *data, size_t n)
{
    if (tb_buf_reserve(out, n + 16)) return ts_last_status();
    uint8_t head[12];
    for (int i = 0; i < 8; i++) head[i] = (uint8_t)((uint64_t)n >> (8 * i));
    put_le32(head + 8, tb_crc_mask(tb_crc32c(0, head, 8)));
    uint8_t tail[4];
    put_le32(tail, tb_crc_mask(tb_crc32c(0, data, n)));
    tb_buf_put(out, head, 12);
    tb_buf_put(out, data, n);
    tb_buf_put(out, tail, 4);
    return TS_OK;
}
