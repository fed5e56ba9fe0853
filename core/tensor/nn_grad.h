/* nn_grad.h — internal to the core, not installed: what the convolution and
 * pooling front-ends share with their backward kernels (conv_backward.c,
 * pool_backward.c, norm_backward.c, loss.c), and the backward kernels that
 * autograd (core/autograd/ag_nn.c) calls.
 *
 * Backward kernels take the saved forward operands and the output gradient
 * (all borrowed) and return NEW tensors in the compute dtype (f64 for f64
 * inputs, f32 otherwise) shaped like the operand they belong to; the caller
 * casts them back (ag_finish). A NULL out-pointer means "not wanted", and the
 * kernel skips that work. */
#ifndef TORSH_NN_GRAD_H
#define TORSH_NN_GRAD_H

#include "internal.h"

/* Hot loops of the backward kernels, compiled for AVX-512 and AVX2 as well
 * as the baseline (the right one is picked when the program loads). */
#if defined(__x86_64__) && !defined(__clang__)
#define TS_NN_SIMD __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TS_NN_SIMD
#endif
/* Small loops those call: always inlined, so each clone has its own. */
#define TS_NN_INLINE static inline __attribute__((always_inline))

/* ---- convolution geometry (conv.c) --------------------------------------------- */

typedef struct conv_geom {
    int64_t n, c, h, w;          /* input [N, C, H, W] */
    int64_t o, kh, kw;           /* weight [O, C/groups, KH, KW] */
    int64_t oh, ow;              /* output [N, O, OH, OW] */
    int64_t groups, cg, og;      /* channels per group, in and out */
    int64_t sh, sw, ph, pw, dh, dw;
} conv_geom;

/* Geometry of 4-D operands x [N,C,H,W] and w [O,Cg,KH,KW]. */
void ts_conv_geom_of(conv_geom *g, const ts_tensor *x, const ts_tensor *w, const ts_conv_params *p);
/* Unfolds output positions [p0, p0 + cols) of one image and group into
 * col [Cg*KH*KW, cols] (es: element size, 4 or 8); x points at the group's
 * first input channel. The _same form needs stride 1 and OW == W. */
void ts_im2col(const conv_geom *g, const char *x, int64_t p0, int64_t cols, char *col, size_t es);
void ts_im2col_same(const conv_geom *g, const char *x, int64_t p0, int64_t cols, char *col, size_t es);
/* Output positions per tile of patches (depends on shapes only). */
int64_t ts_conv_tile(int64_t kdim, int64_t ohw, int64_t images);
/* Around a ts_parallel_for whose bodies call BLAS: one BLAS thread per call. */
void ts_blas_single_begin(void);
void ts_blas_single_end(void);

/* ---- pooling window (pool.c) ------------------------------------------------------ */

/* Checks a (non-adaptive) pool window over the last nsp of the 2 entries and
 * computes the output sizes into out[2 - nsp .. 1]. */
ts_status ts_pool_window_check(const char *op, bool is_max, const ts_pool_params *p, int nsp, const int64_t *in,
                               int64_t *out);

/* ---- backward kernels ---------------------------------------------------------------- */

/* conv2d on batched operands x [N,C,H,W], w [O,C/g,KH,KW], gy [N,O,OH,OW]. */
ts_status ts_conv2d_backward(const ts_tensor *x, const ts_tensor *w, const ts_tensor *gy, const ts_conv_params *p,
                             ts_tensor **gx, ts_tensor **gw, ts_tensor **gb);

/* Max pooling forward that always produces the i64 indices (flat h*W+w in
 * the input plane): the same values and indices as ts_max_pool2d /
 * ts_max_pool1d / ts_adaptive_max_pool2d, with fast f32/f64 loops.
 * nsp 1 or 2; adaptive when out_size is given (then p is unused). */
ts_tensor *ts_max_pool_indices(const char *op, const ts_tensor *x, const ts_pool_params *p, int nsp,
                               const int64_t *out_size, ts_tensor **indices);
/* Gradient of a max pool: gy routed to the positions in `indices` of a
 * zero tensor shaped `in_shape` (in_ndim dims; the last nsp are spatial). */
ts_tensor *ts_max_pool_backward(const ts_tensor *gy, const ts_tensor *indices, const int64_t *in_shape, int in_ndim,
                                int nsp);
/* Gradient of avg_pool (p with nsp spatial dims, as ts_avg_pool2d/1d take
 * it) or, with out_size != NULL, of adaptive_avg_pool2d. */
ts_tensor *ts_avg_pool_backward(const ts_tensor *gy, const int64_t *in_shape, int in_ndim, const ts_pool_params *p,
                                int nsp, bool adaptive);

/* Batch norm: train mode uses the saved batch mean and invstd ([C], f64);
 * eval mode the running mean and var (then gmean/gvar may be asked for). */
ts_status ts_batch_norm_train_backward(const ts_tensor *gy, const ts_tensor *x, const ts_tensor *weight,
                                       const ts_tensor *save_mean, const ts_tensor *save_invstd,
                                       ts_tensor **gx, ts_tensor **gw, ts_tensor **gb);
ts_status ts_batch_norm_backward(const ts_tensor *gy, const ts_tensor *x, const ts_tensor *mean, const ts_tensor *var,
                                 const ts_tensor *weight, double eps, ts_tensor **gx, ts_tensor **gmean,
                                 ts_tensor **gvar, ts_tensor **gw, ts_tensor **gb);
ts_status ts_layer_norm_backward(const ts_tensor *gy, const ts_tensor *x, int norm_ndim, const ts_tensor *weight,
                                 double eps, ts_tensor **gx, ts_tensor **gw, ts_tensor **gb);
ts_status ts_group_norm_backward(const ts_tensor *gy, const ts_tensor *x, int64_t groups, const ts_tensor *weight,
                                 double eps, ts_tensor **gx, ts_tensor **gw, ts_tensor **gb);
/* y is the forward output; dim is 0-based. */
ts_tensor *ts_softmax_backward(const ts_tensor *gy, const ts_tensor *y, int dim, bool log);

/* Losses (loss.c): lse holds the forward's per-position logsumexp (f64). */
ts_tensor *ts_cross_entropy_lse(const ts_tensor *logits, const ts_tensor *target, const ts_tensor *weight,
                                int64_t ignore_index, double label_smoothing, ts_reduction reduction,
                                ts_tensor **lse);
ts_tensor *ts_cross_entropy_backward(const ts_tensor *gy, const ts_tensor *logits, const ts_tensor *target,
                                     const ts_tensor *weight, const ts_tensor *lse, int64_t ignore_index,
                                     double label_smoothing, ts_reduction reduction);
ts_tensor *ts_nll_loss_backward(const ts_tensor *gy, const ts_tensor *logp, const ts_tensor *target,
                                const ts_tensor *weight, int64_t ignore_index, ts_reduction reduction);

#endif
