/* ops_nn.h — internal to core/graph: what the files of the nn op family
 * share. ops_nn.c: elementwise math and activations, the family's
 * registration (ts_graph_register_nn_ops) and the sliding-window geometry;
 * ops_nn_conv.c: Conv, ConvTranspose, FusedConv, Gemm, MatMul;
 * ops_nn_pool.c: pooling and normalisation; ops_nn_wino.c: the Winograd
 * 3x3 convolution and its op ai.torsh::WinogradConv; ops_nn_einsum.c:
 * Einsum; ops_nn_fuse.c: the Conv+BatchNormalization folding,
 * Conv+activation fusion and Winograd prepacking passes.
 *
 * FLOPs conventions of the whole family (a multiply-add counts 2):
 *   Conv / ConvTranspose / FusedConv / WinogradConv
 *                        2 * N * Cout * prod(out spatial) * Cin/group * prod(kernel)
 *                        (ConvTranspose: 2 * numel(X) * Cout/group * prod(kernel));
 *                        the bias add, FusedConv's Z add and its activation
 *                        are NOT counted (torchvision/fvcore count MACs only),
 *                        and WinogradConv reports the direct convolution's work;
 *   Gemm / MatMul        2 * M * N * K per (broadcast) batch; alpha, beta and C not counted;
 *   Einsum               2 * (product of all label sizes) per pairwise contraction;
 *   elementwise          numel(output) per op (variadic Sum/Min/Max: (inputs - 1) * numel,
 *                        Mean: inputs * numel);
 *   Softmax/LogSoftmax   3 * numel (exp, sum, scale; the max pass is free);
 *   BatchNormalization   2 * numel (one multiply-add with a precomputed scale/shift);
 *   Instance/LayerNorm   8 * numel (mean 1, variance 3, normalise 2, affine 2);
 *   MaxPool / AveragePool numel(output) * prod(kernel) (one compare or add per tap);
 *   GlobalAverage/MaxPool numel(input).
 * ResNet-18 (torchvision, 224x224, batch 1) comes to 3.633 GFLOPs: 3.628 of
 * convolutions and Gemm (torchvision's 1.81 GMACs) plus Relu, Add, MaxPool.
 *
 * Ownership: helpers borrow their arguments unless they say they "take" one.
 */
#ifndef TORSH_GRAPH_OPS_NN_H
#define TORSH_GRAPH_OPS_NN_H

#include "ops.h"
#include "internal.h"   /* core/tensor's: ts_contiguous_as, ts_narrow_dtype, grains */

/* Per-file registration, called by ts_graph_register_nn_ops (ops_nn.c). */
void ts_nn_register_conv_ops(void);
void ts_nn_register_pool_norm_ops(void);
void ts_nn_register_wino_ops(void);
void ts_nn_register_einsum_ops(void);

/* Graph passes (ops_nn_fuse.c): declared in torsh/graph.h. */

/* Sets out[0] to t (may be NULL: then the last error's status is returned). */
static inline ts_status nn_out1(ts_tensor **out, ts_tensor *t)
{
    out[0] = t;
    return t ? TS_OK : ts_last_status();
}

/* FLOPs = numel(out[0]) * per (or -1 when not concrete). */
double nn_flops_numel_out(const ts_gnode *n, const ts_gvalue *const *in, const ts_gvalue *const *out, double per);

/* ---- sliding windows (Conv, ConvTranspose, pools) ------------------------------- */

#define NN_MAX_SP 3   /* spatial dims handled by the window helpers */

typedef struct nn_window {
    int nsp;                             /* spatial dims */
    int64_t k[NN_MAX_SP];                /* kernel */
    int64_t s[NN_MAX_SP], d[NN_MAX_SP];  /* strides, dilations */
    int64_t pb[NN_MAX_SP], pe[NN_MAX_SP];/* pads at the beginning / end */
    bool ceil_mode;
    bool auto_pad;                       /* auto_pad SAME_*: pads depend on the input size */
} nn_window;

/* Reads kernel (from `kernel` when not NULL, else the kernel_shape
 * attribute), strides, dilations, pads (ONNX order: all begins, then all
 * ends) and ceil_mode of node n; auto_pad SAME_UPPER / SAME_LOWER resolve
 * against the spatial input sizes `in` (an entry < 0: unknown; then the
 * pads of that dim stay 0 and auto_pad is set). Fails naming the node on a
 * bad attribute. */
ts_status nn_window_read(const ts_gnode *n, int nsp, const int64_t *kernel, const int64_t *in, nn_window *w);
/* Output length of spatial dim i for input length `in` (Conv and pools;
 * ceil_mode drops a last window that would start in the end padding, like
 * PyTorch). May be < 1 when the input is too small. */
int64_t nn_window_out(const nn_window *w, int i, int64_t in);

/* Reads INTS attribute `name` of exactly `count` values, each >= lo, into
 * out (all dflt when absent); fails naming the op. */
ts_status nn_read_spatial(const ts_gnode *n, const char *name, int count, int64_t dflt, int64_t lo, int64_t *out);

/* True for the activations FusedConv runs (ops_nn_conv.c; the fusion pass asks). */
bool nn_fused_activation_ok(const char *name);

/* Winograd F(2x2, 3x3) (ops_nn_wino.c): the transformed weights U [16, K, C]
 * (f32) of a [K, C, 3, 3] weight, and the stride-1, dilation-1, group-1
 * convolution of f32 x [N, C, H, W] with them: pads pb (top, left) / pe
 * (bottom, right), bias [K] and z (added, shaped like the output) may be
 * NULL, then ReLU when relu. New f32 tensor [N, K, OH, OW]. */
ts_tensor *nn_wino_weights(const ts_tensor *w);
ts_tensor *nn_conv_wino(const ts_tensor *x, const ts_tensor *u, const ts_tensor *bias, const ts_tensor *z,
                        const int64_t *pb, const int64_t *pe, bool relu);

/* Infer helper: output dim i of a window op from the input dim (a symbol
 * stays a symbol when the window is "same" with stride 1). */
ts_dim nn_window_out_dim(const nn_window *w, int i, ts_dim in);

#endif
