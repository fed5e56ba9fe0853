/* torsh/zip.h — ZIP archives: a reader that maps the whole file read-only
 * and hands out entries in place, and an atomic writer of stored (not
 * compressed), aligned entries. Used by the PyTorch checkpoint reader
 * (torsh/pt.h) and meant for any other zip-based format (NumPy .npz, ...).
 *
 * Reading:
 *     ts_zip *z = ts_zip_open("model.pt");        // maps the file, checks the directory
 *     const ts_zip_entry *e = ts_zip_find(z, "model/data.pkl");
 *     size_t n;
 *     void *pkl = ts_zip_read_alloc(z, e, true, &n);   // malloc'ed copy (stored or deflate), CRC checked
 *     ...
 *     free(pkl);
 *     ts_storage *s = ts_zip_storage(z, e2, 0);  // a storage of the entry's bytes, a new reference:
 *                                                // a read-only view of the mapping when stored,
 *                                                // a heap copy when deflated (or with TS_ZIP_COPY)
 *     ts_zip_close(z);      // storages handed out keep the mapping alive
 *
 * What the reader checks, so callers need not: the end-of-central-directory
 * record (and the ZIP64 one when present) lies inside the file; the central
 * directory lies inside the file, before the end records; every entry's
 * local header is inside the file, carries the same name and method as its
 * central record and the same sizes (unless they are deferred to a data
 * descriptor); the data lies inside the file, before the central directory;
 * no two entries' [local header, end of data) ranges overlap; names are
 * non-empty, valid as relative paths (no "..", "." or empty components, no
 * leading '/', no backslash, no drive letter, no NUL) and unique; only
 * methods 0 (stored, where the sizes must agree) and 8 (deflate) and no
 * encryption; a single disk. A deflated entry may not claim more than 1032
 * uncompressed bytes per compressed byte (deflate's limit), so a small file
 * never makes the reader allocate a lot. Every failure names the file, the
 * entry and the problem.
 *
 * CRC-32: the reader verifies it when asked (TS_ZIP_VERIFY, and always in
 * ts_zip_read*); an entry whose recorded CRC is 0 is taken as "no checksum"
 * (PyTorch writes 0 when its CRC option is off).
 *
 * Writing:
 *     ts_zip_writer *w = ts_zip_writer_open("out.pt", NULL);  // temp file in the same folder
 *     ts_zip_writer_add(w, "out/data.pkl", pkl, pkl_len);      // one call per entry, or:
 *     ts_zip_writer_begin(w, "out/data/0", nbytes);            // streamed entry of nbytes
 *     ts_zip_writer_write(w, bytes, n);  ...                   // n's adding up to nbytes
 *     ts_zip_writer_end(w);
 *     ts_zip_writer_finish(w);   // central directory, fsync, rename over the target; frees w
 *   or ts_zip_writer_abort(w) to remove the temp file and free w. After any
 *   failing call the writer only accepts abort (finish fails too and cleans up).
 *   Entries are written the way PyTorch's PyTorchStreamWriter does: method 0,
 *   flags 0x0808 (data descriptor, UTF-8 names), data aligned to opts.align
 *   bytes with an "FB" extra field of 'Z' padding, a data descriptor after the
 *   data, ZIP64 fields for any entry whose size or offset reaches
 *   opts.zip64_at (0xFFFFFFFF by default), and ZIP64 end records always.
 *
 * Ownership: ts_zip_open / ts_zip_writer_open return handles the caller frees
 * with ts_zip_close / ts_zip_writer_finish or _abort. Entries and names are
 * borrowed from the handle. Storages from ts_zip_storage are new references
 * that stay valid after ts_zip_close.
 */
#ifndef TORSH_ZIP_H
#define TORSH_ZIP_H

#include "torsh/base.h"
#include "torsh/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- reading ------------------------------------------------------------------ */

typedef struct ts_zip ts_zip;

typedef struct ts_zip_entry {
    const char *name;        /* NUL-terminated, validated (see above) */
    uint16_t method;         /* 0 stored, 8 deflate */
    uint16_t flags;          /* general-purpose bit flags */
    uint32_t crc32;          /* as recorded in the central directory */
    uint64_t csize;          /* compressed size (== usize when stored) */
    uint64_t usize;          /* uncompressed size */
    uint64_t header_offset;  /* of the local header */
    uint64_t data_offset;    /* of the (compressed) data */
} ts_zip_entry;

