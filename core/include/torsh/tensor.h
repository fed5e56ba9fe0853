/* torsh/tensor.h — storages, tensors and views.
 *
 * Life cycle:
 *     ts_tensor *a = ts_tensor_new((int64_t[]){2, 3}, 2, TS_F32); // ref 1
 *     ts_tensor *b = ts_tensor_transpose(a, 0, 1);  // a view: shares storage
 *     ts_tensor_release(a);                         // b keeps the storage alive
 *     ts_tensor_release(b);                         // storage freed here
 *
 * A ts_storage is a ref-counted block of bytes on one device: heap memory
 * from the counted allocator, a read-only mmap of a file region, or device
 * memory owned by a backend. A ts_tensor is a strided view of a storage:
 * dtype, shape, strides and offset in elements. Every function returning
 * ts_tensor* returns a NEW reference (the caller releases it), or NULL with
 * the reason in ts_last_error(). Arguments are borrowed.
 *
 * Tensors are not thread-safe objects: one owner mutates a tensor at a time;
 * reference counts themselves are atomic.
 */
#ifndef TORSH_TENSOR_H
#define TORSH_TENSOR_H

#include "torsh/base.h"
#include "torsh/dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TS_MAX_DIMS 8

typedef enum ts_storage_kind { TS_STORAGE_HEAP, TS_STORAGE_MMAP, TS_STORAGE_DEVICE, TS_STORAGE_EXTERNAL } ts_storage_kind;

typedef struct ts_device { ts_device_type type; int index; } ts_device;

typedef struct ts_storage ts_storage;
typedef void (*ts_storage_release_fn)(ts_storage *s);

struct ts_storage {
    int refcount;           /* atomic; use ts_storage_retain/release */
    ts_storage_kind kind;
    ts_device device;
    void *data;             /* CPU address (heap/mmap/external) or device pointer */
    size_t nbytes;
    bool readonly;          /* mmap'd file regions are read-only */
    ts_storage_release_fn release;  /* frees `data` (set per kind) */
    void *owner;            /* kind-specific: mmap base, backend context... */
    size_t owner_len;
};

/* Per-tensor autograd data; owned by core/autograd (NULL when unused). */
struct ts_autograd_meta;

typedef struct ts_tensor {
    int refcount;           /* atomic */
    ts_dtype dtype;
    int ndim;
    int64_t shape[TS_MAX_DIMS];
    int64_t stride[TS_MAX_DIMS];   /* in elements; may be 0 (expand) or negative never */
    int64_t offset;                /* in elements from storage->data */
    ts_storage *storage;           /* owned reference */
    struct ts_autograd_meta *ag;
} ts_tensor;

/* ---- storage ---------------------------------------------------------- */
/* New heap storage of nbytes on the CPU (uninitialised). Returns a new ref. */
ts_storage *ts_storage_new(size_t nbytes);
/* Read-only map of [offset, offset+len) of `path`. Returns a new ref. */
ts_storage *ts_storage_mmap(const char *path, size_t offset, size_t len);
/* Wraps memory the caller owns; `release` (may be NULL) runs at the end. */
ts_storage *ts_storage_wrap(void *data, size_t nbytes, ts_storage_release_fn release, void *owner);
void ts_storage_retain(ts_storage *s);
void ts_storage_release(ts_storage *s);

/* ---- creation ---------------------------------------------------------- */
/* Contiguous tensor with uninitialised data. */
ts_tensor *ts_tensor_new(const int64_t *shape, int ndim, ts_dtype dt);
ts_tensor *ts_tensor_zeros(const int64_t *shape, int ndim, ts_dtype dt);
ts_tensor *ts_tensor_full(const int64_t *shape, int ndim, ts_dtype dt, double value);
/* 0-dim tensor holding one value. */
ts_tensor *ts_tensor_scalar(double value, ts_dtype dt);
/* Copies `n` contiguous elements of type `src_dt` from `data`. */
ts_tensor *ts_tensor_from_data(const void *data, ts_dtype src_dt, const int64_t *shape, int ndim, ts_dtype dt);
/* A view over an existing storage (borrowed; the tensor takes its own ref). */
ts_tensor *ts_tensor_from_storage(ts_storage *s, ts_dtype dt, int64_t offset,
                                  const int64_t *shape, const int64_t *stride, int ndim);
