/* iter.c — the strided elementwise iterator (see internal.h). */
#include "internal.h"

#include <string.h>

void ts_iter_init(ts_iter *it, int nops, const ts_tensor *const *ops, const int64_t *shape, int ndim)
{
    it->nops = nops;
    int64_t sh[TS_MAX_DIMS], st[TS_ITER_MAX_OPS][TS_MAX_DIMS];
    for (int k = 0; k < nops; k++) {
        const ts_tensor *t = ops[k];
        int lead = ndim - t->ndim;
        int64_t es = (int64_t)ts_dtype_size(t->dtype);
        it->data[k] = (char *)ts_tensor_data(t);
        for (int d = 0; d < ndim; d++) {
            int td = d - lead;
            st[k][d] = (td < 0 || t->shape[td] == 1) ? 0 : t->stride[td] * es;
        }
    }
    memcpy(sh, shape, sizeof(int64_t) * (size_t)ndim);
    /* drop size-1 dims */
    int n = 0;
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        numel *= sh[d];
        if (sh[d] == 1) continue;
        it->shape[n] = sh[d];
        for (int k = 0; k < nops; k++) it->strides[k][n] = st[k][d];
        n++;
    }
    /* merge from the inside out: dims i-1 and i merge when stride[i-1] == stride[i] * shape[i] */
    int m = 0;
    for (int d = 0; d < n; d++) {
        if (m > 0) {
            bool ok = true;
            for (int k = 0; k < nops; k++)
                if (it->strides[k][m - 1] != it->strides[k][d] * it->shape[d]) { ok = false; break; }
            if (ok) {
                it->shape[m - 1] *= it->shape[d];
                for (int k = 0; k < nops; k++) it->strides[k][m - 1] = it->strides[k][d];
                continue;
            }
        }
        it->shape[m] = it->shape[d];
        for (int k = 0; k < nops; k++) it->strides[k][m] = it->strides[k][d];
        m++;
    }
    if (m == 0) {               /* a single element */
        it->shape[0] = 1;
        for (int k = 0; k < nops; k++) it->strides[k][0] = 0;
        m = 1;
    }
    it->ndim = m;
    it->numel = numel;
}

void ts_iter_run_range(const ts_iter *it, ts_iter_loop fn, void *ctx, int64_t begin, int64_t end)
{
    if (begin >= end) return;
    int nd = it->ndim, nops = it->nops;
    int64_t inner = it->shape[nd - 1];
    int64_t idx[TS_MAX_DIMS];
    /* multi-index of `begin` */
    int64_t rem = begin;
    for (int d = nd - 1; d >= 0; d--) {
        idx[d] = rem % it->shape[d];
        rem /= it->shape[d];
    }
    char *ptrs[TS_ITER_MAX_OPS];
    int64_t inner_strides[TS_ITER_MAX_OPS];
    for (int k = 0; k < nops; k++) inner_strides[k] = it->strides[k][nd - 1];
    int64_t pos = begin;
    while (pos < end) {
        for (int k = 0; k < nops; k++) {
            char *p = it->data[k];
            for (int d = 0; d < nd; d++) p += idx[d] * it->strides[k][d];
            ptrs[k] = p;
        }
        int64_t count = inner - idx[nd - 1];
        if (count > end - pos) count = end - pos;
        fn(ptrs, inner_strides, count, ctx);
        pos += count;
        /* advance the multi-index to the start of the next inner row */
        idx[nd - 1] = 0;
        for (int d = nd - 2; d >= 0; d--) {
            if (++idx[d] < it->shape[d]) break;
            idx[d] = 0;
        }
    }
}

typedef struct { const ts_iter *it; ts_iter_loop fn; void *ctx; } run_ctx;

static void run_part(int64_t begin, int64_t end, void *c)
{
    run_ctx *r = c;
    ts_iter_run_range(r->it, r->fn, r->ctx, begin, end);
}

void ts_iter_run(const ts_iter *it, ts_iter_loop fn, void *ctx, int64_t grain)
{
    if (it->numel == 0) return;
    if (it->numel < 2 * grain) {
        ts_iter_run_range(it, fn, ctx, 0, it->numel);
        return;
    }
    run_ctx r = { it, fn, ctx };
    ts_parallel_for(it->numel, grain, run_part, &r);
}

ts_status ts_require_cpu(const char *op, const ts_tensor *t)
{
    if (t->storage->device.type != TS_CPU)
        return ts_fail(TS_ERR_UNSUPPORTED, "%s: not implemented for tensors on the %s device", op,
                       ts_backend_of(t) ? ts_backend_of(t)->name : "?");
    return TS_OK;
}

ts_status ts_require_same_device(const char *op, const ts_tensor *a, const ts_tensor *b)
{
    if (a->storage->device.type != b->storage->device.type || a->storage->device.index != b->storage->device.index)
        return ts_fail(TS_ERR_ARG, "%s: operands are on different devices", op);
    return TS_OK;
}

ts_status ts_require_writable(const char *op, const ts_tensor *t)
{
    if (t->storage->readonly) return ts_fail(TS_ERR_ARG, "%s: cannot write a read-only tensor (memory-mapped file); clone() it first", op);
    return TS_OK;
}

ts_status ts_dims_mask(const char *op, const int *dims, int ndims, int tensor_ndim, bool *mask)
{
    for (int d = 0; d < TS_MAX_DIMS; d++) mask[d] = ndims == 0;
    for (int i = 0; i < ndims; i++) {
        int d;
        if (ts_wrap_dim(op, dims[i], tensor_ndim, &d)) return ts_last_status();
        if (tensor_ndim == 0) continue;
        if (mask[d]) return ts_fail(TS_ERR_ARG, "%s: dim %d appears more than once", op, dims[i]);
        mask[d] = true;
    }
    return TS_OK;
}
