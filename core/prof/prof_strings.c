/* prof_strings.c — the recorder's interned strings (op names, input
 * descriptions, stack frames) and the trie of stacks, both keyed by hash
 * under one mutex. Ids count from 1 and live as long as the process; their
 * strings are stored in fixed chunks, so readers never see a moved array. */
#include "prof_internal.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK 4096
#define MAX_CHUNKS 16384            /* 64 Mi strings / stack nodes */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- strings ------------------------------------------------------------------ */
static struct {
    char **chunk[MAX_CHUNKS];
    int32_t count;
    int32_t *slot;                  /* hash table of ids (0 = empty) */
    uint32_t *hash;
    size_t cap;
} S;

static uint32_t fnv1a(const void *p, size_t n, uint32_t h)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 16777619u;
    return h;
}

static const char *str_at(int32_t id) { return S.chunk[id / CHUNK][id % CHUNK]; }

/* Grows a hash table of ids to twice its size; rehash reads the stored hashes. */
static bool grow(int32_t **slot, uint32_t **hash, size_t *cap)
{
    size_t ncap = *cap ? *cap * 2 : 1024;
    int32_t *ns = calloc(ncap, sizeof *ns);
    uint32_t *nh = calloc(ncap, sizeof *nh);
    if (!ns || !nh) { free(ns); free(nh); return false; }
    for (size_t i = 0; i < *cap; i++) {
        if (!(*slot)[i]) continue;
        size_t j = (*hash)[i] & (ncap - 1);
        while (ns[j]) j = (j + 1) & (ncap - 1);
        ns[j] = (*slot)[i];
        nh[j] = (*hash)[i];
    }
    free(*slot); free(*hash);
    *slot = ns; *hash = nh; *cap = ncap;
    return true;
}

int32_t ts_prof_intern(const char *s, size_t len)
{
    uint32_t h = fnv1a(s, len, 2166136261u);
    pthread_mutex_lock(&mu);
    if ((size_t)(S.count + 1) * 2 > S.cap && !grow(&S.slot, &S.hash, &S.cap)) goto fail;
    size_t i = h & (S.cap - 1);
    for (; S.slot[i]; i = (i + 1) & (S.cap - 1)) {
        if (S.hash[i] != h) continue;
        const char *o = str_at(S.slot[i]);
        if (strncmp(o, s, len) == 0 && o[len] == '\0') {
            int32_t id = S.slot[i];
            pthread_mutex_unlock(&mu);
            return id;
        }
    }
    int32_t id = S.count + 1;              /* id 0 is "none" */
    if (id / CHUNK >= MAX_CHUNKS) goto fail;
    if (!S.chunk[id / CHUNK] && !(S.chunk[id / CHUNK] = calloc(CHUNK, sizeof(char *)))) goto fail;
    char *copy = malloc(len + 1);
    if (!copy) goto fail;
    memcpy(copy, s, len);
    copy[len] = '\0';
    S.chunk[id / CHUNK][id % CHUNK] = copy;
    S.slot[i] = id;
    S.hash[i] = h;
    S.count = id;
    pthread_mutex_unlock(&mu);
    return id;
fail:
    pthread_mutex_unlock(&mu);
    return 0;
}

int32_t ts_prof_intern_cstr(const char *s) { return s ? ts_prof_intern(s, strlen(s)) : 0; }

const char *ts_prof_string(int32_t id)
{
    if (id <= 0) return "";
    pthread_mutex_lock(&mu);
    const char *s = id <= S.count ? str_at(id) : "";
    pthread_mutex_unlock(&mu);
    return s;
}

/* ---- descriptions of tensors -------------------------------------------------------- */
static void put(char *buf, size_t cap, size_t *len, const char *s)
{
    while (*s && *len + 1 < cap) buf[(*len)++] = *s++;
    buf[*len < cap ? *len : cap - 1] = '\0';
}

static void put_int(char *buf, size_t cap, size_t *len, int64_t v)
{
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u);
    if (v < 0) tmp[n++] = '-';
    while (n && *len + 1 < cap) buf[(*len)++] = tmp[--n];
    buf[*len < cap ? *len : cap - 1] = '\0';
}

void ts_prof_describe_one(const ts_tensor *t, char *buf, size_t cap, size_t *len)
{
    if (!t || cap == 0) return;
    if (*len) put(buf, cap, len, " ");
    put(buf, cap, len, ts_dtype_name(t->dtype));
    put(buf, cap, len, "[");
    for (int d = 0; d < t->ndim; d++) {
        if (d) put(buf, cap, len, ",");
        put_int(buf, cap, len, t->shape[d]);
    }
    put(buf, cap, len, "]");
}

int32_t ts_prof_describe(ts_tensor *const *tensors, int n)
{
    char buf[512];
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++) ts_prof_describe_one(tensors[i], buf, sizeof buf, &len);
    return len ? ts_prof_intern(buf, len) : 0;
}

/* ---- the stack trie ----------------------------------------------------------------- */
static struct {
    int32_t *parent[MAX_CHUNKS], *frame[MAX_CHUNKS];
    int32_t count;
    int32_t *slot;
    uint32_t *hash;
    size_t cap;
} K;

int32_t ts_prof_stack_push(int32_t parent, int32_t frame)
{
    int32_t key[2] = { parent, frame };
    uint32_t h = fnv1a(key, sizeof key, 2166136261u);
    pthread_mutex_lock(&mu);
    if ((size_t)(K.count + 1) * 2 > K.cap && !grow(&K.slot, &K.hash, &K.cap)) goto fail;
    size_t i = h & (K.cap - 1);
    for (; K.slot[i]; i = (i + 1) & (K.cap - 1)) {
        int32_t id = K.slot[i];
        if (K.hash[i] == h && K.parent[id / CHUNK][id % CHUNK] == parent && K.frame[id / CHUNK][id % CHUNK] == frame) {
            pthread_mutex_unlock(&mu);
            return id;
        }
    }
    int32_t id = K.count + 1;
    int c = id / CHUNK;
    if (c >= MAX_CHUNKS) goto fail;
    if (!K.parent[c]) {
        K.parent[c] = calloc(CHUNK, sizeof(int32_t));
        K.frame[c] = calloc(CHUNK, sizeof(int32_t));
        if (!K.parent[c] || !K.frame[c]) {
            free(K.parent[c]); free(K.frame[c]);
            K.parent[c] = K.frame[c] = NULL;
            goto fail;
        }
    }
    K.parent[c][id % CHUNK] = parent;
    K.frame[c][id % CHUNK] = frame;
    K.slot[i] = id;
    K.hash[i] = h;
    K.count = id;
    pthread_mutex_unlock(&mu);
    return id;
fail:
    pthread_mutex_unlock(&mu);
    return 0;
}

bool ts_prof_stack_node(int32_t id, int32_t *parent, int32_t *frame)
{
    pthread_mutex_lock(&mu);
    bool ok = id > 0 && id <= K.count;
    if (ok) {
        *parent = K.parent[id / CHUNK][id % CHUNK];
        *frame = K.frame[id / CHUNK][id % CHUNK];
    }
    pthread_mutex_unlock(&mu);
    return ok;
}

int32_t ts_prof_stack_count(void)
{
    pthread_mutex_lock(&mu);
    int32_t n = K.count;
    pthread_mutex_unlock(&mu);
    return n;
}
