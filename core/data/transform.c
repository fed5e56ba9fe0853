/* transform.c — the per-sample image transforms of torsh/data.h (to float,
 * normalize, random crop with padding, random horizontal flip, random
 * erasing) and the counter-based randomness they draw from.
 *
 * Randomness: transform `t` of the pipeline, working on the sample at
 * position p of epoch e, reads Philox blocks under key
 * ts_data_key(seed, e, TS_DATA_STREAM_TRANSFORM) at counters
 *     ((p * TS_DATA_MAX_TRANSFORMS + t) << 24) + block
 * blocks [0, 2^20) give its uniforms (two per block, 53 bits each) and
 * blocks from 2^20 on its noise (one normal per block, Box-Muller). Nothing
 * else feeds a decision, so any thread may make any sample.
 *
 * The pipeline runs on a flat f32 buffer [C, H, W]; crops write into a
 * second buffer, everything else works in place. The internal interface
 * (ts_pipeline) is shared with loader.c through data_internal.h. */
#include "data_internal.h"
#include "torsh/random.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DRAW_BLOCK_BITS 24
#define NOISE_FIRST_BLOCK ((uint64_t)1 << 20)
#define NOISE_MAX (((int64_t)1 << DRAW_BLOCK_BITS) - (int64_t)NOISE_FIRST_BLOCK)
#define ERASE_ATTEMPTS 10

static const char *const TRANSFORM_NAMES[TS_TF_KINDS] = {
    "to_float", "normalize", "random_crop", "random_hflip", "random_erasing",
};

const char *ts_transform_name(ts_transform_kind kind)
{
    return (unsigned)kind < TS_TF_KINDS ? TRANSFORM_NAMES[kind] : NULL;
}

/* ---- randomness ---------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint64_t ts_data_key(uint64_t seed, int64_t epoch, int stream)
{
    return splitmix64(splitmix64(seed) ^ splitmix64((uint64_t)epoch * 4 + (uint64_t)stream));
}

ts_tensor *ts_data_shuffle(uint64_t seed, int64_t epoch, int64_t n)
{
    ts_generator g;
    ts_generator_seed(&g, ts_data_key(seed, epoch, TS_DATA_STREAM_SHUFFLE));
    return ts_randperm(&g, n);
}

/* Draws of one (sample, transform): uniform k comes from half k % 2 of block k / 2. */
typedef struct drawer {
    uint64_t key, base;
    int64_t cached;         /* block held in w, -1 when none */
    uint32_t w[4];
} drawer;

static void drawer_init(drawer *d, uint64_t key, int64_t position, int tindex)
{
    d->key = key;
    d->base = ((uint64_t)position * TS_DATA_MAX_TRANSFORMS + (uint64_t)tindex) << DRAW_BLOCK_BITS;
    d->cached = -1;
}

static uint64_t block_word(const uint32_t *w, int half)
{
    return (uint64_t)w[2 * half] | (uint64_t)w[2 * half + 1] << 32;
}

static double draw_uniform(drawer *d, int k)
{
    int64_t b = k >> 1;
    if (b != d->cached) {
        ts_philox4x32(d->key, d->base + (uint64_t)b, d->w);
        d->cached = b;
    }
    return (double)(block_word(d->w, k & 1) >> 11) * 0x1p-53;
}

