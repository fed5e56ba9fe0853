/* fuzz_idx.c — libFuzzer target of the IDX reader (ts_idx_read): any bytes,
 * plain or gzip, must give a tensor or an error message, never a crash, a
 * leak or an allocation larger than the input justifies. See README.md. */
// fuzz-sources: core/io/idx.c
#include "fuzz_common.h"

#include <torsh/torsh.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    if (!path) return 0;
    ts_clear_error();
    ts_tensor *t = ts_idx_read(path);
    fuzz_ok(t != NULL);
    ts_tensor_release(t);
    return 0;
}
