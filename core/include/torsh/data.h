/* torsh/data.h — the batch producer behind torsh.data.DataLoader: cuts an
 * in-memory dataset into batches, runs an image transform pipeline on each
 * sample, and does it ahead of time on background threads.
 *
 *     ts_transform tf[2] = {
 *         { .kind = TS_TF_TO_FLOAT, .divisor = 255, .add_channel = true },
 *         { .kind = TS_TF_NORMALIZE, .nchannels = 1, .mean = {0.2860}, .std = {0.3530} },
 *     };
 *     ts_tensor *order = ts_data_shuffle(seed, epoch, n);        // this epoch's order
 *     ts_loader_options o = { .batch_size = 128, .num_workers = 1, .prefetch = 2,
 *                             .seed = seed, .epoch = epoch, .transforms = tf, .ntransforms = 2 };
 *     ts_loader *ld = ts_loader_new(images, labels, order, &o); // u8 [N,28,28], i64 [N]
 *     ts_tensor *x, *y;
 *     while (ts_loader_next(ld, &x, &y) == TS_OK && x) {        // x f32 [B,1,28,28], y i64 [B]
 *         ...
 *         ts_tensor_release(x); ts_tensor_release(y);
 *     }
 *     ts_loader_free(ld);                                       // joins the threads
 *
 * Determinism: batch k holds the samples at positions k*B .. k*B+B-1 of the
 * order, and every random decision about the sample at position p of epoch
 * e (crop offsets, flips, erased boxes and their noise) is drawn from Philox
 * under key ts_data_key(seed, e, TS_DATA_STREAM_TRANSFORM) at counters laid
 * out from (p, transform index) — never from a shared generator. So a batch
 * is the same bits whatever the worker count, the prefetch depth, or whether
 * the loader started at batch 0 or resumed at batch k.
 *
 * Threads: with num_workers > 0 the loader owns that many pthreads which
 * make batches into a bounded queue of `prefetch` batches, handed out in
 * order; with 0 each batch is made on the caller's thread when asked.
 * ts_loader_free stops and joins the workers at any point, mid-epoch too.
 * A failure while making a batch (out of memory) is reported by the
 * ts_loader_next call that would have returned it.
 *
 * Ownership: samples, labels and order are borrowed (the loader keeps its
 * own references, or a contiguous copy); every tensor returned is a new
 * reference.
 */
#ifndef TORSH_DATA_H
#define TORSH_DATA_H

#include "torsh/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TS_DATA_MAX_TRANSFORMS 16
#define TS_DATA_MAX_CHANNELS 16

/* Streams of randomness under one (seed, epoch). */
enum { TS_DATA_STREAM_SHUFFLE = 0, TS_DATA_STREAM_TRANSFORM = 1 };

/* The steps of a transform pipeline. Each works on one sample held as f32
 * [C, H, W] ([H, W] is taken as one channel); the sample is converted to
 * f32 (by value, like t:to("f32")) before the first step. */
typedef enum ts_transform_kind {
    TS_TF_TO_FLOAT,       /* x / divisor; add_channel turns [H,W] into [1,H,W] (torchvision's ToTensor) */
    TS_TF_NORMALIZE,      /* (x - mean[c]) / std[c]; nchannels 1 applies to every channel */
    TS_TF_RANDOM_CROP,    /* pad each side by `padding` with `fill`, take a random size_h x size_w window */
    TS_TF_RANDOM_HFLIP,   /* mirror along W with probability p */
    TS_TF_RANDOM_ERASING, /* torchvision's RandomErasing: with probability p a box of relative area in
                             [scale_lo, scale_hi] and aspect ratio in [ratio_lo, ratio_hi] (log-uniform)
                             becomes `value`, or standard-normal noise when random_value */
    TS_TF_KINDS
} ts_transform_kind;

typedef struct ts_transform {
    ts_transform_kind kind;
    double divisor;                          /* TO_FLOAT (0 means 1) */
    bool add_channel;                        /* TO_FLOAT */
    int nchannels;                           /* NORMALIZE: entries used in mean/std */
    double mean[TS_DATA_MAX_CHANNELS], std[TS_DATA_MAX_CHANNELS];
    int64_t size_h, size_w, padding;         /* RANDOM_CROP */
    double fill;                             /* RANDOM_CROP: value of the padding */
    double p;                                /* RANDOM_HFLIP, RANDOM_ERASING */
    double scale_lo, scale_hi, ratio_lo, ratio_hi, value;   /* RANDOM_ERASING */
    bool random_value;                       /* RANDOM_ERASING */
} ts_transform;

