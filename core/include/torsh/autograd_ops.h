/* torsh/autograd_ops.h — the recording versions of the ops: same arguments
 * and results as their ops.h counterparts; when grad mode is on and an input
 * requires grad, the result gets a grad_fn (see autograd.h). The Lua binding
 * calls these, so everything a script does is differentiable. Ops with no
 * gradient (comparisons, argmax, ...) have no ts_ag_ version. */
#ifndef TORSH_AUTOGRAD_OPS_H
#define TORSH_AUTOGRAD_OPS_H

#include "torsh/autograd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* elementwise */
ts_tensor *ts_ag_binary(ts_binop op, const ts_tensor *a, const ts_tensor *b);
ts_tensor *ts_ag_binary_scalar(ts_binop op, const ts_tensor *a, double s, bool reversed);
ts_tensor *ts_ag_unary(ts_unop op, const ts_tensor *a);
ts_tensor *ts_ag_where(const ts_tensor *cond, const ts_tensor *a, const ts_tensor *b);
ts_tensor *ts_ag_clamp(const ts_tensor *a, double lo, double hi);
ts_tensor *ts_ag_leaky_relu(const ts_tensor *a, double slope);
/* Refuses in-place writes into tensors that take part in autograd while
 * grad mode is on; op names the operation for the message. */
ts_status ts_ag_check_inplace(const char *op, const ts_tensor *t);

/* reductions */
ts_tensor *ts_ag_reduce(ts_redop op, const ts_tensor *a, const int *dims, int ndims, bool keepdim);
ts_tensor *ts_ag_var(const ts_tensor *a, const int *dims, int ndims, double correction, bool keepdim);
ts_tensor *ts_ag_std(const ts_tensor *a, const int *dims, int ndims, double correction, bool keepdim);
ts_tensor *ts_ag_norm(const ts_tensor *a, double p, const int *dims, int ndims, bool keepdim);

/* linear algebra */
ts_tensor *ts_ag_matmul(const ts_tensor *a, const ts_tensor *b);
ts_tensor *ts_ag_bmm(const ts_tensor *a, const ts_tensor *b);
ts_tensor *ts_ag_linear(const ts_tensor *x, const ts_tensor *w, const ts_tensor *bias);

/* views and copies */
ts_tensor *ts_ag_view(const ts_tensor *t, const int64_t *shape, int ndim);
ts_tensor *ts_ag_reshape(const ts_tensor *t, const int64_t *shape, int ndim);
ts_tensor *ts_ag_permute(const ts_tensor *t, const int *dims, int ndim);
ts_tensor *ts_ag_transpose(const ts_tensor *t, int d0, int d1);
ts_tensor *ts_ag_slice(const ts_tensor *t, int dim, int64_t start, int64_t end, int64_t step);
ts_tensor *ts_ag_narrow(const ts_tensor *t, int dim, int64_t start, int64_t length);
ts_tensor *ts_ag_select(const ts_tensor *t, int dim, int64_t index);
ts_tensor *ts_ag_expand(const ts_tensor *t, const int64_t *shape, int ndim);
ts_tensor *ts_ag_squeeze(const ts_tensor *t, int dim);
ts_tensor *ts_ag_unsqueeze(const ts_tensor *t, int dim);
ts_tensor *ts_ag_flatten(const ts_tensor *t, int start_dim, int end_dim);
ts_tensor *ts_ag_contiguous(const ts_tensor *t);
ts_tensor *ts_ag_clone(const ts_tensor *t);
ts_tensor *ts_ag_to_dtype(const ts_tensor *t, ts_dtype dt);

/* neural-network ops (ag_nn.c); max pooling records its indices itself, so
 * `indices` is only for callers that want them too */
ts_tensor *ts_ag_conv1d(const ts_tensor *x, const ts_tensor *w, const ts_tensor *bias, const ts_conv_params *p);
ts_tensor *ts_ag_conv2d(const ts_tensor *x, const ts_tensor *w, const ts_tensor *bias, const ts_conv_params *p);
ts_tensor *ts_ag_max_pool2d(const ts_tensor *x, const ts_pool_params *p, ts_tensor **indices);
ts_tensor *ts_ag_avg_pool2d(const ts_tensor *x, const ts_pool_params *p);
ts_tensor *ts_ag_max_pool1d(const ts_tensor *x, const ts_pool_params *p);
ts_tensor *ts_ag_avg_pool1d(const ts_tensor *x, const ts_pool_params *p);
ts_tensor *ts_ag_adaptive_avg_pool2d(const ts_tensor *x, int64_t out_h, int64_t out_w);
ts_tensor *ts_ag_adaptive_max_pool2d(const ts_tensor *x, int64_t out_h, int64_t out_w);
ts_tensor *ts_ag_batch_norm(const ts_tensor *x, const ts_tensor *mean, const ts_tensor *var,
                            const ts_tensor *weight, const ts_tensor *bias, double eps);
