/* torsh/backend.h — a device backend is a table of kernels.
 *
 * Op front-ends (torsh/ops.h) check arguments and shapes, allocate the result
 * through the backend of the inputs' device, and call that backend's kernel
 * with the output already shaped. Adding a device (CUDA) means filling one of
 * these tables and registering it; callers do not change. A NULL entry means
 * "not on this device": the front-end reports it as TS_ERR_UNSUPPORTED.
 *
 * Families without an entry here (sort, pad, scatter...) run on CPU storages
 * only for now and say so when given another device.
 */
#ifndef TORSH_BACKEND_H
#define TORSH_BACKEND_H

#include "torsh/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ts_backend {
    const char *name;
    ts_device_type type;
    /* New storage of nbytes on device `index`; counted with ts_mem_count. */
    ts_storage *(*storage_new)(int index, size_t nbytes);
    /* dst = src (same shape; dtype conversion allowed); either side may be
     * on this backend's device, the other on the CPU. */
    ts_status (*copy)(ts_tensor *dst, const ts_tensor *src);
    ts_status (*binary)(ts_binop op, ts_tensor *out, const ts_tensor *a, const ts_tensor *b);
    ts_status (*unary)(ts_unop op, ts_tensor *out, const ts_tensor *a);
    ts_status (*where)(ts_tensor *out, const ts_tensor *cond, const ts_tensor *a, const ts_tensor *b);
    ts_status (*clamp)(ts_tensor *out, const ts_tensor *a, double lo, double hi);
    /* Reduces a over the dims where mask[d] is true into out (keepdim shape). */
    ts_status (*reduce)(ts_redop op, ts_tensor *out, const ts_tensor *a, const bool *mask);
    /* out[b] = a[b] @ b[b] for 3-D operands of equal batch (strides arbitrary). */
    ts_status (*bmm)(ts_tensor *out, const ts_tensor *a, const ts_tensor *b);
    ts_status (*conv2d)(ts_tensor *out, const ts_tensor *x, const ts_tensor *w,
                        const ts_tensor *bias, const ts_conv_params *p);
    ts_status (*softmax)(ts_tensor *out, const ts_tensor *x, int dim, bool log);
} ts_backend;

/* The backend for a device type (NULL when not compiled in / registered). */
const ts_backend *ts_backend_get(ts_device_type type);
/* Registers (or replaces) the backend for its device type. */
void ts_backend_register(const ts_backend *b);
/* The backend of a tensor's storage. */
static inline const ts_backend *ts_backend_of(const ts_tensor *t) {
    return ts_backend_get(t->storage->device.type);
}

#ifdef __cplusplus
}
#endif
#endif