/* Noise value k: a standard normal from its own block. */
static float draw_normal(const drawer *d, int64_t k)
{
    uint32_t w[4];
    ts_philox4x32(d->key, d->base + NOISE_FIRST_BLOCK + (uint64_t)k, w);
    double u1 = (double)((block_word(w, 0) >> 11) + 1) * 0x1p-53;
    double u2 = (double)(block_word(w, 1) >> 11) * 0x1p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

void ts_data_uniforms(uint64_t seed, int64_t epoch, int64_t position, int tindex, int first, int n, double *out)
{
    drawer d;
    drawer_init(&d, ts_data_key(seed, epoch, TS_DATA_STREAM_TRANSFORM), position, tindex);
    for (int i = 0; i < n; i++) out[i] = draw_uniform(&d, first + i);
}

ts_tensor *ts_data_noise(uint64_t seed, int64_t epoch, int64_t position, int tindex, const int64_t *shape, int ndim)
{
    if (tindex < 0 || tindex >= TS_DATA_MAX_TRANSFORMS)
        return ts_fail_null(TS_ERR_ARG, "data_noise: transform index %d out of range 0..%d", tindex,
                            TS_DATA_MAX_TRANSFORMS - 1);
    ts_tensor *t = ts_tensor_new(shape, ndim, TS_F32);
    if (!t) return NULL;
    int64_t n = ts_tensor_numel(t);
    if (n > NOISE_MAX) {
        ts_tensor_release(t);
        return ts_fail_null(TS_ERR_ARG, "data_noise: %lld values asked, at most %lld per sample", (long long)n,
                            (long long)NOISE_MAX);
    }
    drawer d;
    drawer_init(&d, ts_data_key(seed, epoch, TS_DATA_STREAM_TRANSFORM), position, tindex);
    float *o = ts_tensor_data(t);
    for (int64_t k = 0; k < n; k++) o[k] = draw_normal(&d, k);
    return t;
}

/* ---- checking a pipeline ----------------------------------------------------------------- */

static ts_status bad(int i, const ts_transform *t, const char *fmt_detail, const char *shape)
{
    return ts_fail(TS_ERR_ARG, "transform %d (%s): %s%s%s", i + 1, ts_transform_name(t->kind), fmt_detail,
                   shape ? ", sample shape " : "", shape ? shape : "");
}

static bool finite_in(double v, double lo, double hi) { return isfinite(v) && v >= lo && v <= hi; }

/* Checks step i against the current geometry and updates it. */
static ts_status check_step(int i, const ts_transform *t, ts_pipeline *pl)
{
    char s[TS_SHAPE_STR_CAP];
    ts_shape_str(pl->out_shape, pl->out_ndim, s, sizeof s);
    bool image = pl->out_ndim == 2 || pl->out_ndim == 3;
    int64_t *h = &pl->out_shape[pl->out_ndim - 2], *w = &pl->out_shape[pl->out_ndim - 1];
    int64_t c = pl->out_ndim == 3 ? pl->out_shape[0] : 1;
    if (t->kind == TS_TF_TO_FLOAT) {
        if (!isfinite(t->divisor)) return bad(i, t, "divisor must be finite", NULL);
        if (t->add_channel && pl->out_ndim == 2) {
            pl->out_shape[2] = pl->out_shape[1];
            pl->out_shape[1] = pl->out_shape[0];
            pl->out_shape[0] = 1;
            pl->out_ndim = 3;
        }
        return TS_OK;
    }
    if (!image) return bad(i, t, "needs [C, H, W] or [H, W] samples", s);
    switch (t->kind) {
    case TS_TF_NORMALIZE:
        if (t->nchannels < 1 || t->nchannels > TS_DATA_MAX_CHANNELS)
            return bad(i, t, "needs 1 to 16 mean/std values", NULL);
        if (t->nchannels != 1 && t->nchannels != c) {
            char msg[96];
            snprintf(msg, sizeof msg, "has %d mean/std values for %lld channels", t->nchannels, (long long)c);
            return bad(i, t, msg, s);
        }
        for (int k = 0; k < t->nchannels; k++)
            if (!isfinite(t->mean[k]) || !isfinite(t->std[k]) || t->std[k] == 0)
                return bad(i, t, "mean must be finite and std finite and non-zero", NULL);
        return TS_OK;
    case TS_TF_RANDOM_CROP:
        if (t->size_h < 1 || t->size_w < 1 || t->padding < 0 || t->padding > (1 << 20) || !isfinite(t->fill))
            return bad(i, t, "needs a size >= 1, padding >= 0 and a finite fill", NULL);
        if (*h + 2 * t->padding < t->size_h || *w + 2 * t->padding < t->size_w) {
            char msg[128];
            snprintf(msg, sizeof msg, "crop %lldx%lld does not fit the padded %lldx%lld image", (long long)t->size_h,
                     (long long)t->size_w, (long long)(*h + 2 * t->padding), (long long)(*w + 2 * t->padding));
            return bad(i, t, msg, s);
        }
        *h = t->size_h;
        *w = t->size_w;
        pl->has_crop = true;
        return TS_OK;
    case TS_TF_RANDOM_HFLIP:
        if (!finite_in(t->p, 0, 1)) return bad(i, t, "p must be in [0, 1]", NULL);
        return TS_OK;
    case TS_TF_RANDOM_ERASING:
        if (!finite_in(t->p, 0, 1)) return bad(i, t, "p must be in [0, 1]", NULL);
        if (!finite_in(t->scale_lo, 0, 1) || !finite_in(t->scale_hi, t->scale_lo, 1))
            return bad(i, t, "scale must be (lo, hi) with 0 <= lo <= hi <= 1", NULL);
        if (!(t->ratio_lo > 0) || !finite_in(t->ratio_hi, t->ratio_lo, 1e9))
            return bad(i, t, "ratio must be (lo, hi) with 0 < lo <= hi", NULL);
        if (!t->random_value && !isfinite(t->value)) return bad(i, t, "value must be finite", NULL);
        if (t->random_value && c * *h * *w > NOISE_MAX) return bad(i, t, "image too large for random values", s);
        return TS_OK;
    default:
        return ts_fail(TS_ERR_ARG, "transform %d: unknown kind %d", i + 1, (int)t->kind);
    }
}

ts_status ts_pipeline_init(ts_pipeline *pl, const ts_transform *tf, int ntf, const int64_t *shape, int ndim)
{
    memset(pl, 0, sizeof *pl);
    if (ntf < 0 || ntf > TS_DATA_MAX_TRANSFORMS)
        return ts_fail(TS_ERR_ARG, "transforms: at most %d steps, got %d", TS_DATA_MAX_TRANSFORMS, ntf);
    if (ntf > 0 && !tf) return ts_fail(TS_ERR_ARG, "transforms: NULL list");
    if (ndim < 0 || ndim > TS_MAX_DIMS - 1) return ts_fail(TS_ERR_ARG, "transforms: samples have %d dims", ndim);
    if (ntf) memcpy(pl->tf, tf, (size_t)ntf * sizeof *tf);
    pl->ntf = ntf;
    pl->in_ndim = pl->out_ndim = ndim;
    memcpy(pl->in_shape, shape, (size_t)ndim * sizeof *shape);
    memcpy(pl->out_shape, shape, (size_t)ndim * sizeof *shape);
    pl->in_numel = 1;
    for (int d = 0; d < ndim; d++) pl->in_numel *= shape[d];
    pl->max_numel = pl->in_numel;
    for (int i = 0; i < ntf; i++) {
        if (check_step(i, &pl->tf[i], pl)) return ts_last_status();
        if (pl->tf[i].kind == TS_TF_RANDOM_CROP) pl->last_crop = i;
        int64_t n = 1;
        for (int d = 0; d < pl->out_ndim; d++) n *= pl->out_shape[d];
        if (n > pl->max_numel) pl->max_numel = n;
    }
    pl->out_numel = 1;
    for (int d = 0; d < pl->out_ndim; d++) pl->out_numel *= pl->out_shape[d];
    return TS_OK;
}

ts_status ts_transform_check(const ts_transform *tf, int ntf, const int64_t *shape, int ndim, int64_t *out_shape,
                             int *out_ndim)
{
    ts_pipeline pl;
    if (ts_pipeline_init(&pl, tf, ntf, shape, ndim)) return ts_last_status();
    if (out_shape) memcpy(out_shape, pl.out_shape, (size_t)pl.out_ndim * sizeof *out_shape);
    if (out_ndim) *out_ndim = pl.out_ndim;
    return TS_OK;
}

/* ---- the steps ------------------------------------------------------------------------------ */

/* The geometry of the buffer as it goes through the pipeline. */
typedef struct img {
    float *data;
    int64_t c, h, w;
} img;

static void to_float(img *im, const ts_transform *t)
{
    float d = t->divisor == 0 ? 1.0f : (float)t->divisor;
    int64_t n = im->c * im->h * im->w;
    for (int64_t i = 0; i < n; i++) im->data[i] = im->data[i] / d;
}

static void normalize(img *im, const ts_transform *t)
{
    int64_t plane = im->h * im->w;
    for (int64_t c = 0; c < im->c; c++) {
        int k = t->nchannels == 1 ? 0 : (int)c;
        float m = (float)t->mean[k], s = (float)t->std[k];
        float *p = im->data + c * plane;
        for (int64_t i = 0; i < plane; i++) p[i] = (p[i] - m) / s;
    }
}

/* Copies the window at (top, left) of the padded image into dst. */
static void random_crop(img *im, const ts_transform *t, drawer *d, float *dst)
{
    int64_t pad = t->padding, ch = t->size_h, cw = t->size_w;
    int64_t top = (int64_t)floor(draw_uniform(d, 0) * (double)(im->h + 2 * pad - ch + 1));
    int64_t left = (int64_t)floor(draw_uniform(d, 1) * (double)(im->w + 2 * pad - cw + 1));
    float fill = (float)t->fill;
    for (int64_t c = 0; c < im->c; c++) {
        for (int64_t y = 0; y < ch; y++) {
            int64_t sy = y + top - pad;
            float *o = dst + (c * ch + y) * cw;
            if (sy < 0 || sy >= im->h) {
                for (int64_t x = 0; x < cw; x++) o[x] = fill;
                continue;
            }
            const float *row = im->data + (c * im->h + sy) * im->w;
            for (int64_t x = 0; x < cw; x++) {
                int64_t sx = x + left - pad;
                o[x] = sx >= 0 && sx < im->w ? row[sx] : fill;
            }
        }
    }
    im->data = dst;
    im->h = ch;
    im->w = cw;
}

static void random_hflip(img *im, const ts_transform *t, drawer *d)
{
    if (!(draw_uniform(d, 0) < t->p)) return;
    for (int64_t r = 0; r < im->c * im->h; r++) {
        float *row = im->data + r * im->w;
        for (int64_t a = 0, b = im->w - 1; a < b; a++, b--) {
            float tmp = row[a];
            row[a] = row[b];
            row[b] = tmp;
        }
    }
}

/* torchvision's RandomErasing.get_params, draw by draw: uniform 0 decides,
 * attempt a uses uniforms 1 + 4a .. 4 + 4a (scale, log-ratio, top, left). */
static void random_erasing(img *im, const ts_transform *t, drawer *d)
{
    if (!(draw_uniform(d, 0) < t->p)) return;
    double area = (double)(im->h * im->w), lr0 = log(t->ratio_lo), lr1 = log(t->ratio_hi);
    for (int a = 0; a < ERASE_ATTEMPTS; a++) {
        double target = area * (t->scale_lo + (t->scale_hi - t->scale_lo) * draw_uniform(d, 1 + 4 * a));
        double ratio = exp(lr0 + (lr1 - lr0) * draw_uniform(d, 2 + 4 * a));
        int64_t eh = (int64_t)rint(sqrt(target * ratio)), ew = (int64_t)rint(sqrt(target / ratio));
        if (!(eh < im->h && ew < im->w)) continue;
        int64_t top = (int64_t)floor(draw_uniform(d, 3 + 4 * a) * (double)(im->h - eh + 1));
        int64_t left = (int64_t)floor(draw_uniform(d, 4 + 4 * a) * (double)(im->w - ew + 1));
        int64_t k = 0;
        for (int64_t c = 0; c < im->c; c++)
            for (int64_t y = top; y < top + eh; y++) {
                float *row = im->data + (c * im->h + y) * im->w;
                for (int64_t x = left; x < left + ew; x++) row[x] = t->random_value ? draw_normal(d, k++) : (float)t->value;
            }
        return;
    }
}

/* src -> f32, with the common u8 case inline (ts_convert's generic path
 * goes element by element through f64). */
static void load_f32(float *dst, const void *src, ts_dtype sdt, int64_t n)
{
    if (sdt == TS_U8) {
        const uint8_t *p = src;
        for (int64_t i = 0; i < n; i++) dst[i] = (float)p[i];
    } else {
        ts_convert(dst, TS_F32, 1, src, sdt, 1, n);
    }
}

void ts_pipeline_run(const ts_pipeline *pl, const void *src, ts_dtype sdt, float *out, float *scratch, uint64_t key,
                     int64_t position)
{
    float *a = scratch, *b = scratch ? scratch + pl->max_numel : NULL;
    img im = { pl->has_crop ? a : out, 1, 1, pl->in_numel };
    if (pl->in_ndim == 2 || pl->in_ndim == 3) {
        im.h = pl->in_shape[pl->in_ndim - 2];
        im.w = pl->in_shape[pl->in_ndim - 1];
        im.c = pl->in_ndim == 3 ? pl->in_shape[0] : 1;
    }
    load_f32(im.data, src, sdt, pl->in_numel);
    for (int i = 0; i < pl->ntf; i++) {
        const ts_transform *t = &pl->tf[i];
        drawer d;
        drawer_init(&d, key, position, i);
        switch (t->kind) {
        case TS_TF_TO_FLOAT: to_float(&im, t); break;
        case TS_TF_NORMALIZE: normalize(&im, t); break;
        case TS_TF_RANDOM_CROP: random_crop(&im, t, &d, i == pl->last_crop ? out : im.data == a ? b : a); break;
        case TS_TF_RANDOM_HFLIP: random_hflip(&im, t, &d); break;
        case TS_TF_RANDOM_ERASING: random_erasing(&im, t, &d); break;
        default: break;
        }
    }
}

ts_tensor *ts_transform_apply(const ts_tensor *sample, const ts_transform *tf, int ntf, uint64_t seed, int64_t epoch,
                              int64_t position)
{
    if (!sample) return ts_fail_null(TS_ERR_ARG, "transform: sample is NULL");
    if (ts_require_cpu("transform", sample)) return NULL;
    ts_pipeline pl;
    if (ts_pipeline_init(&pl, tf, ntf, sample->shape, sample->ndim)) return NULL;
    ts_tensor *src = ts_contiguous(sample);
    ts_tensor *out = src ? ts_tensor_new(pl.out_shape, pl.out_ndim, TS_F32) : NULL;
    float *scratch = out && pl.has_crop ? malloc(2 * (size_t)pl.max_numel * sizeof(float) + 1) : NULL;
    if (out && (!pl.has_crop || scratch))
        ts_pipeline_run(&pl, ts_tensor_data(src), src->dtype, ts_tensor_data(out), scratch,
                        ts_data_key(seed, epoch, TS_DATA_STREAM_TRANSFORM), position);
    else if (out) {
        ts_tensor_release(out);
        out = ts_fail_null(TS_ERR_MEMORY, "transform: out of memory");
    }
    free(scratch);
    ts_tensor_release(src);
    return out;
}
