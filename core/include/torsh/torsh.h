/* torsh/torsh.h — libtorsh, the C core of torsh, in one include.
 *
 *     #include <torsh/torsh.h>
 *
 *     ts_tensor *a = ts_tensor_full((int64_t[]){2, 3}, 2, TS_F32, 1.0);
 *     ts_tensor *s = ts_reduce(TS_SUM, a, NULL, 0, false);   // new reference
 *     if (!s) fprintf(stderr, "torsh: %s\n", ts_last_error());
 *     else printf("%g\n", ts_tensor_item_at(s, 0));            // 6
 *     ts_tensor_release(s);
 *     ts_tensor_release(a);
 *
 * Parts: base.h (errors, memory accounting, threads, CPU features), dtype.h,
 * tensor.h (storage, tensors, views), ops.h (operations), random.h,
 * backend.h (device kernel tables), blas.h (the BLAS in use), autograd.h and
 * autograd_ops.h (reverse-mode differentiation and the recording ops),
 * io.h (data-set file readers), data.h (the batch producer) and
 * torsh_file.h (the native .torsh file).
 * Link with `pkg-config --libs torsh`.
 */
#ifndef TORSH_TORSH_H
#define TORSH_TORSH_H

#include "torsh/base.h"
#include "torsh/dtype.h"
#include "torsh/tensor.h"
#include "torsh/ops.h"
#include "torsh/random.h"
#include "torsh/backend.h"
#include "torsh/blas.h"
#include "torsh/hub.h"
#include "torsh/autograd.h"
#include "torsh/autograd_ops.h"
#include "torsh/torsh_file.h"
#include "torsh/io.h"
#include "torsh/data.h"
#include "torsh/optim.h"
#include "torsh/graph.h"
#include "torsh/onnx.h"
#include "torsh/tb.h"
#include "torsh/safetensors.h"
#include "torsh/npz.h"
#include "torsh/prof_hook.h"
#include "torsh/sysinfo.h"

#endif
