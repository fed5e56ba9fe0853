/* png.c — a minimal PNG encoder for TensorBoard images and projector
 * sprites: 8-bit grey / grey+alpha / RGB / RGBA, no interlace, every row
 * with filter byte 0, the rows deflated by zlib into IDAT chunks, each
 * chunk with its CRC-32. Provides tb_png_encode. */
#include "tb_internal.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static ts_status put_be32(tb_buf *b, uint32_t v)
{
    uint8_t p[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return tb_buf_put(b, p, 4);
}

/* length, type, data, crc32(type + data) */
static ts_status put_chunk(tb_buf *b, const char type[4], const uint8_t *data, size_t n)
{
    uLong crc = crc32(0L, (const Bytef *)type, 4);
    if (n) crc = crc32_z(crc, data, n);
    if (put_be32(b, (uint32_t)n) || tb_buf_put(b, type, 4) || tb_buf_put(b, data, n) || put_be32(b, (uint32_t)crc))
        return ts_last_status();
    return TS_OK;
}

ts_status tb_png_encode(const uint8_t *pixels, int64_t w, int64_t h, int channels, tb_buf *out)
{
    static const uint8_t color_type[5] = {0, 0, 4, 2, 6};
    if (w <= 0 || h <= 0 || w > 0x7fffffff || h > 0x7fffffff || channels < 1 || channels > 4)
        return ts_fail(TS_ERR_ARG, "png: bad image %lld x %lld x %d", (long long)h, (long long)w, channels);
    size_t row = (size_t)w * (size_t)channels;
    if ((size_t)h > ((size_t)1 << 40) / (row + 1)) return ts_fail(TS_ERR_ARG, "png: image %lld x %lld is too large", (long long)h, (long long)w);
    size_t raw_len = (row + 1) * (size_t)h;
    uint8_t *raw = malloc(raw_len);
    if (!raw) return ts_fail(TS_ERR_MEMORY, "png: out of memory (%zu bytes)", raw_len);
    for (int64_t y = 0; y < h; y++) {
        uint8_t *r = raw + (size_t)y * (row + 1);
        r[0] = 0;   /* filter: none */
        memcpy(r + 1, pixels + (size_t)y * row, row);
    }
    uLongf zlen = compressBound(raw_len);
    uint8_t *z = malloc(zlen);
    if (!z) { free(raw); return ts_fail(TS_ERR_MEMORY, "png: out of memory (%lu bytes)", (unsigned long)zlen); }
    int zr = compress2(z, &zlen, raw, raw_len, 6);
    free(raw);
    if (zr != Z_OK) { free(z); return ts_fail(TS_ERR_INTERNAL, "png: zlib compress failed (%d)", zr); }

    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t ihdr[13];
    for (int i = 0; i < 4; i++) {
        ihdr[i] = (uint8_t)((uint32_t)w >> (24 - 8 * i));
        ihdr[4 + i] = (uint8_t)((uint32_t)h >> (24 - 8 * i));
    }
    ihdr[8] = 8;                        /* bit depth */
    ihdr[9] = color_type[channels];
    ihdr[10] = ihdr[11] = ihdr[12] = 0; /* deflate, adaptive filtering, no interlace */
    ts_status st = tb_buf_reserve(out, zlen + 128);
    if (!st) st = tb_buf_put(out, sig, 8);
    if (!st) st = put_chunk(out, "IHDR", ihdr, 13);
    const size_t max_chunk = (size_t)1 << 30;
    for (size_t off = 0; !st && off < zlen; off += max_chunk)
        st = put_chunk(out, "IDAT", z + off, zlen - off < max_chunk ? zlen - off : max_chunk);
    if (!st) st = put_chunk(out, "IEND", NULL, 0);
    free(z);
    return st;
}
