/* torsh/pickle.h — a restricted unpickler: reads Python pickles (protocol 2,
 * as torch.save writes them, plus the protocol 4/5 opcodes other tools use)
 * into a tree of values, running no code. It is what PyTorch's
 * weights_only=True unpickler is, in C.
 *
 *     ts_pickle *p = ts_pickle_load(bytes, n, NULL, NULL);
 *     if (!p) fprintf(stderr, "%s\n", ts_last_error());
 *         // "pickle: global 'os.system' is not allowed (offset 2)"
 *     const ts_pkval *v = ts_pickle_root(p);   // borrowed from p
 *     ... v->kind == TS_PK_DICT, v->u.dict.keys[i], v->u.dict.vals[i] ...
 *     ts_pickle_free(p);                       // frees every value, releases tensors
 *
 * Values: None, bool, int (int64; a larger Python int becomes a float with
 * the TS_PK_BIGINT flag), float, str (UTF-8 bytes as pickled), bytes,
 * tuple, list, set, frozenset, dict (insertion order kept; an OrderedDict
 * has TS_PK_ORDERED), a "global" (an allowed name such as
 * "torch.float32", opaque), and, made by the hooks of a checkpoint reader,
 * storages and tensors. One value may be reachable several times (the memo
 * shares it) and a list or dict may even contain itself: walk with a visited
 * mark when that matters.
 *
 * What runs: nothing. GLOBAL / STACK_GLOBAL resolve only names on an
 * allow-list (the classes and functions torch's weights_only unpickler
 * allows: collections.OrderedDict, builtins.set/frozenset/bytearray,
 * _codecs.encode, torch.Size, torch.device, the torch storage classes,
 * tensor classes and dtypes, torch._utils._rebuild_tensor(_v2/_v3),
 * _rebuild_parameter(_with_state), torch._tensor._rebuild_from_type_v2 and
 * torch.nn.parameter.Parameter; Python 2's __builtin__ counts as builtins).
 * Anything else fails: "pickle: global 'os.system' is not allowed (offset N)".
 * Calls (REDUCE, NEWOBJ, NEWOBJ_EX) of the plain containers are done here;
 * calls of the torch rebuild functions and BINPERSID go to the hooks (a
 * pickle using them without hooks fails). BUILD is accepted on dicts (the
 * state is kept in u.dict.state) and tensors (ignored); APPEND(S) only on
 * lists, SETITEM(S) only on dicts, ADDITEMS only on sets.
 *
 * Limits (each failure names the opcode offset): every length is checked
 * against the bytes left before anything is allocated; nesting deeper than
 * TS_PICKLE_MAX_DEPTH, a stack deeper than TS_PICKLE_MAX_STACK or more than
 * TS_PICKLE_MAX_MARKS open marks fail; a memo index must be below the
 * offset it appears at (a real pickler numbers them 0, 1, 2, ...), so the
 * memo never outgrows the input. Memory is O(input size).
 */
#ifndef TORSH_PICKLE_H
#define TORSH_PICKLE_H

#include "torsh/base.h"
#include "torsh/dtype.h"
#include "torsh/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TS_PICKLE_MAX_DEPTH 512
#define TS_PICKLE_MAX_STACK ((size_t)1 << 22)
#define TS_PICKLE_MAX_MARKS ((size_t)1 << 16)

typedef enum ts_pk_kind {
    TS_PK_NONE, TS_PK_BOOL, TS_PK_INT, TS_PK_FLOAT, TS_PK_STR, TS_PK_BYTES,
    TS_PK_TUPLE, TS_PK_LIST, TS_PK_SET, TS_PK_FROZENSET, TS_PK_DICT,
    TS_PK_GLOBAL, TS_PK_STORAGE, TS_PK_TENSOR,
    TS_PK_KIND_COUNT
} ts_pk_kind;

enum {
    TS_PK_ORDERED = 1,        /* dict: was a collections.OrderedDict */
    TS_PK_BIGINT = 2,         /* float: an int beyond int64, rounded */
    TS_PK_PARAMETER = 4,      /* tensor: was an nn.Parameter */
    TS_PK_REQUIRES_GRAD = 8,  /* tensor: requires_grad was True */
};

