/* view.c — views that share storage: view/reshape, permute/transpose,
 * slice/narrow/select, expand, squeeze/unsqueeze, flatten. */
#include "internal.h"

#include <string.h>

/* Resolves one -1 in `shape` against numel; checks the product. */
static ts_status infer_shape(const char *op, const ts_tensor *t, const int64_t *in, int ndim, int64_t *shape)
{
    if (ndim < 0 || ndim > TS_MAX_DIMS) return ts_fail(TS_ERR_ARG, "%s: %d dims (at most %d)", op, ndim, TS_MAX_DIMS);
    int64_t numel = ts_tensor_numel(t), known = 1;
    int infer = -1;
    for (int i = 0; i < ndim; i++) {
        shape[i] = in[i];
        if (in[i] == -1) {
            if (infer >= 0) return ts_fail(TS_ERR_ARG, "%s: only one dimension can be -1", op);
            infer = i;
        } else if (in[i] < 0) {
            return ts_fail(TS_ERR_ARG, "%s: invalid size %lld", op, (long long)in[i]);
        } else {
            known *= in[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || numel % known != 0) goto mismatch;
        shape[infer] = numel / known;
    } else if (known != numel) {
        goto mismatch;
    }
    return TS_OK;
mismatch:;
    char a[TS_SHAPE_STR_CAP], b[TS_SHAPE_STR_CAP];
    return ts_fail(TS_ERR_ARG, "%s: shape %s is invalid for a tensor of shape %s (%lld elements)", op,
                   ts_shape_str(in, ndim, a, sizeof a), ts_shape_str(t->shape, t->ndim, b, sizeof b), (long long)numel);
}

/* Strides for viewing t as `shape` without copying, if possible (PyTorch's
 * computeStride): groups of old dims that are contiguous among themselves
 * can be split or merged. Returns false when a copy is needed. */
static bool view_strides(const ts_tensor *t, const int64_t *shape, int ndim, int64_t *stride)
{
    int64_t numel = ts_tensor_numel(t);
    if (numel == 0 || t->ndim == 0) {
        int64_t s = 1;
        for (int i = ndim - 1; i >= 0; i--) { stride[i] = s; s *= shape[i] > 1 ? shape[i] : 1; }
        return true;
    }
    int view_d = ndim - 1;
    int64_t chunk = 1, tensor_numel = 1;
    int64_t base_stride = t->stride[t->ndim - 1];
    for (int td = t->ndim - 1; td >= 0; td--) {
        tensor_numel *= t->shape[td];
        if (td == 0 || (t->shape[td - 1] != 1 && t->stride[td - 1] != tensor_numel * base_stride)) {
            while (view_d >= 0 && (chunk < tensor_numel || shape[view_d] == 1)) {
                stride[view_d] = chunk * base_stride;
                chunk *= shape[view_d];
                view_d--;
            }
            if (chunk != tensor_numel) return false;
            if (td > 0) {
                base_stride = t->stride[td - 1];
                tensor_numel = 1;
                chunk = 1;
            }
        }
    }
    return view_d == -1;
}

ts_tensor *ts_view(const ts_tensor *t, const int64_t *in, int ndim)
{
    int64_t shape[TS_MAX_DIMS], stride[TS_MAX_DIMS];
    if (infer_shape("view", t, in, ndim, shape)) return NULL;
    if (!view_strides(t, shape, ndim, stride)) {
        char a[TS_SHAPE_STR_CAP];
        return ts_fail_null(TS_ERR_ARG, "view: a tensor of shape %s with these strides cannot be viewed as the new "
                            "shape without a copy; use reshape()", ts_shape_str(t->shape, t->ndim, a, sizeof a));
    }
    return ts_tensor_view_of(t, shape, stride, ndim, t->offset);
}

ts_tensor *ts_reshape(const ts_tensor *t, const int64_t *in, int ndim)
{
    int64_t shape[TS_MAX_DIMS], stride[TS_MAX_DIMS];
    if (infer_shape("reshape", t, in, ndim, shape)) return NULL;
    if (view_strides(t, shape, ndim, stride)) return ts_tensor_view_of(t, shape, stride, ndim, t->offset);
    ts_tensor *c = ts_contiguous(t);
    if (!c) return NULL;
    ts_tensor *v = ts_view(c, shape, ndim);
    ts_tensor_release(c);
    return v;
}

ts_tensor *ts_permute(const ts_tensor *t, const int *dims, int ndim)
{
    if (ndim != t->ndim)
        return ts_fail_null(TS_ERR_ARG, "permute: got %d dims for a tensor with %d", ndim, t->ndim);
    int64_t shape[TS_MAX_DIMS], stride[TS_MAX_DIMS];
    bool seen[TS_MAX_DIMS] = {0};
    for (int i = 0; i < ndim; i++) {
        int d;
        if (ts_wrap_dim("permute", dims[i], t->ndim, &d)) return NULL;
        if (seen[d]) return ts_fail_null(TS_ERR_ARG, "permute: dim %d repeated", dims[i]);
        seen[d] = true;
        shape[i] = t->shape[d];
        stride[i] = t->stride[d];
    }
    return ts_tensor_view_of(t, shape, stride, ndim, t->offset);
}

ts_tensor *ts_transpose(const ts_tensor *t, int d0, int d1)
{
    if (t->ndim == 0) return ts_tensor_view_of(t, NULL, NULL, 0, t->offset);
    int a, b;
    if (ts_wrap_dim("transpose", d0, t->ndim, &a) || ts_wrap_dim("transpose", d1, t->ndim, &b)) return NULL;
    int dims[TS_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) dims[i] = i;
    dims[a] = b;
    dims[b] = a;
    return ts_permute(t, dims, t->ndim);
}

ts_tensor *ts_slice(const ts_tensor *t, int dim, int64_t start, int64_t end, int64_t step)
{
    int d;
    if (t->ndim == 0) return ts_fail_null(TS_ERR_ARG, "slice: cannot slice a 0-dim tensor");
    if (ts_wrap_dim("slice", dim, t->ndim, &d)) return NULL;
    if (step <= 0) return ts_fail_null(TS_ERR_ARG, "slice: step must be positive, got %lld", (long long)step);
    int64_t n = t->shape[d];
    if (start < 0) start += n;
    if (end < 0) end += n;
    if (start < 0) start = 0;
    if (start > n) start = n;
    if (end > n) end = n;
    if (end < start) end = start;
    int64_t shape[TS_MAX_DIMS], stride[TS_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    memcpy(stride, t->stride, sizeof stride);
    shape[d] = (end - start + step - 1) / step;
    stride[d] = t->stride[d] * step;
    return ts_tensor_view_of(t, shape, stride, t->ndim, t->offset + start * t->stride[d]);
}

ts_tensor *ts_narrow(const ts_tensor *t, int dim, int64_t start, int64_t length)
{
    int d;
    if (t->ndim == 0) return ts_fail_null(TS_ERR_ARG, "narrow: cannot narrow a 0-dim tensor");
    if (ts_wrap_dim("narrow", dim, t->ndim, &d)) return NULL;
    int64_t n = t->shape[d];
    if (start < 0) start += n;
    if (start < 0 || length < 0 || start > n || length > n - start)
        return ts_fail_null(TS_ERR_ARG, "narrow: range start %lld length %lld is outside dim %d of size %lld",
                            (long long)start, (long long)length, d, (long long)n);
    return ts_slice(t, d, start, start + length, 1);
}

ts_tensor *ts_select(const ts_tensor *t, int dim, int64_t index)
{
    int d;
    if (t->ndim == 0) return ts_fail_null(TS_ERR_ARG, "select: cannot index a 0-dim tensor");
    if (ts_wrap_dim("select", dim, t->ndim, &d)) return NULL;
    int64_t n = t->shape[d];
    if (index < -n || index >= n)
        return ts_fail_null(TS_ERR_ARG, "select: index %lld is out of range for dim %d of size %lld",
                            (long long)index, d, (long long)n);
    if (index < 0) index += n;
    int64_t shape[TS_MAX_DIMS], stride[TS_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (i == d) continue;
        shape[k] = t->shape[i];
        stride[k++] = t->stride[i];
    }
    return ts_tensor_view_of(t, shape, stride, k, t->offset + index * t->stride[d]);
}

ts_tensor *ts_expand(const ts_tensor *t, const int64_t *in, int ndim)
{
    if (ndim < t->ndim || ndim > TS_MAX_DIMS)
        return ts_fail_null(TS_ERR_ARG, "expand: %d sizes given for a tensor with %d dims", ndim, t->ndim);
    int64_t shape[TS_MAX_DIMS], stride[TS_MAX_DIMS];
    int lead = ndim - t->ndim;
    for (int i = 0; i < ndim; i++) {
        int td = i - lead;
        int64_t want = in[i];
        if (td < 0) {
            if (want < 0) return ts_fail_null(TS_ERR_ARG, "expand: -1 is not allowed for a new leading dim");
            shape[i] = want;
            stride[i] = 0;
        } else if (want == -1 || want == t->shape[td]) {
            shape[i] = t->shape[td];
            stride[i] = t->stride[td];
        } else if (t->shape[td] == 1 && want >= 0) {
            shape[i] = want;
            stride[i] = 0;
        } else {
            char a[TS_SHAPE_STR_CAP], b[TS_SHAPE_STR_CAP];
            return ts_fail_null(TS_ERR_ARG, "expand: cannot expand shape %s to %s (dim %d: %lld to %lld)",
                                ts_shape_str(t->shape, t->ndim, a, sizeof a), ts_shape_str(in, ndim, b, sizeof b), i,
                                (long long)t->shape[td], (long long)want);
        }
    }
    /* a broadcast view allocates nothing, but its element count must stay
     * countable (numel, nbytes) like any other tensor's */
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] && n > INT64_MAX / 16 / shape[i]) {
            char b[TS_SHAPE_STR_CAP];
            return ts_fail_null(TS_ERR_MEMORY, "expand: shape %s has too many elements",
                                ts_shape_str(shape, ndim, b, sizeof b));
        }
        n *= shape[i];
    }
    return ts_tensor_view_of(t, shape, stride, ndim, t->offset);
}

