/* registry.c — the op registry of torsh/graph.h: ts_op_register,
 * ts_op_find, ts_op_list.
 *
 * Defs are copied (strings too) into individually allocated entries, so the
 * pointer ts_op_find returns stays valid for the life of the process (a
 * re-registration updates the entry in place, calling the old free_user).
 * The built-in families (ts_graph_register_shape_ops, ts_graph_register_nn_ops,
 * see ops.h) are registered once, under pthread_once, before the first
 * lookup or registration; calls made from inside that registration skip
 * the once (a thread-local flag) so they do not deadlock. A rwlock guards
 * the table.
 */
#include "graph_internal.h"
#include "ops.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct op_entry {
    ts_op_def def;      /* op_type / domain point at the copies below */
    char *op_type, *domain;
} op_entry;

static op_entry **table;
static int n_entries, cap_entries;
static pthread_rwlock_t table_lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_once_t builtins_once = PTHREAD_ONCE_INIT;
static _Thread_local bool in_builtin_init;

static void register_builtins(void)
{
    in_builtin_init = true;
    ts_graph_register_shape_ops();
    ts_graph_register_nn_ops();
    in_builtin_init = false;
}

static void ensure_builtins(void)
{
    if (!in_builtin_init) pthread_once(&builtins_once, register_builtins);
}

/* Index of (domain, op_type) or -1; the caller holds the lock. */
static int find_locked(const char *domain, const char *op_type)
{
    for (int i = 0; i < n_entries; i++)
        if (strcmp(table[i]->op_type, op_type) == 0 && strcmp(table[i]->domain, domain) == 0) return i;
    return -1;
}

ts_status ts_op_register(const ts_op_def *def)
{
    if (!def || !def->op_type || !*def->op_type) return ts_fail(TS_ERR_ARG, "op_register: missing op type");
    if (!def->run) return ts_fail(TS_ERR_ARG, "op_register: op %s has no kernel", def->op_type);
    ensure_builtins();
    const char *domain = ts_graph_norm_domain(def->domain);
    char *op_type = ts_graph_strdup(def->op_type), *dom = ts_graph_strdup(domain);
    if (!op_type || !dom) {
        free(op_type);
        free(dom);
        return ts_fail(TS_ERR_MEMORY, "op_register: out of memory");
    }
    pthread_rwlock_wrlock(&table_lock);
    int i = find_locked(dom, op_type);
    op_entry *e;
    if (i >= 0) {
        e = table[i];
        void *old_user = e->def.user;
        void (*old_free)(void *) = e->def.free_user;
        free(e->op_type);
        free(e->domain);
        e->op_type = op_type;
        e->domain = dom;
        e->def = *def;
        e->def.op_type = op_type;
        e->def.domain = dom;
        if (old_free && old_user != def->user) old_free(old_user);
    } else {
        e = calloc(1, sizeof *e);
        if (e && n_entries == cap_entries) {
            int nc = cap_entries ? cap_entries * 2 : 128;
            op_entry **t = realloc(table, (size_t)nc * sizeof *t);
            if (t) {
                table = t;
                cap_entries = nc;
            }
        }
        if (!e || n_entries == cap_entries) {
            pthread_rwlock_unlock(&table_lock);
            free(e);
            free(op_type);
            free(dom);
            return ts_fail(TS_ERR_MEMORY, "op_register: out of memory");
        }
        e->op_type = op_type;
        e->domain = dom;
        e->def = *def;
        e->def.op_type = op_type;
        e->def.domain = dom;
        table[n_entries++] = e;
    }
    pthread_rwlock_unlock(&table_lock);
    return TS_OK;
}

const ts_op_def *ts_op_find(const char *domain, const char *op_type)
{
    if (!op_type) return NULL;
    ensure_builtins();
    domain = ts_graph_norm_domain(domain);
    pthread_rwlock_rdlock(&table_lock);
    int i = find_locked(domain, op_type);
    const ts_op_def *d = i >= 0 ? &table[i]->def : NULL;
    pthread_rwlock_unlock(&table_lock);
    return d;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

const char *ts_op_list(const char *domain)
{
    static _Thread_local char buf[8192];
    ensure_builtins();
    domain = ts_graph_norm_domain(domain);
    buf[0] = '\0';
    pthread_rwlock_rdlock(&table_lock);
    const char **names = malloc((size_t)(n_entries ? n_entries : 1) * sizeof *names);
    int n = 0;
    if (names)
        for (int i = 0; i < n_entries; i++)
            if (strcmp(table[i]->domain, domain) == 0) names[n++] = table[i]->op_type;
    if (names) qsort(names, (size_t)n, sizeof *names, cmp_str);
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (len + l + 8 >= sizeof buf) {
            memcpy(buf + len, ", ...", 6);
            break;
        }
        if (i) {
            memcpy(buf + len, ", ", 2);
            len += 2;
        }
        memcpy(buf + len, names[i], l + 1);
        len += l;
    }
    pthread_rwlock_unlock(&table_lock);
    free(names);
    return buf;
}
