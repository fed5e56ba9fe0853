/* torsh/torsh_file.h — the native `.torsh` file: a fixed 32-byte header, a
 * UTF-8 JSON header, then tensor data aligned to 64 bytes, so that loading
 * is an mmap, not a parse (layout in docs/FORMAT_TORSH.md).
 *
 * The core moves bytes and checks them; it does not parse JSON. The caller
 * (stdlib/torsh/io.lua) builds the JSON text, including the tensor table
 * that ts_torsh_plan() lays out, and reads it back.
 *
 * Writing:
 *     ts_torsh_entry e[2];
 *     ts_torsh_plan(tensors, 2, e, true);     // offsets, byte sizes, CRC-32s
 *     ... build the JSON text from e[i].offset / .nbytes / .crc32 ...
 *     ts_torsh_write("ckpt.torsh", json, strlen(json), tensors, e, 2);
 *   The file appears atomically: the bytes go to "ckpt.torsh.tmp.<pid>.<rand>"
 *   in the same folder, which is fsync'ed and renamed over the target, and
 *   the folder is fsync'ed. On any failure the temp file is removed and the
 *   target is untouched. A process killed mid-write leaves the old target
 *   intact (and a stale temp file behind).
 *
 * Reading:
 *     ts_torsh_file *f = ts_torsh_open("ckpt.torsh");   // maps the file
 *     size_t n; const char *json = ts_torsh_json(f, &n); // not NUL-terminated
 *     ... parse the JSON, fill a ts_torsh_entry per tensor ...
 *     ts_tensor *t = ts_torsh_tensor(f, &e, TS_TORSH_VERIFY);  // new reference
 *     ts_torsh_close(f);          // tensors keep the mapping alive
 *   Tensors are read-only views of one read-only, private mapping of the whole
 *   file (writing them fails with the core's read-only error; clone first),
 *   or heap copies with TS_TORSH_COPY. Every size the file claims is checked
 *   against the real file size before anything is mapped, allocated or read.
 *   Because writers replace files by rename, a file that is loaded stays valid
 *   while a new version is saved over its path.
 *
 * Errors: NULL / a ts_status, with a message naming the file (and the tensor)
 * in ts_last_error(). Tensors must be on the CPU; data is little-endian
 * (the core refuses to read or write on a big-endian host).
 */
#ifndef TORSH_TORSH_FILE_H
#define TORSH_TORSH_FILE_H

#include "torsh/base.h"
#include "torsh/dtype.h"
#include "torsh/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TS_TORSH_MAGIC "TORSH\0\r\n"    /* 8 bytes */
#define TS_TORSH_MAJOR 1
#define TS_TORSH_MINOR 0
#define TS_TORSH_FIXED_HEADER 32        /* bytes before the JSON header */
#define TS_TORSH_ALIGN 64               /* data section and tensor alignment */

/* One tensor of the file's tensor table. Offsets are relative to the data
 * section and multiples of TS_TORSH_ALIGN. */
typedef struct ts_torsh_entry {
    const char *name;       /* for messages; borrowed, may be NULL */
    ts_dtype dtype;
    int ndim;
    int64_t shape[TS_MAX_DIMS];
    uint64_t offset;        /* bytes from the start of the data section */
    uint64_t nbytes;        /* numel * element size */
    uint32_t crc32;         /* zlib CRC-32 of the nbytes bytes */
    bool has_crc;
} ts_torsh_entry;

/* ---- writing -------------------------------------------------------------- */

/* Lays out n tensors (borrowed) back to back, each at the next multiple of
 * TS_TORSH_ALIGN, filling entries[i] (name NULL); with `checksum`, also
 * computes each tensor's CRC-32 (in parallel). Any strides are fine. */
ts_status ts_torsh_plan(ts_tensor *const *tensors, size_t n, ts_torsh_entry *entries, bool checksum);

/* Writes the file atomically (see above): fixed header, `json` (json_len
 * bytes, UTF-8), zero padding, then tensors[i] contiguous at entries[i].offset
 * (entries as made by ts_torsh_plan; checked against the tensors). */
ts_status ts_torsh_write(const char *path, const char *json, size_t json_len,
                         ts_tensor *const *tensors, const ts_torsh_entry *entries, size_t n);

/* CRC-32 (zlib's) of a tensor's elements in row-major order; any strides. */
ts_status ts_torsh_crc32(const ts_tensor *t, uint32_t *crc);

/* ---- reading -------------------------------------------------------------- */

typedef struct ts_torsh_file ts_torsh_file;

typedef struct ts_torsh_info {
    unsigned major, minor;
    uint32_t flags;
    uint64_t json_len;
    uint64_t data_offset;   /* absolute, a multiple of TS_TORSH_ALIGN */
    uint64_t file_size;
} ts_torsh_info;

/* Opens and maps `path`, validating the fixed header: magic, version (a
 * newer major version is refused), flags, and that the JSON header and the
 * data section lie inside the file. Returns a new handle or NULL. */
ts_torsh_file *ts_torsh_open(const char *path);
/* The JSON header (json_len bytes, not NUL-terminated), borrowed from the
 * mapping; valid until ts_torsh_close. */
const char *ts_torsh_json(const ts_torsh_file *f, size_t *len);
ts_torsh_info ts_torsh_get_info(const ts_torsh_file *f);
const char *ts_torsh_path(const ts_torsh_file *f);

enum {
    TS_TORSH_VERIFY = 1,    /* check the entry's CRC-32 (when it has one) */
    TS_TORSH_COPY = 2,      /* copy into heap memory instead of a mapped view */
};
/* A tensor for one entry of the table, after checking its dtype, shape,
 * alignment, that nbytes == numel * element size and that the bytes lie
 * inside the data section. Returns a new reference or NULL (a CRC mismatch
 * names the tensor). */
ts_tensor *ts_torsh_tensor(ts_torsh_file *f, const ts_torsh_entry *e, unsigned flags);
/* Unmaps what no tensor uses and frees the handle. NULL is fine. */
void ts_torsh_close(ts_torsh_file *f);

#ifdef __cplusplus
}
#endif
#endif
