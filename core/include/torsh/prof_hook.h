/* torsh/prof_hook.h — the one hook through which the profiler (core/prof)
 * sees core ops and graph nodes. When no profiler is active the hook is a
 * NULL pointer, so an instrumented call site costs one load and one branch.
 *
 *     void *tok = TS_PROF_BEGIN(TS_PROF_NODE, node->name, node->op_type, in, n_in);
 *     ... run ...
 *     TS_PROF_END(tok, out, n_out);
 *
 * The hook functions are installed by the profiler (ts_prof_set_hooks);
 * begin returns an opaque token (NULL when it chose not to record) that end
 * receives. Both may be called from any thread.
 */
#ifndef TORSH_PROF_HOOK_H
#define TORSH_PROF_HOOK_H

#include "torsh/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ts_prof_kind {
    TS_PROF_OP = 0,     /* a core op called from the binding (name = op name) */
    TS_PROF_NODE = 1,   /* a graph node run by the executor (name = node name, op = op type) */
} ts_prof_kind;

typedef struct ts_prof_hooks {
    void *(*begin)(ts_prof_kind kind, const char *name, const char *op,
                   ts_tensor *const *inputs, int n_inputs);
    void (*end)(void *token, ts_tensor *const *outputs, int n_outputs);
} ts_prof_hooks;

/* The installed hooks, or NULL (the default). */
extern const ts_prof_hooks *volatile ts_prof_active_hooks;
void ts_prof_set_hooks(const ts_prof_hooks *hooks);   /* NULL uninstalls */

#define TS_PROF_BEGIN(kind, name, op, in, n) \
    (ts_prof_active_hooks ? ts_prof_active_hooks->begin((kind), (name), (op), (in), (n)) : NULL)
#define TS_PROF_END(tok, out, n) \
    do { if (tok && ts_prof_active_hooks) ts_prof_active_hooks->end((tok), (out), (n)); } while (0)

#ifdef __cplusplus
}
#endif
#endif
