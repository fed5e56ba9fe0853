/* npy_internal.h — the one .npy header parser of core/io (npy_mem.c), shared
 * by the file reader (npy.c: ts_npy_read, which streams the data through
 * stdio) and the in-memory reader (npy_mem.c: ts_npy_parse and
 * ts_npy_from_storage, for .npz entries). Not installed.
 *
 *     npy_source src = { "npy_read", path, "file", "the file has" };
 *     uint64_t len;                                   // preamble + header
 *     npy_head_len(first12, got, file_size, &src, &len);
 *     ... read the first len bytes into head ...
 *     ts_npy_info h;
 *     npy_parse_head(head, len, file_size, &src, &h); // exactly h.nbytes of data follow
 *     ts_tensor *t = npy_new_tensor(&h);              // then copy the raw data into it
 *     t = npy_finish(t, &h, true);                    // byte swap, bools, C order
 */
#ifndef TORSH_NPY_INTERNAL_H
#define TORSH_NPY_INTERNAL_H

#include "torsh/npz.h"

/* Names what is being read in messages: "<op>: <name>: not a .npy <noun>",
 * "... needs 24 bytes of data, <has> 20". */
typedef struct npy_source {
    const char *op;         /* "npy_read" (files) or "npy" (arrays in memory) */
    const char *name;       /* the file or the array */
    const char *noun;       /* "file" or "array" */
    const char *has;        /* "the file has" or "there are" */
} npy_source;

#define NPY_PREAMBLE_MAX 12     /* magic, version and header length of format 2.0/3.0 */

/* From the first n bytes of a .npy of `total` bytes (n >= NPY_PREAMBLE_MAX,
 * or n == total when it is smaller): checks the magic, the version and the
 * header length against `total`; *len gets the bytes of preamble + header. */
ts_status npy_head_len(const unsigned char *b, size_t n, uint64_t total, const npy_source *src, uint64_t *len);

/* Parses the preamble and header held in b[0..n) (n at least the length
 * npy_head_len gives) of a .npy of `total` bytes into *info, and checks that
 * exactly the data the shape needs follows (total - info->data_offset ==
 * info->nbytes). Nothing is allocated from what the header claims. */
ts_status npy_parse_head(const unsigned char *b, size_t n, uint64_t total, const npy_source *src, ts_npy_info *info);

/* A new contiguous tensor with the dtype and the shape of the data as
 * stored (reversed for Fortran order); its bytes are uninitialised. */
ts_tensor *npy_new_tensor(const ts_npy_info *h);

/* Consumes t, a tensor over the data as stored: when `raw` (t owns a copy
 * of the file's bytes) byte-swaps big-endian data and makes bool bytes 0/1;
 * makes Fortran-ordered data a C-ordered copy. Returns the result (a new
 * reference) or NULL. */
ts_tensor *npy_finish(ts_tensor *t, const ts_npy_info *h, bool raw);

#endif
