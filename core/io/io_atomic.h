/* io_atomic.h — an atomic file writer shared by the writers of core/io
 * (not installed): the bytes go to "<path>.tmp.<pid>.<16 hex>" (O_EXCL) in
 * the target's folder; commit fsyncs it, renames it over the target (the
 * target of a symlink, so the link survives; the old file's mode is kept)
 * and fsyncs the folder. On any failure, or on abort, the temp file is
 * removed and the target is untouched.
 *
 *     ts_io_atomic a;
 *     if (ts_io_atomic_begin(&a, path, "safetensors write")) return ts_last_status();
 *     if (ts_io_atomic_write(&a, buf, n)) { ts_io_atomic_abort(&a); return ts_last_status(); }
 *     return ts_io_atomic_commit(&a);    // frees `a` whatever happens
 */
#ifndef TORSH_IO_ATOMIC_H
#define TORSH_IO_ATOMIC_H

#include "torsh/base.h"
#include "torsh/tensor.h"

typedef struct ts_io_atomic {
    int fd;
    char *tmp;          /* the temp file's name */
    char *target;       /* the file being replaced */
    const char *op;     /* starts messages, "op: ..." (borrowed; NULL: no prefix) */
} ts_io_atomic;

/* Creates the temp file. `op` starts every message ("npy write: ...");
 * NULL leaves messages unprefixed for callers that add their own. On
 * failure nothing needs releasing. */
ts_status ts_io_atomic_begin(ts_io_atomic *a, const char *path, const char *op);
/* Appends n bytes (any size; EINTR and short writes are handled). */
ts_status ts_io_atomic_write(ts_io_atomic *a, const void *buf, size_t n);
/* Appends the bytes of t (a CPU tensor, borrowed) in C order: a
 * contiguous copy is made first when t is strided. */
ts_status ts_io_atomic_write_tensor(ts_io_atomic *a, const ts_tensor *t);
/* Appends n zero bytes. */
ts_status ts_io_atomic_zeros(ts_io_atomic *a, uint64_t n);
/* fsync + close + rename + folder fsync; releases `a` in every case. */
ts_status ts_io_atomic_commit(ts_io_atomic *a);
/* Closes and removes the temp file; releases `a`. Keeps the last error. */
void ts_io_atomic_abort(ts_io_atomic *a);

#endif
