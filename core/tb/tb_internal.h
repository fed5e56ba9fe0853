/* tb_internal.h — what the files of core/tb share: a growable byte buffer,
 * CRC-32C and TFRecord framing (crc32c.c), PNG and WAV encoding (png.c,
 * summary_basic.c), image layout conversion (image.c), numpy-style
 * histograms (histogram.c) and small file helpers (files.c). No protobuf
 * here (tb_proto.h has the writer's protobuf-facing parts), so
 * tests/c/test_tb.c can include it. Not installed. */
#ifndef TORSH_TB_INTERNAL_H
#define TORSH_TB_INTERNAL_H

#include "torsh/tb.h"

#include <stddef.h>
#include <stdint.h>

/* ---- byte buffer --------------------------------------------------------- */

typedef struct tb_buf {
    uint8_t *data;
    size_t len, cap;
} tb_buf;

/* Appends n bytes (grows the buffer); TS_ERR_MEMORY on failure. */
ts_status tb_buf_put(tb_buf *b, const void *p, size_t n);
ts_status tb_buf_reserve(tb_buf *b, size_t extra);
void tb_buf_free(tb_buf *b);

/* ---- CRC-32C and records -------------------------------------------------------- */

/* CRC-32C (Castagnoli) of n bytes, continuing from `crc` (0 to start):
 * tb_crc32c(0, "123456789", 9) == 0xE3069283. Uses SSE4.2 when present. */
uint32_t tb_crc32c(uint32_t crc, const void *p, size_t n);
/* TFRecord's masked CRC: rotate right by 15, add 0xA282EAD8. */
uint32_t tb_crc_mask(uint32_t crc);
/* Appends one framed record (length, masked crc of length, data, masked crc). */
ts_status tb_frame_record(tb_buf *out, const void *data, size_t n);

/* ---- encoders ----------------------------------------------------------------------- */

/* PNG of h rows of w pixels with `channels` bytes each (1 grey, 2 grey+alpha,
 * 3 RGB, 4 RGBA), 8 bits, deflated by zlib. Appends to out. */
ts_status tb_png_encode(const uint8_t *pixels, int64_t w, int64_t h, int channels, tb_buf *out);
/* RIFF WAV, mono 16-bit PCM. Appends to out. */
ts_status tb_wav_encode(const int16_t *samples, int64_t n, uint32_t sample_rate, tb_buf *out);

/* Image tensor -> malloc'ed HWC u8 pixels, 3 or 4 channels (see
 * ts_tb_add_image for the rules); a 4-dim batch becomes a grid `grid_cols`
 * images wide. `op` starts the error messages. */
ts_status tb_image_to_hwc(const char *op, const ts_tensor *img, const char *fmt, int grid_cols,
                          uint8_t **pixels, int64_t *h, int64_t *w, int *channels);
/* v * 255 (when scale) truncated to a byte in f32, clamped; NaN -> 0. */
uint8_t tb_to_byte(double v, bool scale);

/* ---- histograms ------------------------------------------------------------------- */

typedef struct tb_hist {
    double min, max, num, sum, sum_squares;
    double *limits;     /* right edges, n entries */
    double *counts;
    int64_t n;
} tb_hist;

/* Buckets n values (non-finite ones skipped) the way PyTorch's
 * make_histogram does; out->limits/counts are malloc'ed (tb_hist_free). */
ts_status tb_histogram(const double *values, int64_t n, const ts_tb_bins *bins, tb_hist *out);
void tb_hist_free(tb_hist *h);
/* numpy.histogram counts of v[0..n) over increasing edges e[0..ne) (ne-1
 * bins; values outside [e0, e_last] ignored, the last bin closed). uniform:
 * the edges are equally spaced and numpy's arithmetic bin rule is used. */
void tb_bin_counts(const double *v, int64_t n, const double *e, int64_t ne, bool uniform, double *counts,
                   const double *weights);

/* ---- files --------------------------------------------------------------------------- */

/* mkdir -p (0755); names the operation in the message. */
ts_status tb_mkdirs(const char *op, const char *path);
/* Writes path atomically: path.tmp-<pid>, write, fsync, rename. */
ts_status tb_write_file(const char *op, const char *path, const void *data, size_t n);
/* malloc'ed printf; NULL with a message on failure. */
char *tb_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Shortest "%.{p}g" (p <= 17, or <= 9 when single) that reads back the same. */
void tb_format_number(char *buf, size_t cap, double v, bool single);

/* Prefixes the current error message with a context ("add_image 'x'") and
 * returns code: "add_image 'x': <message>". */
ts_status tb_fail_context(ts_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Wall-clock seconds since the epoch. */
double tb_now(void);

#endif
