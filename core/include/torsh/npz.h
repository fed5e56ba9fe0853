/* torsh/npz.h — NumPy .npz archives (a ZIP of .npy files, as np.savez and
 * np.savez_compressed write them) and the .npy pieces they are made of: a
 * .npy parser that works on bytes in memory (so archive entries need not
 * touch the disk) and a .npy writer whose headers are byte-identical to
 * numpy's (FORMATS.md §7.1). The file reader of .npy is ts_npy_read
 * (torsh/io.h); the ZIP layer is torsh/zip.h.
 *
 * Reading:
 *     ts_npz *z = ts_npz_open("arrays.npz");    // maps the file, checks the zip directory
 *     for (size_t i = 0; i < ts_npz_count(z); i++) {
 *         ts_tensor *t = ts_npz_tensor(z, i, 0); // new reference: a heap tensor
 *         ... ts_npz_name(z, i) ("x" for the entry "x.npy") ...
 *         ts_tensor_release(t);
 *     }
 *     ts_npz_close(z);                            // tensors stay valid
 *   Entries may be stored or deflated (savez_compressed). The CRC-32 of each
 *   entry is checked unless TS_NPZ_NO_VERIFY. With TS_NPZ_MMAP, a stored
 *   entry whose data is aligned and needs no conversion becomes a read-only
 *   view of the mapped file (zero copy: files written by ts_npz_write always
 *   qualify); otherwise, and by default, tensors are ordinary writable heap
 *   tensors (a deflated entry is inflated once, straight into the tensor's
 *   storage). Big-endian data is byte-swapped, Fortran-ordered arrays are
 *   made C-ordered, bool bytes other than 0/1 read as true (all copies).
 *
 * Writing:
 *     ts_npz_write("out.npz", names, tensors, n);   // entries "<name>.npy", stored
 *   like np.savez (not compressed), each .npy 64-byte aligned inside the
 *   archive, atomically (temp file, fsync, rename: see torsh/zip.h).
 *   ts_npy_write(path, t) writes one .npy file, atomically.
 *   bf16 has no NumPy dtype: convert such tensors (to f32) first.
 *
 * Errors: NULL / a status, with the file, the entry and the problem in
 * ts_last_error(). Sizes in headers are checked against the bytes present
 * before anything is allocated.
 */
#ifndef TORSH_NPZ_H
#define TORSH_NPZ_H

#include "torsh/base.h"
#include "torsh/dtype.h"
#include "torsh/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- .npy in memory ------------------------------------------------------------ */

typedef struct ts_npy_info {
    char descr[16];         /* as written: "<f4", "|b1", ... */
    ts_dtype dtype;
    bool swap;              /* big-endian data */
    bool fortran;           /* fortran_order: shape below is as written */
    int ndim;
    int64_t shape[TS_MAX_DIMS];
    uint64_t data_offset;   /* bytes from the start of the .npy to the data */
    uint64_t nbytes;        /* numel * element size == bytes after data_offset */
} ts_npy_info;

/* Parses the preamble and header of the .npy bytes [data, data+n) (format
 * 1.0, 2.0 or 3.0; dtypes as ts_npy_read) and checks that exactly nbytes of
 * data follow. `name` names the array in messages. */
ts_status ts_npy_parse(const void *data, size_t n, const char *name, ts_npy_info *info);

/* A tensor from a storage holding one whole .npy file: a view of the
 * storage when its data is aligned and needs no conversion (so a read-only
 * storage gives a read-only tensor), else a contiguous heap copy (see the
 * conversions above). New reference or NULL. */
ts_tensor *ts_npy_from_storage(ts_storage *s, const char *name);

/* ---- .npy writing ---------------------------------------------------------------- */

#define TS_NPY_HEADER_MAX 512   /* ample for TS_MAX_DIMS dims (numpy's are < 200 bytes) */

/* The preamble and header numpy writes for t (C order, format 1.0): magic,
 * version, u16 length, "{'descr': ..., 'fortran_order': False, 'shape': (...), }",
 * numpy's spare spaces, padding to a multiple of 64, '\n'. Into buf (cap >=
 * TS_NPY_HEADER_MAX); *len gets the byte count. Fails for bf16. */
ts_status ts_npy_header(const ts_tensor *t, unsigned char *buf, size_t cap, size_t *len);

/* Writes t (any strides; CPU) as a .npy file, atomically. */
ts_status ts_npy_write(const char *path, const ts_tensor *t);

/* ---- .npz ------------------------------------------------------------------------- */

typedef struct ts_npz ts_npz;

enum {
    TS_NPZ_MMAP = 1,        /* read-only views of the mapping where possible */
    TS_NPZ_NO_VERIFY = 2,   /* skip the CRC-32 check */
};

/* Opens `path` as a zip archive (torsh/zip.h checks). Every entry is an
 * array; its key is the entry name without a trailing ".npy" (np.load's
 * keys), and keys must be unique. New handle or NULL. */
ts_npz *ts_npz_open(const char *path);
size_t ts_npz_count(const ts_npz *z);
/* Key of entry i (archive order), borrowed; NULL when out of range. */
const char *ts_npz_name(const ts_npz *z, size_t i);
/* Index of the entry with key `key`, or -1. */
long ts_npz_find(const ts_npz *z, const char *key);
/* The array of entry i: a new reference or NULL. flags: TS_NPZ_*. */
ts_tensor *ts_npz_tensor(ts_npz *z, size_t i, unsigned flags);
void ts_npz_close(ts_npz *z);       /* NULL is fine; tensors stay valid */

/* Writes n tensors (borrowed; CPU, any strides) as entries "<names[i]>.npy",
 * in the order given (np.savez's layout, stored). Names must be unique and
 * valid zip names (no "..", no leading '/', ...). */
ts_status ts_npz_write(const char *path, const char *const *names, ts_tensor *const *tensors, size_t n);

#ifdef __cplusplus
}
#endif
#endif
