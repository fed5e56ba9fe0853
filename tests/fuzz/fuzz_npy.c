/* fuzz_npy.c — libFuzzer target of the .npy reader (ts_npy_read) and, on
 * the same bytes, the CIFAR-10 batch reader (ts_cifar10_read): a tensor or
 * an error message, never a crash or a leak. See README.md. */
// fuzz-sources: core/io/npy.c core/io/npy_mem.c core/io/cifar.c
#include "fuzz_common.h"

#include <torsh/torsh.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    if (!path) return 0;
    ts_clear_error();
    ts_tensor *t = ts_npy_read(path);
    fuzz_ok(t != NULL);
    ts_tensor_release(t);
    ts_tensor *im = NULL, *lb = NULL;
    if (ts_cifar10_read(path, &im, &lb) == TS_OK && (!im || !lb)) __builtin_trap();
    ts_tensor_release(im);
    ts_tensor_release(lb);
    return 0;
}
