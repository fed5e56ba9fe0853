#include "internal.h"
ts_status ts_cpu_reduce(ts_redop op, ts_tensor *out, const ts_tensor *a, const bool *mask) { return ts_fail(TS_ERR_UNSUPPORTED, "reduce: pending"); }