/* Maps `path` read-only and reads its central directory. New handle or NULL. */
ts_zip *ts_zip_open(const char *path);
/* Same, from an open file descriptor (not closed; `name` is for messages). */
ts_zip *ts_zip_open_fd(int fd, const char *name);
void ts_zip_close(ts_zip *z);           /* NULL is fine */

const char *ts_zip_path(const ts_zip *z);
size_t ts_zip_count(const ts_zip *z);
/* Entries in central-directory order; NULL when i is out of range. */
const ts_zip_entry *ts_zip_entry_at(const ts_zip *z, size_t i);
/* The entry named `name` (exact match), or NULL (no error recorded). */
const ts_zip_entry *ts_zip_find(const ts_zip *z, const char *name);
/* The whole file, mapped; valid until ts_zip_close. */
const unsigned char *ts_zip_bytes(const ts_zip *z, uint64_t *size);

/* Address of a stored entry's bytes inside the mapping (usize bytes; valid
 * until ts_zip_close), or NULL with an error for a deflated entry. */
const void *ts_zip_data(const ts_zip *z, const ts_zip_entry *e);

/* Copies/inflates the entry into dst (exactly e->usize bytes must fit in
 * cap) and checks its CRC-32 when `verify`. */
ts_status ts_zip_read(const ts_zip *z, const ts_zip_entry *e, void *dst, size_t cap, bool verify);
/* Same into a new malloc'ed buffer (freed by the caller; one extra NUL byte
 * follows the data). *n gets e->usize. */
void *ts_zip_read_alloc(const ts_zip *z, const ts_zip_entry *e, bool verify, size_t *n);

enum {
    TS_ZIP_COPY = 1,      /* heap copy even when the entry could be mapped */
    TS_ZIP_VERIFY = 2,    /* check the CRC-32 */
};
/* The entry's bytes as a CPU storage (a new reference): a read-only view of
 * the mapping for a stored entry (the storage keeps the mapping alive), or
 * a heap storage (writable) when deflated or with TS_ZIP_COPY. `align`
 * (a power of two, 0 = 1) is the alignment the view's address must have;
 * a stored entry that is not aligned so is copied instead. */
ts_storage *ts_zip_storage(ts_zip *z, const ts_zip_entry *e, size_t align, unsigned flags);

/* ---- writing ------------------------------------------------------------------ */

typedef struct ts_zip_writer ts_zip_writer;

typedef struct ts_zip_write_opts {
    unsigned align;       /* data alignment, a power of two <= 4096; 0 = 64 */
    uint64_t zip64_at;    /* sizes/offsets from this on get ZIP64 fields; 0 = 0xFFFFFFFF */
    bool no_crc;          /* write CRC 0 (PyTorch's set_crc32_options(False)) */
} ts_zip_write_opts;

/* Creates "<path>.tmp.<pid>.<random>" next to path (the target of a symlink
 * is what gets replaced). opts may be NULL. New writer or NULL. */
ts_zip_writer *ts_zip_writer_open(const char *path, const ts_zip_write_opts *opts);
/* One whole entry. The name is checked like the reader's and must be new. */
ts_status ts_zip_writer_add(ts_zip_writer *w, const char *name, const void *data, size_t n);
/* A streamed entry of exactly `size` bytes: begin, writes, end (which fails
 * when the writes did not add up to size). */
ts_status ts_zip_writer_begin(ts_zip_writer *w, const char *name, uint64_t size);
ts_status ts_zip_writer_write(ts_zip_writer *w, const void *data, size_t n);
ts_status ts_zip_writer_end(ts_zip_writer *w);
/* Writes the central directory and end records, syncs, renames over the
 * target, syncs the folder. Always frees w; on failure the target is
 * untouched and the temp file removed. */
ts_status ts_zip_writer_finish(ts_zip_writer *w);
void ts_zip_writer_abort(ts_zip_writer *w);    /* NULL is fine */

/* zlib's CRC-32 of n bytes (chunked over the thread pool when large). */
uint32_t ts_zip_crc32(const void *data, size_t n);

/* Checks a name as both the reader and the writer do; `what` names the
 * archive in the message. */
ts_status ts_zip_check_name(const char *name, size_t len, const char *what);

#ifdef __cplusplus
}
#endif
#endif