ts_tensor *ts_arange(double start, double end, double step, ts_dtype dt);
ts_tensor *ts_linspace(double start, double end, int64_t steps, ts_dtype dt);
ts_tensor *ts_eye(int64_t n, int64_t m, ts_dtype dt);

void ts_tensor_retain(ts_tensor *t);
void ts_tensor_release(ts_tensor *t);   /* NULL is fine */

/* ---- inspection --------------------------------------------------------- */
int64_t ts_tensor_numel(const ts_tensor *t);
size_t ts_tensor_nbytes(const ts_tensor *t);       /* numel * element size */
bool ts_tensor_is_contiguous(const ts_tensor *t);
/* Address of element 0 of the view (CPU storages only). */
void *ts_tensor_data(const ts_tensor *t);
/* Element at a 0-based multi-index, as double / int64 (CPU). */
double ts_tensor_get_f64(const ts_tensor *t, const int64_t *index);
int64_t ts_tensor_get_i64(const ts_tensor *t, const int64_t *index);
ts_status ts_tensor_set_f64(ts_tensor *t, const int64_t *index, double v);
/* Element at a 0-based linear (row-major) position of the view. */
double ts_tensor_item_at(const ts_tensor *t, int64_t linear);
/* Formats a shape as "[2, 3, 4]" into buf; returns buf. */
char *ts_shape_str(const int64_t *shape, int ndim, char *buf, size_t cap);
#define TS_SHAPE_STR_CAP 160

/* ---- views (no copies; new references sharing storage) ------------------- */
/* dim arguments are 0-based and may be negative (counting from the end). */
ts_tensor *ts_view(const ts_tensor *t, const int64_t *shape, int ndim);     /* -1 allowed once */
ts_tensor *ts_reshape(const ts_tensor *t, const int64_t *shape, int ndim);  /* view when possible, else copy */
ts_tensor *ts_permute(const ts_tensor *t, const int *dims, int ndim);
ts_tensor *ts_transpose(const ts_tensor *t, int d0, int d1);
/* Elements start, start+step, ... < end along dim (step > 0). */
ts_tensor *ts_slice(const ts_tensor *t, int dim, int64_t start, int64_t end, int64_t step);
ts_tensor *ts_narrow(const ts_tensor *t, int dim, int64_t start, int64_t length);
ts_tensor *ts_select(const ts_tensor *t, int dim, int64_t index);
ts_tensor *ts_expand(const ts_tensor *t, const int64_t *shape, int ndim);   /* -1 keeps a dim */
ts_tensor *ts_squeeze(const ts_tensor *t, int dim);       /* dim < -ndim... use TS_ALL_DIMS for all */
ts_tensor *ts_unsqueeze(const ts_tensor *t, int dim);
ts_tensor *ts_flatten(const ts_tensor *t, int start_dim, int end_dim);
ts_tensor *ts_contiguous(const ts_tensor *t);             /* same tensor (retained) if already */
ts_tensor *ts_clone(const ts_tensor *t);
ts_tensor *ts_to_dtype(const ts_tensor *t, ts_dtype dt);  /* always a new contiguous tensor */
/* Copies src into dst (broadcasting src to dst's shape, converting dtype). */
ts_status ts_copy_(ts_tensor *dst, const ts_tensor *src);
ts_status ts_fill_(ts_tensor *t, double value);
#define TS_ALL_DIMS 1000

/* Normalises a possibly negative dim against ndim; TS_ERR_ARG if out of range.
 * `op` names the operation in the message. */
ts_status ts_wrap_dim(const char *op, int dim, int ndim, int *out);
/* Broadcast shape of a and b (NumPy rules) into out/ndim_out. */
ts_status ts_broadcast_shapes(const char *op, const int64_t *a, int na, const int64_t *b, int nb,
                              int64_t *out, int *ndim_out);

#ifdef __cplusplus
}
#endif
#endif