typedef struct ts_pkval ts_pkval;
struct ts_pkval {
    ts_pk_kind kind;
    uint32_t flags;
    union {
        bool b;                                               /* BOOL */
        int64_t i;                                            /* INT */
        double f;                                             /* FLOAT */
        struct { const char *s; size_t len; } str;            /* STR, BYTES, GLOBAL ("module.name"); NUL-terminated */
        struct { ts_pkval **items; size_t n, cap; } seq;      /* TUPLE, LIST, SET, FROZENSET */
        struct {
            ts_pkval **keys, **vals;                          /* n pairs in insertion order */
            size_t n, cap;
            ts_pkval *state;                                  /* BUILD state (an OrderedDict's _metadata) or NULL */
            uint32_t *index;                                  /* internal: hash index */
            size_t icap;
        } dict;
        struct {
            ts_storage *s;       /* owned by the document; NULL when `error` is set */
            ts_dtype dtype;      /* element type of the storage class */
            int64_t numel;       /* elements */
            const char *key;     /* the checkpoint's storage key */
            const char *error;   /* why it cannot be used (an unsupported dtype ...), or NULL */
        } storage;
        struct {
            ts_tensor *t;        /* owned by the document; NULL when `error` is set */
            const char *error;   /* a deferred failure: the reader names the tensor's place */
        } tensor;
    } u;
    uint32_t depth;          /* internal: nesting below this value */
    uint32_t aux;            /* internal (allow-list class of a GLOBAL; walk marks) */
};

typedef struct ts_pickle ts_pickle;

/* Hooks of a checkpoint reader. Each returns a value made with
 * ts_pickle_new() (owned by p), or NULL after ts_fail(...) — the unpickler
 * then fails with that message plus " (offset N)". */
typedef struct ts_pickle_hooks {
    void *ctx;
    /* BINPERSID: pid is the popped persistent id (borrowed). */
    ts_pkval *(*persistent_load)(ts_pickle *p, const ts_pkval *pid, void *ctx);
    /* REDUCE / NEWOBJ of an allowed torch callable (its "module.name") with
     * the argument tuple (borrowed). */
    ts_pkval *(*call)(ts_pickle *p, const char *callable, const ts_pkval *args, void *ctx);
} ts_pickle_hooks;

/* Unpickles data[0, n) up to its STOP opcode. hooks may be NULL; when
 * `consumed` is given it gets the number of bytes read (through STOP) and
 * bytes after STOP are allowed, otherwise they are an error. Returns a new
 * document (free with ts_pickle_free) or NULL. */
ts_pickle *ts_pickle_load(const void *data, size_t n, const ts_pickle_hooks *hooks, size_t *consumed);
void ts_pickle_free(ts_pickle *p);            /* NULL is fine */
const ts_pkval *ts_pickle_root(const ts_pickle *p);

/* For hooks: a new value of `kind` owned by p (zeroed), or NULL. What a
 * hook stores in a STORAGE (s, key, error) or a TENSOR (t, error) is
 * released by ts_pickle_free: one storage/tensor reference each, and the
 * strings with free() (so they must come from malloc/strdup). */
ts_pkval *ts_pickle_new(ts_pickle *p, ts_pk_kind kind);
/* A copy of s owned by p (NUL-terminated), or NULL. */
const char *ts_pickle_strdup(ts_pickle *p, const char *s);

/* Small helpers for readers. */
const char *ts_pk_kind_name(ts_pk_kind k);                           /* "dict", "tuple", ... */
/* The value of key `key` (a str key) in a dict, or NULL. */
const ts_pkval *ts_pk_dict_get(const ts_pkval *dict, const char *key);
/* True and *out when v is an int (or a bool, as Python counts it). */
bool ts_pk_as_int(const ts_pkval *v, int64_t *out);

#ifdef __cplusplus
}
#endif
#endif
