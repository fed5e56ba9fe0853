/* pt_internal.h — what the PyTorch checkpoint readers share (not installed):
 * the unpickler hooks that turn persistent ids into storages and rebuild
 * calls into tensors (pt_read.c), used by the zip reader (pt_read.c) and
 * the legacy-format reader (pt_legacy.c), which differ only in where a
 * storage key's bytes come from. */
#ifndef TORSH_PT_INTERNAL_H
#define TORSH_PT_INTERNAL_H

#include "torsh/pickle.h"
#include "torsh/pt.h"

typedef struct pt_ctx pt_ctx;

/* Bytes of storage `key`, a new reference of at least `nbytes` bytes, or
 * NULL with a message. esize is the element size (for byte swapping). */
typedef ts_storage *(*pt_resolve_fn)(pt_ctx *c, const char *key, size_t esize, uint64_t nbytes);

struct pt_ctx {
    const char *path;           /* for messages */
    unsigned flags;             /* TS_PT_* */
    bool swap;                  /* storages are big-endian: byte-swap the copies */
    pt_resolve_fn resolve;
    void *impl;                 /* the reader's own state */
    /* storages by key (and legacy view key), each one reference */
    char **keys;
    ts_storage **storages;
    size_t n, cap;
};

ts_pkval *pt_persistent_load(ts_pickle *p, const ts_pkval *pid, void *ctx);
ts_pkval *pt_call(ts_pickle *p, const char *fn, const ts_pkval *args, void *ctx);
/* Unpickles bytes with the hooks of c (see ts_pickle_load for `consumed`),
 * then checks every tensor (pt_check_tensors). `what` names the pickle in
 * messages: "pt: '<path>': <what>: pickle: ...". */
ts_pickle *pt_unpickle(pt_ctx *c, const void *bytes, size_t n, const char *what, size_t *consumed);
/* Fails naming the place of the first tensor that could not be made. */
ts_status pt_check_tensors(const ts_pkval *root, const char *path);
void pt_ctx_clear(pt_ctx *c);

ts_pickle *pt_load_legacy(const char *path, const unsigned char *bytes, uint64_t size, unsigned flags);

#endif
