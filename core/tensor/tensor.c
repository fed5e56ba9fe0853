/* tensor.c — tensor objects: creation, reference counting, inspection and
 * element access. Views are in view.c, copies and fills in copy.c. */
#include "torsh/backend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *ts_shape_str(const int64_t *shape, int ndim, char *buf, size_t cap)
{
    size_t used = 0;
    used += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
    return buf;
}

static ts_status check_shape(const char *op, const int64_t *shape, int ndim, int64_t *numel)
{
    if (ndim < 0 || ndim > TS_MAX_DIMS)
        return ts_fail(TS_ERR_ARG, "%s: %d dims requested, at most %d are supported", op, ndim, TS_MAX_DIMS);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            char b[TS_SHAPE_STR_CAP];
            return ts_fail(TS_ERR_ARG, "%s: negative size %lld in shape %s", op, (long long)shape[i],
                           ts_shape_str(shape, ndim, b, sizeof b));
        }
        if (shape[i] && n > INT64_MAX / 16 / shape[i]) {
            char b[TS_SHAPE_STR_CAP];
            return ts_fail(TS_ERR_MEMORY, "%s: shape %s has too many elements", op, ts_shape_str(shape, ndim, b, sizeof b));
        }
        n *= shape[i];
    }
    *numel = n;
    return TS_OK;
}

static void contiguous_strides(const int64_t *shape, int ndim, int64_t *stride)
{
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        stride[i] = s;
        s *= shape[i] > 1 ? shape[i] : 1;
    }
}

/* Takes ownership of `s` (one reference). */
static ts_tensor *wrap(ts_storage *s, ts_dtype dt, int64_t offset, const int64_t *shape, const int64_t *stride, int ndim)
{
    ts_tensor *t = malloc(sizeof *t);
    if (!t) {
        ts_storage_release(s);
        return ts_fail_null(TS_ERR_MEMORY, "out of memory (tensor header)");
    }
    t->refcount = 1;
    t->dtype = dt;
    t->ndim = ndim;
    t->offset = offset;
    t->storage = s;
    t->ag = NULL;
    if (ndim) {
        memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
        if (stride) memcpy(t->stride, stride, sizeof(int64_t) * (size_t)ndim);
        else contiguous_strides(shape, ndim, t->stride);
    }
    return t;
}

ts_tensor *ts_tensor_new(const int64_t *shape, int ndim, ts_dtype dt)
{
    int64_t n;
    if ((unsigned)dt >= TS_DTYPE_COUNT) return ts_fail_null(TS_ERR_ARG, "tensor: invalid dtype %d", (int)dt);
    if (check_shape("tensor", shape, ndim, &n)) return NULL;
    size_t es = ts_dtype_size(dt);
    if ((uint64_t)n > TS_MAX_ALLOC_BYTES / es) {
        char b[TS_SHAPE_STR_CAP];
        return ts_fail_null(TS_ERR_MEMORY, "tensor: %s %s needs %.3g GB, more than can be allocated",
                            ts_shape_str(shape, ndim, b, sizeof b), ts_dtype_name(dt), (double)n * (double)es / 1e9);
    }
    ts_storage *s = ts_storage_new((size_t)n * es);
    if (!s) return NULL;
    return wrap(s, dt, 0, shape, NULL, ndim);
}

/* Same shape and dtype as t, contiguous, on t's device. */
ts_tensor *ts_tensor_new_on(const ts_tensor *like, const int64_t *shape, int ndim, ts_dtype dt)
{
    if (like->storage->device.type == TS_CPU) return ts_tensor_new(shape, ndim, dt);
    const ts_backend *be = ts_backend_of(like);
    int64_t n;
    if (check_shape("tensor", shape, ndim, &n)) return NULL;
    ts_storage *s = be->storage_new(like->storage->device.index, (size_t)n * ts_dtype_size(dt));
    if (!s) return NULL;
    return wrap(s, dt, 0, shape, NULL, ndim);
}

ts_tensor *ts_tensor_zeros(const int64_t *shape, int ndim, ts_dtype dt)
{
    ts_tensor *t = ts_tensor_new(shape, ndim, dt);
    if (t) memset(t->storage->data, 0, t->storage->nbytes);
    return t;
}

ts_tensor *ts_tensor_full(const int64_t *shape, int ndim, ts_dtype dt, double value)
{
    ts_tensor *t = ts_tensor_new(shape, ndim, dt);
    if (t && ts_fill_(t, value)) { ts_tensor_release(t); return NULL; }
    return t;
}

ts_tensor *ts_tensor_scalar(double value, ts_dtype dt)
{
    ts_tensor *t = ts_tensor_new(NULL, 0, dt);
    if (t) ts_store_f64(t->storage->data, dt, 0, value);
    return t;
}

ts_tensor *ts_tensor_from_data(const void *data, ts_dtype src_dt, const int64_t *shape, int ndim, ts_dtype dt)
{
    ts_tensor *t = ts_tensor_new(shape, ndim, dt);
    if (t) ts_convert(t->storage->data, dt, 1, data, src_dt, 1, ts_tensor_numel(t));
    return t;
}

