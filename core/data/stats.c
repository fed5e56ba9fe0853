/* stats.c — per-channel mean and standard deviation of a stack of images
 * (torsh/data.h: ts_data_channel_stats), the numbers Normalize wants.
 * u8 images (every image data set on disk) sum exactly in 64-bit
 * integers; other dtypes accumulate in f64. One pass, one thread, so the
 * result does not depend on the thread count. */
#include "data_internal.h"

#include <math.h>

/* Sums of x and x^2 over n values of a contiguous plane. */
static void plane_sums(const void *data, ts_dtype dt, int64_t first, int64_t n, double *sum, double *sumsq)
{
    if (dt == TS_U8) {
        const uint8_t *p = (const uint8_t *)data + first;
        uint64_t s = 0, q = 0;
        for (int64_t i = 0; i < n; i++) {
            s += p[i];
            q += (uint64_t)p[i] * p[i];
        }
        *sum += (double)s;
        *sumsq += (double)q;
    } else if (dt == TS_F32) {
        const float *p = (const float *)data + first;
        double s = 0, q = 0;
        for (int64_t i = 0; i < n; i++) {
            s += p[i];
            q += (double)p[i] * p[i];
        }
        *sum += s;
        *sumsq += q;
    } else {
        for (int64_t i = 0; i < n; i++) {
            double v = ts_load_f64(data, dt, first + i);
            *sum += v;
            *sumsq += v * v;
        }
    }
}

ts_status ts_data_channel_stats(const ts_tensor *images, double *mean, double *std, int max_channels, int *nchannels)
{
    char s[TS_SHAPE_STR_CAP];
    if (!images || !mean || !std || !nchannels) return ts_fail(TS_ERR_ARG, "channel_stats: NULL argument");
    if (ts_require_cpu("channel_stats", images)) return ts_last_status();
    if (images->ndim != 3 && images->ndim != 4)
        return ts_fail(TS_ERR_ARG, "channel_stats: needs images [N, H, W] or [N, C, H, W], got %s",
                       ts_shape_str(images->shape, images->ndim, s, sizeof s));
    int64_t n = images->shape[0], c = images->ndim == 4 ? images->shape[1] : 1;
    int64_t plane = images->shape[images->ndim - 1] * images->shape[images->ndim - 2];
    if (c > max_channels)
        return ts_fail(TS_ERR_ARG, "channel_stats: %lld channels, room for %d", (long long)c, max_channels);
    if (n * plane == 0) return ts_fail(TS_ERR_ARG, "channel_stats: no pixels in %s",
                                       ts_shape_str(images->shape, images->ndim, s, sizeof s));
    ts_tensor *t = ts_contiguous(images);
    if (!t) return ts_last_status();
    const void *data = ts_tensor_data(t);
    for (int64_t k = 0; k < c; k++) {
        double sum = 0, sumsq = 0;
        for (int64_t i = 0; i < n; i++) plane_sums(data, t->dtype, (i * c + k) * plane, plane, &sum, &sumsq);
        double count = (double)n * (double)plane, m = sum / count, var = sumsq / count - m * m;
        mean[k] = m;
        std[k] = sqrt(var > 0 ? var : 0);
    }
    *nchannels = (int)c;
    ts_tensor_release(t);
    return TS_OK;
}
