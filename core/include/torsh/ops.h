/* torsh/ops.h — every tensor operation of the core, device-independent.
 *
 * Each function checks its arguments (shapes, dtypes, dims), allocates the
 * result on the inputs' device and runs the kernel of that device's backend
 * (see torsh/backend.h). Results are NEW references; inputs are borrowed.
 * On failure: NULL (or a non-zero ts_status) and a message in
 * ts_last_error() naming the op, the argument and the shapes.
 *
 * Conventions: dims are 0-based and may be negative; broadcasting follows
 * NumPy; binary ops promote dtypes with ts_dtype_promote(); a double scalar
 * operand takes the tensor's dtype when that is floating, else f32 if the
 * scalar is fractional and the tensor's integer dtype otherwise.
 */
#ifndef TORSH_OPS_H
#define TORSH_OPS_H

#include "torsh/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- elementwise ---------------------------------------------------------- */
typedef enum ts_binop {
    TS_ADD, TS_SUB, TS_MUL, TS_DIV, TS_POW, TS_MAXIMUM, TS_MINIMUM, TS_REMAINDER,
    TS_FLOOR_DIVIDE, TS_ATAN2,
    /* comparisons: result is bool */
    TS_EQ, TS_NE, TS_LT, TS_LE, TS_GT, TS_GE,
    /* logical: result is bool */
    TS_LOGICAL_AND, TS_LOGICAL_OR, TS_LOGICAL_XOR,
    TS_BINOP_COUNT
} ts_binop;

typedef enum ts_unop {
    TS_ABS, TS_NEG, TS_EXP, TS_LOG, TS_SQRT, TS_RSQRT, TS_SIN, TS_COS, TS_TANH,
    TS_SIGMOID, TS_RELU, TS_GELU, TS_GELU_TANH, TS_SILU, TS_ERF, TS_FLOOR, TS_CEIL,
    TS_ROUND, TS_TRUNC, TS_SIGN, TS_RECIPROCAL, TS_SQUARE, TS_LOG1P, TS_EXPM1, TS_LOG2,
    TS_EXP2, TS_TAN, TS_ASIN, TS_ACOS, TS_ATAN, TS_SINH, TS_COSH, TS_LOGICAL_NOT,
    TS_ISNAN, TS_ISINF,
    TS_UNOP_COUNT
} ts_unop;

const char *ts_binop_name(ts_binop op);
const char *ts_unop_name(ts_unop op);

ts_tensor *ts_binary(ts_binop op, const ts_tensor *a, const ts_tensor *b);
/* a = a op b in place (b broadcast to a's shape; result cast to a's dtype). */
ts_status ts_binary_(ts_binop op, ts_tensor *a, const ts_tensor *b);
/* a op s, and with reversed = true, s op a. */
ts_tensor *ts_binary_scalar(ts_binop op, const ts_tensor *a, double s, bool reversed);
ts_status ts_binary_scalar_(ts_binop op, ts_tensor *a, double s);
/* Writes a op b into an existing `out` of the broadcast shape (any dtype). */
ts_status ts_binary_out(ts_binop op, ts_tensor *out, const ts_tensor *a, const ts_tensor *b);

ts_tensor *ts_unary(ts_unop op, const ts_tensor *a);
ts_status ts_unary_(ts_unop op, ts_tensor *a);
ts_status ts_unary_out(ts_unop op, ts_tensor *out, const ts_tensor *a);

/* cond ? a : b, all three broadcast together; cond is any dtype (!= 0). */
ts_tensor *ts_where(const ts_tensor *cond, const ts_tensor *a, const ts_tensor *b);
/* Clamp to [lo, hi]; NAN for a bound means "none". */
ts_tensor *ts_clamp(const ts_tensor *a, double lo, double hi);
ts_status ts_clamp_(ts_tensor *a, double lo, double hi);
/* Leaky relu / elu style helpers used by nn later. */
ts_tensor *ts_leaky_relu(const ts_tensor *a, double slope);

/* ---- reductions ---------------------------------------------------------- */
typedef enum ts_redop {
    TS_SUM, TS_MEAN, TS_PROD, TS_AMAX, TS_AMIN, TS_LOGSUMEXP, TS_ANY, TS_ALL,
    TS_REDOP_COUNT
} ts_redop;

/* Reduces over `dims` (ndims == 0: all dims). Sum/prod of integers give i64
 * (like PyTorch); mean needs a floating dtype. */