/* Name of a transform kind ("to_float", "normalize", "random_crop",
 * "random_hflip", "random_erasing"); NULL when out of range. */
const char *ts_transform_name(ts_transform_kind kind);

/* ---- reproducible randomness ----------------------------------------------------- */

/* The Philox key of one stream of one epoch: a hash of (seed, epoch, stream). */
uint64_t ts_data_key(uint64_t seed, int64_t epoch, int stream);
/* The order of epoch `epoch`: a permutation of 0..n-1 (i64) drawn by
 * ts_randperm from a generator keyed ts_data_key(seed, epoch, SHUFFLE). */
ts_tensor *ts_data_shuffle(uint64_t seed, int64_t epoch, int64_t n);
/* The uniforms in [0, 1) that transform `tindex` of a pipeline uses for the
 * sample at (0-based) `position` of epoch `epoch`: out[0..n) for draw
 * numbers first..first+n-1 (n + first <= 2^21). */
void ts_data_uniforms(uint64_t seed, int64_t epoch, int64_t position, int tindex,
                      int first, int n, double *out);
/* The standard-normal noise (f32, the given shape) that RandomErasing with
 * random_value writes into its box for that sample and transform. */
ts_tensor *ts_data_noise(uint64_t seed, int64_t epoch, int64_t position, int tindex,
                         const int64_t *shape, int ndim);

/* ---- transforms ----------------------------------------------------------------------- */

/* Checks a pipeline against the shape of one sample; on success writes the
 * output shape (f32) to out_shape / *out_ndim (either may be NULL). */
ts_status ts_transform_check(const ts_transform *tf, int ntf, const int64_t *shape, int ndim,
                             int64_t *out_shape, int *out_ndim);
/* Runs the pipeline on one sample (any dtype, CPU) as the loader would for
 * position `position` of epoch `epoch`. Returns a new f32 tensor. */
ts_tensor *ts_transform_apply(const ts_tensor *sample, const ts_transform *tf, int ntf,
                              uint64_t seed, int64_t epoch, int64_t position);

/* ---- the loader ------------------------------------------------------------------------- */

typedef struct ts_loader_options {
    int64_t batch_size;       /* >= 1 */
    bool drop_last;           /* drop a last, smaller batch */
    int num_workers;          /* background threads (0: make batches on the caller's thread) */
    int prefetch;             /* batches made ahead; <= 0 picks max(2, 2 * num_workers) */
    uint64_t seed;
    int64_t epoch;
    int64_t start_batch;      /* resume: the first batch returned (0-based) */
    const ts_transform *transforms;   /* copied; may be NULL when ntransforms is 0 */
    int ntransforms;
} ts_loader_options;

typedef struct ts_loader ts_loader;

/* samples: [N, ...] any dtype (CPU). labels: [N, ...] or NULL; integer and
 * bool labels come out as i64, floating ones as f32. order: 1-D integer
 * tensor of positions in 0..N-1 (repeats allowed), or NULL for 0..N-1.
 * Returns a new loader (threads started) or NULL. */
ts_loader *ts_loader_new(const ts_tensor *samples, const ts_tensor *labels, const ts_tensor *order,
                         const ts_loader_options *opt);
/* The next batch: *x f32 [B, sample shape after the transforms], *y [B, ...]
 * (NULL without labels). At the end of the epoch returns TS_OK with *x and
 * *y NULL. On failure returns the error (the loader goes on to the next
 * batch on the next call). */
ts_status ts_loader_next(ts_loader *ld, ts_tensor **x, ts_tensor **y);
/* Batches returned so far, counting the skipped start_batch ones. */
int64_t ts_loader_position(const ts_loader *ld);
/* Batches in the whole epoch (drop_last taken into account). */
int64_t ts_loader_num_batches(const ts_loader *ld);
/* Stops and joins the workers, releases everything. NULL is fine. */
void ts_loader_free(ts_loader *ld);

/* ---- statistics --------------------------------------------------------------------------- */

/* Per-channel mean and population standard deviation of a stack of images:
 * [N, H, W] (one channel) or [N, C, H, W]. Writes *nchannels entries (at
 * most max_channels) to mean and std, computed in f64 (exact sums for u8). */
ts_status ts_data_channel_stats(const ts_tensor *images, double *mean, double *std, int max_channels,
                                int *nchannels);

#ifdef __cplusplus
}
#endif
#endif
