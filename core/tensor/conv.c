#include "internal.h"
ts_status ts_cpu_conv2d(ts_tensor *out, const ts_tensor *x, const ts_tensor *w, const ts_tensor *bias, const ts_conv_params *p) { return ts_fail(TS_ERR_UNSUPPORTED, "conv2d: pending"); }
ts_status ts_cpu_softmax(ts_tensor *out, const ts_tensor *x, int dim, bool log) { return ts_fail(TS_ERR_UNSUPPORTED, "softmax: pending"); }
