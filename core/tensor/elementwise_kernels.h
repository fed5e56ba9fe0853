/* elementwise_kernels.h — the per-type inner loops of binary and unary ops
 * (elementwise_kernels.c), looked up by op and compute type. Compute types
 * are f32, f64 and i64: other dtypes are converted to one of these in small
 * chunks by elementwise.c, so the kernels never see f16, i8, ... */
#ifndef TORSH_ELEMENTWISE_KERNELS_H
#define TORSH_ELEMENTWISE_KERNELS_H

#include "torsh/ops.h"

/* out[i] = a[i*sa] op b[i*sb] for i < n; sa, sb are 0 (broadcast scalar) or 1.
 * out is contiguous, of the compute type, or bool (uint8) for comparisons. */
typedef void (*ts_binary_kernel)(int64_t n, void *out, const void *a, int64_t sa, const void *b, int64_t sb);
/* out[i] = f(a[i]) over contiguous buffers. */
typedef void (*ts_unary_kernel)(int64_t n, void *out, const void *a);

/* Index of a compute type: 0 f32, 1 f64, 2 i64; -1 if not a compute type. */
int ts_compute_index(ts_dtype dt);
/* NULL when the op has no kernel for that compute type. */
ts_binary_kernel ts_binary_kernel_for(ts_binop op, ts_dtype compute);
ts_unary_kernel ts_unary_kernel_for(ts_unop op, ts_dtype compute);

#endif
