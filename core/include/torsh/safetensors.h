/* torsh/safetensors.h — reader and writer of Hugging Face `.safetensors`
 * files: u64 LE header length N, N bytes of JSON (space-padded), then the
 * tensor bytes, little-endian and row-major (layout in FORMATS.md §4).
 *
 * Reading:
 *     ts_safetensors *f = ts_safetensors_open("model.safetensors");
 *     if (!f) fprintf(stderr, "%s\n", ts_last_error());
 *     for (size_t i = 0; i < ts_safetensors_count(f); i++) {
 *         const ts_safetensors_entry *e = ts_safetensors_entry_at(f, i);
 *         ts_tensor *t = ts_safetensors_tensor(f, i, 0);   // new reference
 *         ... e->name, t ...
 *         ts_tensor_release(t);
 *     }
 *     const char *fw = ts_safetensors_meta_get(f, "format");   // or NULL
 *     ts_safetensors_close(f);     // tensors keep the mapping alive
 *
 *   The whole file is mapped read-only once; tensors are read-only views of
 *   that mapping (writing one fails with the core's read-only error; clone
 *   first), or heap copies with TS_SAFETENSORS_COPY. A view is made only when
 *   the data sits at a multiple of its element size in the file (always so
 *   for files written by the reference writer or torsh); otherwise, and for
 *   BOOL data holding bytes other than 0 and 1 (normalised to 0/1), the
 *   tensor is a copy.
 *
 *   ts_safetensors_open validates the whole file before returning, as the
 *   reference implementation (safetensors/src/tensor.rs) does: the header
 *   length is at most TS_SAFETENSORS_MAX_HEADER and inside the file; the
 *   header is UTF-8 JSON of the form {"__metadata__": {str: str}?, NAME:
 *   {"dtype": D, "shape": [ints], "data_offsets": [begin, end]}, ...} (no
 *   other fields, no duplicate keys, integers only); sorted by offset the
 *   tensors tile the data section exactly (each begin equals the previous
 *   end; the last end is the end of the file: no gaps, no overlaps, no
 *   trailing bytes); end - begin == numel * element size; at most
 *   TS_MAX_DIMS dims. Failures name the file, the tensor and the problem.
 *
 *   Entries are in data order (sorted by data_offsets; ties keep header
 *   order), which for files from the reference writer is the header order.
 *   Known safetensors dtypes that torsh has no type for (U16, U32, U64,
 *   F8_*, F4, F6_*, C64) pass validation; their entries have
 *   dtype == TS_DTYPE_COUNT and ts_safetensors_tensor refuses them, naming
 *   the tensor and the dtype. Unknown dtype strings fail ts_safetensors_open.
 *
 * Writing:
 *     const char *names[] = { "w", "b" };
 *     ts_tensor *ts[] = { w, b };
 *     const char *mk[] = { "format" }, *mv[] = { "pt" };
 *     ts_safetensors_write("out.safetensors", names, ts, 2, mk, mv, 1);
 *   Like the reference writer: tensors sorted by dtype size (descending: I64
 *   F64 F32 I32 BF16 F16 I16 I8 U8 BOOL), then by name (bytewise), stored
 *   back to back in that order; compact JSON with "__metadata__" first (keys
 *   sorted bytewise; omitted when n_meta is 0), then the tensors in data
 *   order, each {"dtype","shape","data_offsets"}; the header padded with
 *   spaces to a multiple of 8 bytes. Any strides are fine. The file appears
 *   atomically: bytes go to "<path>.tmp.<pid>.<rand>", which is fsync'ed and
 *   renamed over the target (a symlink's target is replaced), then the folder
 *   is fsync'ed; on failure the temp file is removed and the target is left
 *   untouched.
 *
 * Names and metadata must be valid UTF-8 without NUL bytes (JSON), tensor
 * names unique and not "__metadata__". Tensors must be on the CPU; the core
 * refuses to read or write on a big-endian host.
 */
#ifndef TORSH_SAFETENSORS_H
#define TORSH_SAFETENSORS_H

#include "torsh/base.h"
#include "torsh/dtype.h"
#include "torsh/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TS_SAFETENSORS_MAX_HEADER 100000000u    /* bytes, as the reference reader */

typedef struct ts_safetensors ts_safetensors;

/* One tensor of an opened file; everything is owned by the handle and valid
 * until ts_safetensors_close. */
typedef struct ts_safetensors_entry {
    const char *name;           /* NUL-terminated UTF-8 */
    const char *dtype_name;     /* the file's spelling: "F32", "BF16", "U16", ... */
    ts_dtype dtype;             /* TS_DTYPE_COUNT when torsh has no such type */
    int ndim;
    int64_t shape[TS_MAX_DIMS];
    uint64_t begin, end;        /* byte range in the data section (end exclusive) */
} ts_safetensors_entry;

enum {
    TS_SAFETENSORS_COPY = 1,    /* a heap copy instead of a view of the mapping */
};

/* Opens, maps and validates `path` (see above). Returns a new handle or NULL. */
ts_safetensors *ts_safetensors_open(const char *path);
/* Number of tensors, and the i-th (0-based, data order). */
size_t ts_safetensors_count(const ts_safetensors *f);
const char *ts_safetensors_name(const ts_safetensors *f, size_t i);
const ts_safetensors_entry *ts_safetensors_entry_at(const ts_safetensors *f, size_t i);
/* Index of the tensor called `name`, or -1. */
long ts_safetensors_find(const ts_safetensors *f, const char *name);
/* The tensor of entry i: a new reference, or NULL (a dtype torsh lacks, out
 * of memory). flags: TS_SAFETENSORS_COPY. */
ts_tensor *ts_safetensors_tensor(ts_safetensors *f, size_t i, unsigned flags);

/* The "__metadata__" pairs, in header order (borrowed, NUL-terminated). */
size_t ts_safetensors_meta_count(const ts_safetensors *f);
const char *ts_safetensors_meta_key(const ts_safetensors *f, size_t i);
const char *ts_safetensors_meta_value(const ts_safetensors *f, size_t i);
/* The value for `key`, or NULL. */
const char *ts_safetensors_meta_get(const ts_safetensors *f, const char *key);

/* Length of the header and absolute offset of the data section (8 + N). */
uint64_t ts_safetensors_header_len(const ts_safetensors *f);
const char *ts_safetensors_path(const ts_safetensors *f);

/* Unmaps what no tensor uses and frees the handle. NULL is fine. */
void ts_safetensors_close(ts_safetensors *f);

/* Writes n tensors (borrowed) under names[i], with n_meta metadata pairs
 * (meta_keys may be NULL when n_meta is 0), atomically (see above). */
ts_status ts_safetensors_write(const char *path, const char *const *names, ts_tensor *const *tensors, size_t n,
                               const char *const *meta_keys, const char *const *meta_values, size_t n_meta);

/* The safetensors spelling of a torsh dtype ("F32", "BOOL", ...). */
const char *ts_safetensors_dtype_name(ts_dtype dt);

#ifdef __cplusplus
}
#endif
#endif