ts_tensor *ts_tensor_from_storage(ts_storage *s, ts_dtype dt, int64_t offset,
                                  const int64_t *shape, const int64_t *stride, int ndim)
{
    int64_t n;
    if (check_shape("from_storage", shape, ndim, &n)) return NULL;
    if (offset < 0) return ts_fail_null(TS_ERR_ARG, "from_storage: negative offset %lld", (long long)offset);
    /* the furthest element must lie inside the storage */
    int64_t last = offset;
    int64_t st[TS_MAX_DIMS];
    if (stride) memcpy(st, stride, sizeof(int64_t) * (size_t)ndim);
    else contiguous_strides(shape, ndim, st);
    for (int i = 0; i < ndim; i++) {
        if (st[i] < 0) return ts_fail_null(TS_ERR_ARG, "from_storage: negative stride %lld", (long long)st[i]);
        if (shape[i] > 0) last += (shape[i] - 1) * st[i];
    }
    size_t es = ts_dtype_size(dt);
    if (n > 0 && (uint64_t)(last + 1) * es > s->nbytes)
        return ts_fail_null(TS_ERR_ARG, "from_storage: view reaches byte %llu of a %zu-byte storage",
                            (unsigned long long)((uint64_t)(last + 1) * es), s->nbytes);
    ts_storage_retain(s);
    return wrap(s, dt, offset, shape, st, ndim);
}

/* A view of t's storage with new geometry (shares storage). */
ts_tensor *ts_tensor_view_of(const ts_tensor *t, const int64_t *shape, const int64_t *stride, int ndim, int64_t offset)
{
    ts_storage_retain(t->storage);
    ts_tensor *v = wrap(t->storage, t->dtype, offset, shape, stride, ndim);
    return v;
}

void ts_tensor_retain(ts_tensor *t) { __atomic_add_fetch(&t->refcount, 1, __ATOMIC_RELAXED); }

void ts_autograd_meta_free(struct ts_autograd_meta *m) __attribute__((weak));

void ts_tensor_release(ts_tensor *t)
{
    if (!t) return;
    if (__atomic_sub_fetch(&t->refcount, 1, __ATOMIC_ACQ_REL) != 0) return;
    if (t->ag && ts_autograd_meta_free) ts_autograd_meta_free(t->ag);
    ts_storage_release(t->storage);
    free(t);
}

int64_t ts_tensor_numel(const ts_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t ts_tensor_nbytes(const ts_tensor *t) { return (size_t)ts_tensor_numel(t) * ts_dtype_size(t->dtype); }

bool ts_tensor_is_contiguous(const ts_tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] == 1) continue;
        if (t->stride[i] != s) return false;
        s *= t->shape[i];
    }
    return true;
}

void *ts_tensor_data(const ts_tensor *t)
{
    return (char *)t->storage->data + t->offset * (int64_t)ts_dtype_size(t->dtype);
}

static int64_t elem_offset(const ts_tensor *t, const int64_t *index)
{
    int64_t off = 0;
    for (int i = 0; i < t->ndim; i++) off += index[i] * t->stride[i];
    return off;
}

double ts_tensor_get_f64(const ts_tensor *t, const int64_t *index)
{
    return ts_load_f64(ts_tensor_data(t), t->dtype, elem_offset(t, index));
}

int64_t ts_tensor_get_i64(const ts_tensor *t, const int64_t *index)
{
    return ts_load_i64(ts_tensor_data(t), t->dtype, elem_offset(t, index));
}

ts_status ts_tensor_set_f64(ts_tensor *t, const int64_t *index, double v)
{
    if (t->storage->readonly) return ts_fail(TS_ERR_ARG, "set: tensor is read-only (memory-mapped file)");
    ts_store_f64(ts_tensor_data(t), t->dtype, elem_offset(t, index), v);
    return TS_OK;
}

double ts_tensor_item_at(const ts_tensor *t, int64_t linear)
{
    int64_t off = 0;
    for (int i = t->ndim - 1; i >= 0; i--) {
        int64_t idx = linear % t->shape[i];
        linear /= t->shape[i];
        off += idx * t->stride[i];
    }
    return ts_load_f64(ts_tensor_data(t), t->dtype, off);
}

ts_status ts_wrap_dim(const char *op, int dim, int ndim, int *out)
{
    int n = ndim > 0 ? ndim : 1;   /* a 0-dim tensor accepts dim 0 / -1 */
    if (dim < -n || dim >= n)
        return ts_fail(TS_ERR_ARG, "%s: dim %d is out of range for a tensor with %d dims (valid: %d..%d)",
                       op, dim, ndim, -n, n - 1);
    *out = dim < 0 ? dim + n : dim;
    return TS_OK;
}

ts_status ts_broadcast_shapes(const char *op, const int64_t *a, int na, const int64_t *b, int nb,
                              int64_t *out, int *ndim_out)
{
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int64_t da = i < n - na ? 1 : a[i - (n - na)];
        int64_t db = i < n - nb ? 1 : b[i - (n - nb)];
        if (da != db && da != 1 && db != 1) {
            char sa[TS_SHAPE_STR_CAP], sb[TS_SHAPE_STR_CAP];
            return ts_fail(TS_ERR_ARG, "%s: shapes %s and %s cannot be broadcast (dim %d: %lld vs %lld)", op,
                           ts_shape_str(a, na, sa, sizeof sa), ts_shape_str(b, nb, sb, sizeof sb), i,
                           (long long)da, (long long)db);
        }
        out[i] = da == 1 ? db : da;
    }
    *ndim_out = n;
    return TS_OK;
}
