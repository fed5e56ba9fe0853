/* internal.h — helpers shared by the core's tensor files; not installed.
 * Provides result allocation on an operand's device, raw views, the strided
 * elementwise iterator and small argument-check helpers. */
#ifndef TORSH_TENSOR_INTERNAL_H
#define TORSH_TENSOR_INTERNAL_H

#include "torsh/backend.h"

/* New contiguous tensor on the same device as `like`. */
ts_tensor *ts_tensor_new_on(const ts_tensor *like, const int64_t *shape, int ndim, ts_dtype dt);
/* A view of t's storage with the given geometry (new reference). */
ts_tensor *ts_tensor_view_of(const ts_tensor *t, const int64_t *shape, const int64_t *stride, int ndim, int64_t offset);

/* Fails unless t lives on the CPU (for ops without a backend entry). */
ts_status ts_require_cpu(const char *op, const ts_tensor *t);
/* Fails unless a and b live on the same device. */
ts_status ts_require_same_device(const char *op, const ts_tensor *a, const ts_tensor *b);
/* Fails when t is read-only (an mmap'd file) and op wants to write it. */
ts_status ts_require_writable(const char *op, const ts_tensor *t);

/* ---- the strided iterator ----------------------------------------------------
 * Walks up to TS_ITER_MAX_OPS operands of one common shape (inputs already
 * broadcast: stride 0 along broadcast dims) in row-major order. Dims of size
 * 1 are dropped and adjacent dims that are contiguous in every operand are
 * merged, so most walks are one long inner loop. The inner loop callback
 * gets one pointer per operand and byte strides. */
#define TS_ITER_MAX_OPS 4

typedef void (*ts_iter_loop)(char **ptrs, const int64_t *strides, int64_t n, void *ctx);

typedef struct ts_iter {
    int ndim, nops;
    int64_t shape[TS_MAX_DIMS];
    int64_t strides[TS_ITER_MAX_OPS][TS_MAX_DIMS];   /* bytes */
    char *data[TS_ITER_MAX_OPS];
    int64_t numel;
} ts_iter;

/* ops[0] is usually the output. Each operand's shape must broadcast to
 * `shape` (missing leading dims and size-1 dims get stride 0). */
void ts_iter_init(ts_iter *it, int nops, const ts_tensor *const *ops, const int64_t *shape, int ndim);
/* Runs the loop over all elements, in parallel when numel >= grain * 2. */
void ts_iter_run(const ts_iter *it, ts_iter_loop fn, void *ctx, int64_t grain);
/* Runs the loop over linear positions [begin, end) only. */
void ts_iter_run_range(const ts_iter *it, ts_iter_loop fn, void *ctx, int64_t begin, int64_t end);

/* Work sizes below which loops stay on one thread. */
#define TS_GRAIN_ELEMENTWISE 32768
#define TS_GRAIN_HEAVY 4096

/* Number of dims/ints in a dim list, with "ndims == 0 means all". Fills
 * mask[ndim] with true for reduced dims; fails on duplicates/out of range. */
ts_status ts_dims_mask(const char *op, const int *dims, int ndims, int tensor_ndim, bool *mask);

/* ---- small helpers shared by the nn kernels (common.c) ---------------------- */
/* The dtype float kernels compute in: f64 for f64, else f32. */
static inline ts_dtype ts_float_compute_dtype(ts_dtype dt) { return dt == TS_F64 ? TS_F64 : TS_F32; }
/* t as a contiguous tensor of dtype dt (t itself, retained, when it already is). */
ts_tensor *ts_contiguous_as(const ts_tensor *t, ts_dtype dt);
/* y converted to dt; takes y (returns it unchanged when it is already dt). */
ts_tensor *ts_narrow_dtype(ts_tensor *y, ts_dtype dt);
/* Fails unless t is a floating CPU tensor; `what` names the argument. */
ts_status ts_require_float_cpu(const char *op, const char *what, const ts_tensor *t);
/* Sum of n contiguous f32 (dbl false) or f64 values in double, over 8 fixed
 * partial sums so it vectorises and stays deterministic. Always inlined, so
 * kernels compiled for several instruction sets each get their own copy. */
static inline __attribute__((always_inline)) double ts_sum_run(const char *p, int64_t n, bool dbl)
{
    double acc[8] = { 0 }, s = 0;
    int64_t i = 0;
    if (dbl) {
        const double *x = (const double *)p;
        for (; i + 8 <= n; i += 8)
            for (int k = 0; k < 8; k++) acc[k] += x[i + k];
        for (; i < n; i++) s += x[i];
    } else {
        const float *x = (const float *)p;
        for (; i + 8 <= n; i += 8)
            for (int k = 0; k < 8; k++) acc[k] += x[i + k];
        for (; i < n; i++) s += x[i];
    }
    for (int k = 0; k < 8; k++) s += acc[k];
    return s;
}

#endif
