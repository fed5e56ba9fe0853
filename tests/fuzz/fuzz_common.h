/* fuzz_common.h — what the libFuzzer targets share (include it first):
 *  - fuzz_file: the input bytes become a file the reader can open by path
 *    (a memfd, seen as /proc/self/fd/N, so nothing touches the disk),
 *    rewritten for every input;
 *  - fuzz_ok: a reader's failure must leave a message (traps otherwise);
 *  - fuzz_touch_bytes / fuzz_touch_tensor: read every byte handed out (a
 *    tensor's through its strides), so ASan sees any view past its storage;
 *  - fuzz_walk: walks an unpickled value tree as a reader would.
 * Everything is static inline: a target uses what it needs. */
#ifndef TORSH_FUZZ_COMMON_H
#define TORSH_FUZZ_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE         /* memfd_create */
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "torsh/pickle.h"
#include "torsh/torsh.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Path of a file now holding data[0..size), or NULL when it cannot be made. */
static inline const char *fuzz_file(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("torsh-fuzz", 0);
        if (fd < 0) return NULL;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0) return NULL;
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);
        if (n <= 0) return NULL;
        done += (size_t)n;
    }
    return path;
}

/* Returns ok; a failure (!ok) without a message is a bug: traps. */
static inline bool fuzz_ok(bool ok)
{
    if (!ok && ts_last_error()[0] == '\0') __builtin_trap();
    return ok;
}

static volatile unsigned fuzz_sink;     /* keeps the reads below from being optimized away */

static inline void fuzz_touch_bytes(const void *p, size_t n)
{
    const unsigned char *b = p;
    unsigned s = 0;
    for (size_t i = 0; i < n; i++) s += b[i];
    fuzz_sink += s;
}

/* Reads every element of t through its strides (bytes only: any dtype; at
 * most 2^20 elements, as stride-0 views may be huge). */
static inline void fuzz_touch_tensor(const ts_tensor *t)
{
    int64_t n = ts_tensor_numel(t);
    if (n == 0) return;
    const unsigned char *base = (const unsigned char *)t->storage->data;
    size_t es = ts_dtype_size(t->dtype);
    int64_t idx[TS_MAX_DIMS] = { 0 };
    unsigned s = 0;
    for (int64_t k = 0; k < n && k < (1 << 20); k++) {
        int64_t off = t->offset;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
        for (size_t b = 0; b < es; b++) s += base[(size_t)off * es + b];
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
    fuzz_sink += s;
}

/* Walks v as a reader would: every string byte (which must be followed by
 * a NUL), every tensor element, each container once (marked visited in
 * aux, so shared and cyclic values end); a tensor node without a tensor
 * must carry an error. Traps when nesting passes the unpickler's bound. */
static inline void fuzz_walk(ts_pkval *v, int depth)
{
    if (depth > TS_PICKLE_MAX_DEPTH + 16) __builtin_trap();
    fuzz_sink += v->kind;
    switch (v->kind) {
    case TS_PK_STR: case TS_PK_BYTES: case TS_PK_GLOBAL:
        fuzz_touch_bytes(v->u.str.s, v->u.str.len);
        if (v->u.str.s[v->u.str.len] != '\0') __builtin_trap();
        return;
    case TS_PK_TENSOR:
        if (v->u.tensor.t) fuzz_touch_tensor(v->u.tensor.t);
        else if (!v->u.tensor.error) __builtin_trap();
        return;
    case TS_PK_TUPLE: case TS_PK_LIST: case TS_PK_SET: case TS_PK_FROZENSET:
        if (v->aux == 7) return;
        v->aux = 7;
        for (size_t i = 0; i < v->u.seq.n; i++) fuzz_walk(v->u.seq.items[i], depth + 1);
        return;
    case TS_PK_DICT:
        if (v->aux == 7) return;
        v->aux = 7;
        for (size_t i = 0; i < v->u.dict.n; i++) {
            fuzz_walk(v->u.dict.keys[i], depth + 1);
            fuzz_walk(v->u.dict.vals[i], depth + 1);
        }
        if (v->u.dict.state) fuzz_walk(v->u.dict.state, depth + 1);
        return;
    default:
        return;
    }
}

#endif