ts_tensor *ts_reduce(ts_redop op, const ts_tensor *a, const int *dims, int ndims, bool keepdim);
/* Variance / standard deviation with `correction` (1 = unbiased). */
ts_tensor *ts_var(const ts_tensor *a, const int *dims, int ndims, double correction, bool keepdim);
ts_tensor *ts_std(const ts_tensor *a, const int *dims, int ndims, double correction, bool keepdim);
/* p-norm (p = INFINITY for max-abs, 0 for count of non-zeros). */
ts_tensor *ts_norm(const ts_tensor *a, double p, const int *dims, int ndims, bool keepdim);
/* max/min along one dim: values and i64 indices (first occurrence). */
ts_status ts_max_dim(const ts_tensor *a, int dim, bool keepdim, ts_tensor **values, ts_tensor **indices);
ts_status ts_min_dim(const ts_tensor *a, int dim, bool keepdim, ts_tensor **values, ts_tensor **indices);
/* Index of the max/min along dim; with all_dims, over the flattened tensor. */
ts_tensor *ts_argmax(const ts_tensor *a, int dim, bool all_dims, bool keepdim);
ts_tensor *ts_argmin(const ts_tensor *a, int dim, bool all_dims, bool keepdim);
ts_tensor *ts_cumsum(const ts_tensor *a, int dim);
ts_tensor *ts_cumprod(const ts_tensor *a, int dim);
/* Stable sort along dim; NaN sorts as the largest value. */
ts_status ts_sort(const ts_tensor *a, int dim, bool descending, ts_tensor **values, ts_tensor **indices);
ts_status ts_topk(const ts_tensor *a, int64_t k, int dim, bool largest, bool sorted,
                  ts_tensor **values, ts_tensor **indices);

/* ---- linear algebra -------------------------------------------------------- */
/* torch.matmul semantics: 1-D and 2-D cases, batched with broadcasting. */
ts_tensor *ts_matmul(const ts_tensor *a, const ts_tensor *b);
ts_tensor *ts_bmm(const ts_tensor *a, const ts_tensor *b);       /* [B,n,k] x [B,k,m] */
/* x @ w^T + bias; w is [out, in]; bias may be NULL. */
ts_tensor *ts_linear(const ts_tensor *x, const ts_tensor *w, const ts_tensor *bias);

/* ---- convolution and pooling (NCHW / NCL) --------------------------------- */
typedef struct ts_conv_params {
    int64_t stride[2], padding[2], dilation[2];
    int64_t groups;
} ts_conv_params;

/* x [N,C,L], w [O,C/groups,K]; bias [O] or NULL. Uses index 0 of params. */
ts_tensor *ts_conv1d(const ts_tensor *x, const ts_tensor *w, const ts_tensor *bias, const ts_conv_params *p);
/* x [N,C,H,W], w [O,C/groups,KH,KW]. */
ts_tensor *ts_conv2d(const ts_tensor *x, const ts_tensor *w, const ts_tensor *bias, const ts_conv_params *p);

typedef struct ts_pool_params {
    int64_t kernel[2], stride[2], padding[2], dilation[2];
    bool ceil_mode;
    bool count_include_pad;   /* avg pool */
} ts_pool_params;

/* indices (may be NULL) receive the flat h*W+w position of each max, like PyTorch. */
ts_tensor *ts_max_pool2d(const ts_tensor *x, const ts_pool_params *p, ts_tensor **indices);
ts_tensor *ts_avg_pool2d(const ts_tensor *x, const ts_pool_params *p);
ts_tensor *ts_max_pool1d(const ts_tensor *x, const ts_pool_params *p);
ts_tensor *ts_avg_pool1d(const ts_tensor *x, const ts_pool_params *p);
ts_tensor *ts_adaptive_avg_pool2d(const ts_tensor *x, int64_t out_h, int64_t out_w);
ts_tensor *ts_adaptive_max_pool2d(const ts_tensor *x, int64_t out_h, int64_t out_w);

/* ---- normalisation and softmax --------------------------------------------- */
/* Inference batch norm over dim 1: (x - mean) / sqrt(var + eps) * w + b.
 * weight and bias may be NULL. */
ts_tensor *ts_batch_norm(const ts_tensor *x, const ts_tensor *mean, const ts_tensor *var,
                         const ts_tensor *weight, const ts_tensor *bias, double eps);
/* Normalises over the last `norm_ndim` dims; weight/bias (may be NULL) have those dims. */
ts_tensor *ts_layer_norm(const ts_tensor *x, int norm_ndim, const ts_tensor *weight,
                         const ts_tensor *bias, double eps);
ts_tensor *ts_group_norm(const ts_tensor *x, int64_t groups, const ts_tensor *weight,
                         const ts_tensor *bias, double eps);
ts_tensor *ts_softmax(const ts_tensor *x, int dim);
ts_tensor *ts_log_softmax(const ts_tensor *x, int dim);