ts_tensor *ts_ag_batch_norm_train(const ts_tensor *x, const ts_tensor *weight, const ts_tensor *bias,
                                  ts_tensor *running_mean, ts_tensor *running_var, double momentum, double eps);
ts_tensor *ts_ag_layer_norm(const ts_tensor *x, int norm_ndim, const ts_tensor *weight,
                            const ts_tensor *bias, double eps);
ts_tensor *ts_ag_group_norm(const ts_tensor *x, int64_t groups, const ts_tensor *weight,
                            const ts_tensor *bias, double eps);
ts_tensor *ts_ag_softmax(const ts_tensor *x, int dim);
ts_tensor *ts_ag_log_softmax(const ts_tensor *x, int dim);
ts_tensor *ts_ag_cross_entropy(const ts_tensor *logits, const ts_tensor *target, const ts_tensor *weight,
                               int64_t ignore_index, double label_smoothing, ts_reduction reduction);
ts_tensor *ts_ag_nll_loss(const ts_tensor *logp, const ts_tensor *target, const ts_tensor *weight,
                          int64_t ignore_index, ts_reduction reduction);

/* indexing and joining (ag_index.c). The index / mask arguments get no
 * gradient; split, split_sizes and chunk make every piece an output of one
 * node (pieces that get no gradient count as zeros). */
ts_tensor *ts_ag_index_select(const ts_tensor *a, int dim, const ts_tensor *index);
ts_tensor *ts_ag_embedding(const ts_tensor *weight, const ts_tensor *index);
ts_tensor *ts_ag_gather(const ts_tensor *a, int dim, const ts_tensor *index);
ts_tensor *ts_ag_scatter_add(const ts_tensor *a, int dim, const ts_tensor *index, const ts_tensor *src);
ts_tensor *ts_ag_masked_select(const ts_tensor *a, const ts_tensor *mask);
ts_tensor *ts_ag_masked_fill(const ts_tensor *a, const ts_tensor *mask, double value);
ts_tensor *ts_ag_cat(ts_tensor *const *ts, int n, int dim);
ts_tensor *ts_ag_stack(ts_tensor *const *ts, int n, int dim);
ts_status ts_ag_split(const ts_tensor *a, int64_t size, int dim, ts_tensor ***outs, int *n);
ts_status ts_ag_split_sizes(const ts_tensor *a, const int64_t *sizes, int nsizes, int dim, ts_tensor ***outs);
ts_status ts_ag_chunk(const ts_tensor *a, int chunks, int dim, ts_tensor ***outs, int *n);
ts_tensor *ts_ag_pad(const ts_tensor *a, const int64_t *pads, int npads, ts_pad_mode mode, double value);
ts_tensor *ts_ag_flip(const ts_tensor *a, const int *dims, int ndims);
ts_tensor *ts_ag_repeat(const ts_tensor *a, const int64_t *reps, int nreps);
ts_tensor *ts_ag_tril(const ts_tensor *a, int64_t diagonal);
ts_tensor *ts_ag_triu(const ts_tensor *a, int64_t diagonal);

/* along one dim (ag_sort.c): the values of max/min/sort/topk are
 * differentiable (the gradient goes to the positions the indices name);
 * the indices are not. */
ts_status ts_ag_max_dim(const ts_tensor *a, int dim, bool keepdim, ts_tensor **values, ts_tensor **indices);
ts_status ts_ag_min_dim(const ts_tensor *a, int dim, bool keepdim, ts_tensor **values, ts_tensor **indices);
ts_status ts_ag_sort(const ts_tensor *a, int dim, bool descending, ts_tensor **values, ts_tensor **indices);
ts_status ts_ag_topk(const ts_tensor *a, int64_t k, int dim, bool largest, bool sorted,
                     ts_tensor **values, ts_tensor **indices);
ts_tensor *ts_ag_cumsum(const ts_tensor *a, int dim);
ts_tensor *ts_ag_cumprod(const ts_tensor *a, int dim);

#ifdef __cplusplus
}
#endif
#endif
