/* fuzz_pickle.c — libFuzzer target of the restricted unpickler
 * (core/io/pickle.c): any bytes give a value tree or an error message, never
 * a crash, a leak, a hang or an allocation the input does not justify. The
 * bytes are unpickled twice: without hooks (a plain pickle) and with
 * stand-in checkpoint hooks that turn every persistent id into a small
 * storage and every torch rebuild call into a tensor over it, so the hook
 * paths (and their failures) run too. Every value reached is walked, with a
 * visited mark, as a reader would. Seeds: tests/fuzz/corpus_pickle/.
 */
// fuzz-sources: core/io/pickle.c
// fuzz-corpus: tests/fuzz/corpus_pickle
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

/* Any pid -> a 16-byte storage; any torch call -> a 2-element f32 tensor over it. */
static ts_pkval *fake_persistent_load(ts_pickle *p, const ts_pkval *pid, void *ctx)
{
    (void)ctx;
    if (pid->kind != TS_PK_TUPLE) return ts_fail_null(TS_ERR_FORMAT, "fake: pid is not a tuple");
    ts_pkval *v = ts_pickle_new(p, TS_PK_STORAGE);
    if (!v) return NULL;
    v->u.storage.s = ts_storage_new(16);
    if (!v->u.storage.s) return NULL;
    memset(v->u.storage.s->data, 0, 16);
    v->u.storage.dtype = TS_F32;
    v->u.storage.numel = 4;
    v->u.storage.key = strdup("k");
    return v;
}

static ts_pkval *fake_call(ts_pickle *p, const char *fn, const ts_pkval *args, void *ctx)
{
    (void)ctx;
    if (args->u.seq.n == 0 || args->u.seq.items[0]->kind != TS_PK_STORAGE)
        return ts_fail_null(TS_ERR_FORMAT, "fake: %s wants a storage first", fn);
    const ts_pkval *st = args->u.seq.items[0];
    ts_pkval *v = ts_pickle_new(p, TS_PK_TENSOR);
    if (!v) return NULL;
    int64_t shape = 2;
    v->u.tensor.t = ts_tensor_from_storage(st->u.storage.s, TS_F32, 0, &shape, NULL, 1);
    return v->u.tensor.t ? v : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ts_clear_error();
    ts_pickle *p = ts_pickle_load(data, size, NULL, NULL);
    if (fuzz_ok(p != NULL)) fuzz_walk((ts_pkval *)ts_pickle_root(p), 0);
    ts_pickle_free(p);

    ts_pickle_hooks hooks = { .persistent_load = fake_persistent_load, .call = fake_call };
    size_t used = 0;
    ts_clear_error();
    p = ts_pickle_load(data, size, &hooks, &used);
    if (fuzz_ok(p != NULL)) {
        if (used == 0 || used > size) __builtin_trap();
        fuzz_walk((ts_pkval *)ts_pickle_root(p), 0);
    }
    ts_pickle_free(p);
    return 0;
}
