/* torsh/io.h — readers of the data-set file formats: IDX (MNIST and
 * Fashion-MNIST, plain or gzip), CIFAR-10 binary batches and NumPy .npy.
 *
 *     ts_tensor *x = ts_idx_read("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
 *     if (!x) fprintf(stderr, "%s\n", ts_last_error());  // "idx_read: <path>: truncated: ..."
 *     // x: u8 [60000, 28, 28], a new reference
 *     ts_tensor_release(x);
 *
 * Every reader returns NEW references (or NULL / a status with the reason in
 * ts_last_error(); the message names the reader, the file and the problem).
 * Readers trust nothing in a file: magic numbers, type codes, dims and sizes
 * are checked, and no buffer larger than the bytes actually present in the
 * file is ever allocated (a header that claims 4 GiB of data in a 40-byte
 * file fails as "truncated" after reading 40 bytes, not with an allocation).
 * Nothing is memory-mapped: the tensors are ordinary heap tensors.
 */
#ifndef TORSH_IO_H
#define TORSH_IO_H

#include "torsh/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads an IDX file (Yann LeCun's MNIST format): magic 0x00 0x00 TYPE NDIMS,
 * NDIMS big-endian u32 sizes, then the data big-endian. TYPE 0x08 u8, 0x09 i8,
 * 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64; 1 <= NDIMS <= 8. The file may be
 * gzip-compressed (detected by its magic 0x1f 0x8b, read through zlib).
 * Returns a new contiguous tensor of that dtype and shape; trailing bytes
 * after the data are an error. */
ts_tensor *ts_idx_read(const char *path);

/* Reads one CIFAR-10 binary batch (data_batch_1.bin ... test_batch.bin):
 * records of 1 label byte (0..9) + 3072 pixel bytes (1024 red, 1024 green,
 * 1024 blue, each 32x32 row-major). The file size must be a positive
 * multiple of 3073 (10000 records in the official batches). On success
 * *images is a new u8 [N, 3, 32, 32] tensor and *labels a new i64 [N]. */
ts_status ts_cifar10_read(const char *path, ts_tensor **images, ts_tensor **labels);

/* Reads a NumPy .npy file, format versions 1.0, 2.0 and 3.0. dtypes: <f4 <f8
 * <f2 |u1 |i1 <i2 <i4 <i8 |b1 (1-byte types may also be spelled with '<' or
 * '='). Fortran-ordered arrays are transposed into a C-ordered copy. The
 * data size must match the shape exactly. Returns a new contiguous tensor. */
ts_tensor *ts_npy_read(const char *path);

#ifdef __cplusplus
}
#endif
#endif
