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

#ifdef __cplusplus
}
#endif
#endif