ts_tensor *ts_squeeze(const ts_tensor *t, int dim)
{
    int64_t shape[TS_MAX_DIMS], stride[TS_MAX_DIMS];
    int k = 0, d = -1;
    if (dim != TS_ALL_DIMS && ts_wrap_dim("squeeze", dim, t->ndim, &d)) return NULL;
    for (int i = 0; i < t->ndim; i++) {
        bool drop = t->shape[i] == 1 && (dim == TS_ALL_DIMS || i == d);
        if (drop) continue;
        shape[k] = t->shape[i];
        stride[k++] = t->stride[i];
    }
    return ts_tensor_view_of(t, shape, stride, k, t->offset);
}

ts_tensor *ts_unsqueeze(const ts_tensor *t, int dim)
{
    if (t->ndim >= TS_MAX_DIMS) return ts_fail_null(TS_ERR_ARG, "unsqueeze: tensor already has %d dims", TS_MAX_DIMS);
    int d;
    if (ts_wrap_dim("unsqueeze", dim, t->ndim + 1, &d)) return NULL;
    int64_t shape[TS_MAX_DIMS], stride[TS_MAX_DIMS];
    for (int i = 0, k = 0; i <= t->ndim; i++) {
        if (i == d) {
            shape[i] = 1;
            stride[i] = i < t->ndim ? t->stride[k] * t->shape[k] : 1;
        } else {
            shape[i] = t->shape[k];
            stride[i] = t->stride[k++];
        }
    }
    return ts_tensor_view_of(t, shape, stride, t->ndim + 1, t->offset);
}

ts_tensor *ts_flatten(const ts_tensor *t, int start_dim, int end_dim)
{
    if (t->ndim == 0) {
        int64_t one = 1;
        return ts_reshape(t, &one, 1);
    }
    int s, e;
    if (ts_wrap_dim("flatten", start_dim, t->ndim, &s) || ts_wrap_dim("flatten", end_dim, t->ndim, &e)) return NULL;
    if (s > e) return ts_fail_null(TS_ERR_ARG, "flatten: start_dim %d comes after end_dim %d", start_dim, end_dim);
    int64_t shape[TS_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < s; i++) shape[k++] = t->shape[i];
    int64_t m = 1;
    for (int i = s; i <= e; i++) m *= t->shape[i];
    shape[k++] = m;
    for (int i = e + 1; i < t->ndim; i++) shape[k++] = t->shape[i];
    return ts_reshape(t, shape, k);
}