/* ---- indexing ------------------------------------------------------------ */
/* All index tensors hold 0-based integer indices (any integer dtype);
 * negative indices count from the end where PyTorch allows it. */
ts_tensor *ts_index_select(const ts_tensor *a, int dim, const ts_tensor *index);
ts_tensor *ts_embedding(const ts_tensor *weight, const ts_tensor *index);
ts_tensor *ts_gather(const ts_tensor *a, int dim, const ts_tensor *index);
/* out = a.clone(); out[index[i][j]][j] += src[i][j] (for dim 0). */
ts_tensor *ts_scatter_add(const ts_tensor *a, int dim, const ts_tensor *index, const ts_tensor *src);
ts_status ts_scatter_add_(ts_tensor *a, int dim, const ts_tensor *index, const ts_tensor *src);
ts_tensor *ts_one_hot(const ts_tensor *index, int64_t num_classes);   /* i64 result; -1 classes: max+1 */
/* Elements where mask is true, flattened (mask broadcast to a). */
ts_tensor *ts_masked_select(const ts_tensor *a, const ts_tensor *mask);
ts_tensor *ts_masked_fill(const ts_tensor *a, const ts_tensor *mask, double value);

/* ---- joining and splitting ------------------------------------------------- */
ts_tensor *ts_cat(ts_tensor *const *ts, int n, int dim);
ts_tensor *ts_stack(ts_tensor *const *ts, int n, int dim);
/* Views of size `size` along dim (the last may be smaller). *outs is malloc'd
 * (free() it) and holds *n new references. */
ts_status ts_split(const ts_tensor *a, int64_t size, int dim, ts_tensor ***outs, int *n);
ts_status ts_split_sizes(const ts_tensor *a, const int64_t *sizes, int nsizes, int dim, ts_tensor ***outs);
ts_status ts_chunk(const ts_tensor *a, int chunks, int dim, ts_tensor ***outs, int *n);

typedef enum ts_pad_mode { TS_PAD_CONSTANT, TS_PAD_REFLECT, TS_PAD_REPLICATE, TS_PAD_CIRCULAR } ts_pad_mode;
/* pads = {last_lo, last_hi, prev_lo, prev_hi, ...} like torch.nn.functional.pad;
 * negative pads crop. */
ts_tensor *ts_pad(const ts_tensor *a, const int64_t *pads, int npads, ts_pad_mode mode, double value);
ts_tensor *ts_flip(const ts_tensor *a, const int *dims, int ndims);
ts_tensor *ts_repeat(const ts_tensor *a, const int64_t *reps, int nreps);
ts_tensor *ts_tril(const ts_tensor *a, int64_t diagonal);
ts_tensor *ts_triu(const ts_tensor *a, int64_t diagonal);

/* ---- training: batch statistics and fused losses (their backward kernels are
 * internal to the core and run through autograd, see autograd_ops.h) ------- */
typedef enum ts_reduction { TS_REDUCTION_NONE, TS_REDUCTION_MEAN, TS_REDUCTION_SUM } ts_reduction;

/* Training-mode batch norm over dim 1 of x [N, C, ...]: normalises with the
 * batch mean and biased variance, then y = x_hat * weight + bias (either may
 * be NULL). running_mean / running_var (may be NULL; written in place) become
 * (1 - momentum) * running + momentum * batch statistic, the variance taken
 * unbiased, like PyTorch. save_mean / save_invstd (may be NULL) receive new
 * f64 [C] tensors of the batch mean and 1 / sqrt(var + eps). */
ts_tensor *ts_batch_norm_train(const ts_tensor *x, const ts_tensor *weight, const ts_tensor *bias,
                               ts_tensor *running_mean, ts_tensor *running_var, double momentum, double eps,
                               ts_tensor **save_mean, ts_tensor **save_invstd);
/* Cross-entropy of logits [N, C] or [N, C, d...] (or [C] with a 0-dim target)
 * against integer class indices (0-based) with PyTorch 1.13's semantics:
 * per-class weight (may be NULL), ignore_index, label_smoothing, and 'mean'
 * dividing by the summed weights of the counted targets. */
ts_tensor *ts_cross_entropy(const ts_tensor *logits, const ts_tensor *target, const ts_tensor *weight,
                            int64_t ignore_index, double label_smoothing, ts_reduction reduction);
/* Negative log-likelihood of log-probabilities, same shapes and options. */
ts_tensor *ts_nll_loss(const ts_tensor *logp, const ts_tensor *target, const ts_tensor *weight,
                       int64_t ignore_index, ts_reduction reduction);

#ifdef __cplusplus
}
#endif
#endif
