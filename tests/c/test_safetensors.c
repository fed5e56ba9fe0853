/* test_safetensors.c — C tests of the .safetensors reader and writer
 * (torsh/safetensors.h): the writer's bytes against the reference
 * implementation's own test vectors (safetensors/src/tensor.rs), write
 * order and padding, round trips of every dtype as mapped read-only views
 * and as copies, zero-size / 0-dim / strided tensors, unsupported dtypes,
 * refusals of broken files with messages naming the problem, failed writes
 * leaving the old file, and a replay of the fuzz seed corpus
 * (tests/fuzz/corpus_safetensors). */
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <torsh/safetensors.h>
#include <torsh/torsh.h>
#include <unistd.h>

static const char *tmpdir;

/* A file with header text `json` (length field = strlen unless n != ~0) and data. */
static const char *craft(const char *name, const char *json, uint64_t n, const void *data, size_t data_len)
{
    size_t jl = strlen(json);
    unsigned char *b = malloc(8 + jl + data_len + 1);
    uint64_t len = n == ~(uint64_t)0 ? jl : n;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(len >> (8 * i));
    memcpy(b + 8, json, jl);
    if (data_len) memcpy(b + 8 + jl, data, data_len);
    const char *p = check_write_file(name, b, 8 + jl + data_len);
    free(b);
    return p;
}
#define ANY_LEN (~(uint64_t)0)

/* ---- the writer against the reference's test vectors ------------------------------ */

static void test_reference_vectors(void)
{
    /* test_serialization: {"attn.0": F32 [1,2,3] = 0..5} */
    static const unsigned char want[] = {
        64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
        116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
        58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
        101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
        0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64
    };
    ts_tensor *a = ts_arange(0, 6, 1, TS_F32), *v = a ? ts_view(a, (int64_t[]){ 1, 2, 3 }, 3) : NULL;
    const char *name = "attn.0";
    const char *p = check_tmp_path("attn.safetensors");
    CHECK(v && ts_safetensors_write(p, &name, &v, 1, NULL, NULL, 0) == TS_OK);
    size_t n = 0;
    unsigned char *got = check_read_file(p, &n);
    CHECK(got && n == sizeof want && memcmp(got, want, n) == 0);
    free(got);
    /* test_serialization_forced_alignement: "attn0", [1,1,2,3]: 7 spaces of padding */
    ts_tensor *v4 = a ? ts_view(a, (int64_t[]){ 1, 1, 2, 3 }, 4) : NULL;
    name = "attn0";
    CHECK(v4 && ts_safetensors_write(p, &name, &v4, 1, NULL, NULL, 0) == TS_OK);
    got = check_read_file(p, &n);
    CHECK(got && n == 8 + 72 + 24 && got[0] == 72 && memcmp(got + 8 + 65, "       ", 7) == 0 && got[8 + 64] == '}');
    free(got);
    /* test_empty: no tensors, with and without {"framework": "pt"} */
    CHECK(ts_safetensors_write(p, NULL, NULL, 0, NULL, NULL, 0) == TS_OK);
    got = check_read_file(p, &n);
    CHECK(got && n == 16 && memcmp(got, "\x08\0\0\0\0\0\0\0{}      ", 16) == 0);
    free(got);
    const char *k = "framework", *val = "pt";
    CHECK(ts_safetensors_write(p, NULL, NULL, 0, &k, &val, 1) == TS_OK);
    got = check_read_file(p, &n);
    CHECK(got && n == 48 && got[0] == 40 && memcmp(got + 8, "{\"__metadata__\":{\"framework\":\"pt\"}}     ", 40) == 0);
    free(got);
    ts_tensor_release(v);
    ts_tensor_release(v4);
    ts_tensor_release(a);
}

/* Tensors sorted by dtype size (descending) then name; metadata keys sorted. */
static void test_write_order(void)
{
    ts_tensor *b = ts_tensor_zeros((int64_t[]){ 2 }, 1, TS_BOOL);
    ts_tensor *f = ts_tensor_zeros((int64_t[]){ 1 }, 1, TS_F32);
    ts_tensor *g = ts_tensor_zeros((int64_t[]){ 1 }, 1, TS_F32);
    ts_tensor *l = ts_tensor_zeros((int64_t[]){ 1 }, 1, TS_I64);
    ts_tensor *h = ts_tensor_zeros((int64_t[]){ 1 }, 1, TS_BF16);
    const char *names[] = { "a_bool", "z_f32", "b_f32", "m_i64", "c_bf16" };
    ts_tensor *ts[] = { b, f, g, l, h };
    const char *mk[] = { "zeta", "alpha\n" }, *mv[] = { "1", "q\"x" };
    const char *p = check_tmp_path("order.safetensors");
    CHECK(ts_safetensors_write(p, names, ts, 5, mk, mv, 2) == TS_OK);
    size_t n = 0;
    unsigned char *got = check_read_file(p, &n);
    const char *want = "{\"__metadata__\":{\"alpha\\n\":\"q\\\"x\",\"zeta\":\"1\"},"
                       "\"m_i64\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
                       "\"b_f32\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                       "\"z_f32\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]},"
                       "\"c_bf16\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[16,18]},"
                       "\"a_bool\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[18,20]}}";
    uint64_t hl = 0;
    for (int i = 7; got && n >= 8 && i >= 0; i--) hl = hl << 8 | got[i];
    CHECK(got && hl % 8 == 0 && hl >= strlen(want) && memcmp(got + 8, want, strlen(want)) == 0);
    CHECK(got && n == 8 + hl + 20);
    free(got);
    ts_safetensors *sf = ts_safetensors_open(p);
    CHECK(sf && ts_safetensors_count(sf) == 5);
    if (sf) {
        CHECK(strcmp(ts_safetensors_name(sf, 0), "m_i64") == 0 && strcmp(ts_safetensors_name(sf, 4), "a_bool") == 0);
        CHECK(ts_safetensors_meta_count(sf) == 2 && strcmp(ts_safetensors_meta_get(sf, "alpha\n"), "q\"x") == 0);
        CHECK(ts_safetensors_find(sf, "c_bf16") == 3 && ts_safetensors_find(sf, "nope") == -1);
    }
    ts_safetensors_close(sf);
    for (int i = 0; i < 5; i++) ts_tensor_release(ts[i]);
}

/* ---- round trips ----------------------------------------------------------------------- */

static ts_tensor *sample(ts_dtype dt)
{
    ts_tensor *r = ts_arange(-7, 5, 1, TS_F64);
    ts_tensor *s = r ? ts_view(r, (int64_t[]){ 3, 4 }, 2) : NULL;
    ts_tensor *t = s ? ts_to_dtype(s, dt) : NULL;
    ts_tensor_release(s);
    ts_tensor_release(r);
    return t;
}

static bool same(const ts_tensor *a, const ts_tensor *b)
{
    if (a->dtype != b->dtype || a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return false;
    ts_tensor *ca = ts_contiguous(a), *cb = ts_contiguous(b);
    bool eq = ca && cb && memcmp(ts_tensor_data(ca), ts_tensor_data(cb), ts_tensor_nbytes(ca)) == 0;
    ts_tensor_release(ca);
    ts_tensor_release(cb);
    return eq;
}

static void test_round_trip(void)
{
    ts_tensor *ts[TS_DTYPE_COUNT + 3];
    const char *names[TS_DTYPE_COUNT + 3];
    char namebuf[TS_DTYPE_COUNT][16];
    for (int d = 0; d < TS_DTYPE_COUNT; d++) {
        ts[d] = sample((ts_dtype)d);
        snprintf(namebuf[d], sizeof namebuf[d], "t.%s", ts_dtype_name((ts_dtype)d));
        names[d] = namebuf[d];
    }
    int n = TS_DTYPE_COUNT;
    ts_tensor *base = sample(TS_F32);
    ts[n] = base ? ts_transpose(base, 0, 1) : NULL;         /* strided: written row-major */
    names[n++] = "transposed";
    ts[n] = ts_tensor_scalar(2.5, TS_F64);
    names[n++] = "scalar";
    ts[n] = ts_tensor_zeros((int64_t[]){ 0, 3 }, 2, TS_I16);
    names[n++] = "empty";
    const char *p = check_tmp_path("all.safetensors");
    CHECK(ts_safetensors_write(p, names, ts, (size_t)n, NULL, NULL, 0) == TS_OK);
    ts_safetensors *f = ts_safetensors_open(p);
    CHECK(f && ts_safetensors_count(f) == (size_t)n);
    for (int i = 0; f && i < n; i++) {
        long k = ts_safetensors_find(f, names[i]);
        CHECK(k >= 0);
        if (k < 0) continue;
        const ts_safetensors_entry *e = ts_safetensors_entry_at(f, (size_t)k);
        CHECK(e->dtype == ts[i]->dtype && strcmp(e->dtype_name, ts_safetensors_dtype_name(ts[i]->dtype)) == 0);
        ts_tensor *view = ts_safetensors_tensor(f, (size_t)k, 0);
        ts_tensor *copy = ts_safetensors_tensor(f, (size_t)k, TS_SAFETENSORS_COPY);
        CHECK(view && copy && same(view, ts[i]) && same(copy, ts[i]));
        if (view && copy) {
            CHECK(view->storage->kind == TS_STORAGE_MMAP && view->storage->readonly);
            CHECK(!copy->storage->readonly && copy->storage->kind == TS_STORAGE_HEAP);
            if (ts_tensor_numel(view) > 0) {
                CHECK(ts_fill_(view, 1) != TS_OK);            /* read-only */
                CHECK(ts_fill_(copy, 1) == TS_OK);
            }
        }
        ts_tensor_release(view);
        ts_tensor_release(copy);
    }
    /* a view outlives the handle */
    ts_tensor *keep = f ? ts_safetensors_tensor(f, 0, 0) : NULL;
    ts_safetensors_close(f);
    CHECK(keep && ts_tensor_numel(keep) == 12);
    ts_tensor_release(keep);
    for (int i = 0; i < n; i++) ts_tensor_release(ts[i]);
    ts_tensor_release(base);
}

static void test_write_refusals(void)
{
    ts_tensor *t = ts_tensor_zeros((int64_t[]){ 2 }, 1, TS_F32);
    const char *p = check_tmp_path("refused.safetensors");
    const char *dup[] = { "a", "a" };
    ts_tensor *two[] = { t, t };
    CHECK(ts_safetensors_write(p, dup, two, 2, NULL, NULL, 0) != TS_OK && check_error_has("duplicate tensor name 'a'"));
    const char *meta = "__metadata__";
    CHECK(ts_safetensors_write(p, &meta, &t, 1, NULL, NULL, 0) != TS_OK && check_error_has("__metadata__"));
    const char *bad = "\xff\xfe";
    CHECK(ts_safetensors_write(p, &bad, &t, 1, NULL, NULL, 0) != TS_OK && check_error_has("UTF-8"));
    const char *mk[] = { "k", "k" }, *mv[] = { "1", "2" }, *ok = "w";
    CHECK(ts_safetensors_write(p, &ok, &t, 1, mk, mv, 2) != TS_OK && check_error_has("duplicate metadata key 'k'"));
    CHECK(access(p, F_OK) != 0);                        /* nothing was created */
    /* a save into a missing folder fails and leaves no temp file behind */
    CHECK(ts_safetensors_write(check_tmp_path("nodir/x.safetensors"), &ok, &t, 1, NULL, NULL, 0) != TS_OK);
    /* an existing file is replaced whole */
    CHECK(ts_safetensors_write(p, &ok, &t, 1, NULL, NULL, 0) == TS_OK);
    ts_safetensors *f = ts_safetensors_open(p);
    ts_tensor *old = f ? ts_safetensors_tensor(f, 0, 0) : NULL;
    ts_safetensors_close(f);
    ts_tensor *t2 = ts_tensor_full((int64_t[]){ 3 }, 1, TS_F64, 4);
    CHECK(ts_safetensors_write(p, &ok, &t2, 1, NULL, NULL, 0) == TS_OK);
    CHECK(old && ts_tensor_numel(old) == 2 && ts_tensor_item_at(old, 1) == 0);   /* the old mapping stays valid */
    f = ts_safetensors_open(p);
    ts_tensor *now = f ? ts_safetensors_tensor(f, 0, 0) : NULL;
    CHECK(now && now->dtype == TS_F64 && ts_tensor_item_at(now, 2) == 4);
    ts_safetensors_close(f);
    ts_tensor_release(now);
    ts_tensor_release(old);
    ts_tensor_release(t2);
    ts_tensor_release(t);
}

/* ---- broken files ---------------------------------------------------------------------- */

static void expect_refused(const char *path, const char *fragment)
{
    ts_clear_error();
    ts_safetensors *f = ts_safetensors_open(path);
    CHECK(f == NULL && check_error_has(fragment));
    ts_safetensors_close(f);
}

static void test_refusals(void)
{
    unsigned char z[64] = { 0 };
    expect_refused(check_write_file("short", "\x08\0\0", 3), "truncated: 3 bytes");
    expect_refused(craft("lying", "{}", 4096, NULL, 0), "header length says 4096 bytes, only 2 follow");
    expect_refused(craft("huge", "{}", 100000001, NULL, 0), "over the limit of 100000000");
    expect_refused(craft("overlap", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                                    "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}", ANY_LEN, z, 6),
                   "tensor 'b' (data_offsets [2, 6]) overlaps tensor 'a'");
    expect_refused(craft("gap", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
                                "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]}}", ANY_LEN, z, 6),
                   "gap in the data: tensor 'b' starts at byte 4");
    expect_refused(craft("gap0", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]}}", ANY_LEN, z, 3),
                   "first tensor 'a' starts at byte 1");
    expect_refused(craft("len", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", ANY_LEN, z, 20),
                   "tensor 'w': data_offsets [0, 20] hold 20 bytes, but F32 [2, 3] needs 24");
    expect_refused(craft("dup", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                                "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", ANY_LEN, z, 2),
                   "duplicate tensor name 'a'");
    expect_refused(craft("dtype", "{\"w\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", ANY_LEN, z, 4),
                   "tensor 'w': unknown dtype 'F33'");
    expect_refused(craft("trunc", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", ANY_LEN, z, 10),
                   "truncated: the tensors need 16 bytes");
    expect_refused(craft("trail", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", ANY_LEN, z, 3),
                   "2 bytes after the last tensor");
    expect_refused(craft("float", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1.0],\"data_offsets\":[0,1]}}", ANY_LEN, z, 1),
                   "fraction or exponent");
    expect_refused(craft("neg", "{\"w\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", ANY_LEN, z, 1),
                   "non-negative integer");
    expect_refused(craft("field", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":1}}", ANY_LEN, z, 1),
                   "tensor 'w': unknown field 'x'");
    expect_refused(craft("missing", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1]}}", ANY_LEN, z, 1), "tensor 'w' has no 'data_offsets'");
    expect_refused(craft("meta", "{\"__metadata__\":{\"a\":1}}", ANY_LEN, NULL, 0), "value of 'a' is not a string");
    expect_refused(craft("meta2", "{\"__metadata__\":{},\"__metadata__\":{}}", ANY_LEN, NULL, 0), "duplicate key '__metadata__'");
    expect_refused(craft("start", " {}", ANY_LEN, NULL, 0), "does not start with '{'");
    expect_refused(craft("after", "{} x", ANY_LEN, NULL, 0), "unexpected text after the header object");
    expect_refused(craft("utf8", "{\"\xc3\x28\":1}", ANY_LEN, NULL, 0), "not valid UTF-8");
    expect_refused(craft("nul", "{\"a\\u0000\":{}}", ANY_LEN, NULL, 0), "NUL character");
    expect_refused(craft("surrogate", "{\"a\\ud800\":{}}", ANY_LEN, NULL, 0), "lone high surrogate");
    expect_refused(craft("dims", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}",
                         ANY_LEN, z, 1), "more than 8 dims");
    expect_refused(craft("overflow", "{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,1]}}",
                         ANY_LEN, z, 1), "overflows");
    expect_refused(craft("bits", "{\"w\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,1]}}", ANY_LEN, z, 1),
                   "not a whole number of bytes");
    expect_refused(craft("big", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,18446744073709551616]}}",
                         ANY_LEN, z, 1), "integer too large");
    expect_refused(check_tmp_path("does-not-exist"), "cannot open");
    expect_refused(tmpdir, "not a regular file");
}

/* Data at odd offsets, BOOL bytes other than 0/1, dtypes torsh lacks. */
static void test_special_layouts(void)
{
    float v[2] = { 1.5f, -2 };
    const char *p = craft("odd", "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", ANY_LEN, v, 8);
    ts_safetensors *f = ts_safetensors_open(p);
    ts_tensor *t = f ? ts_safetensors_tensor(f, 0, 0) : NULL;
    CHECK(t && !t->storage->readonly && ts_tensor_item_at(t, 0) == 1.5 && ts_tensor_item_at(t, 1) == -2);
    ts_tensor_release(t);
    ts_safetensors_close(f);
    p = craft("bool", "{\"b\":{\"dtype\":\"BOOL\",\"shape\":[4],\"data_offsets\":[0,4]}}   ", ANY_LEN, "\0\1\2\377", 4);
    f = ts_safetensors_open(p);
    t = f ? ts_safetensors_tensor(f, 0, 0) : NULL;
    CHECK(t && memcmp(ts_tensor_data(t), "\0\1\1\1", 4) == 0);
    ts_tensor_release(t);
    ts_safetensors_close(f);
    p = craft("u16", "{\"a\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[0,2]},"
                     "\"b\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[2,4]}}", ANY_LEN, "\1\0\2\0", 4);
    f = ts_safetensors_open(p);
    CHECK(f && ts_safetensors_count(f) == 2);
    if (f) {
        CHECK(ts_safetensors_entry_at(f, 0)->dtype == TS_DTYPE_COUNT);
        CHECK(ts_safetensors_tensor(f, 0, 0) == NULL && check_error_has("tensor 'a' has dtype U16"));
        t = ts_safetensors_tensor(f, 1, 0);
        CHECK(t && ts_tensor_item_at(t, 0) == 2);
        ts_tensor_release(t);
    }
    ts_safetensors_close(f);
    /* header order differs from data order: entries come in data order; escapes decode */
    p = craft("order", "{\"b\":{\"data_offsets\":[1,2],\"shape\":[],\"dtype\":\"U8\"},"
                       "\"a\\u00e9\\ud83d\\ude00\\\"\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]},"
                       "\"__metadata__\":null}", ANY_LEN, "\7\11", 2);
    f = ts_safetensors_open(p);
    CHECK(f && ts_safetensors_count(f) == 2 && ts_safetensors_meta_count(f) == 0);
    if (f) {
        CHECK(strcmp(ts_safetensors_name(f, 0), "a\xc3\xa9\xf0\x9f\x98\x80\"") == 0);
        t = ts_safetensors_tensor(f, 1, 0);
        CHECK(t && t->ndim == 0 && ts_tensor_item_at(t, 0) == 9);
        ts_tensor_release(t);
    }
    ts_safetensors_close(f);
}

/* ---- the seed corpus ------------------------------------------------------------------- */

static void open_seed(const char *path, const char *name, void *ctx)
{
    (void)ctx;
    ts_clear_error();
    ts_safetensors *f = ts_safetensors_open(path);
    bool broken = strncmp(name, "bad_", 4) == 0;
    CHECK(broken ? f == NULL && ts_last_error()[0] : f != NULL);
    if (!broken && !f) fprintf(stderr, "  %s: %s\n", name, ts_last_error());
    for (size_t i = 0; f && i < ts_safetensors_count(f); i++) {
        ts_tensor *t = ts_safetensors_tensor(f, i, 0);
        CHECK(t || ts_safetensors_entry_at(f, i)->dtype == TS_DTYPE_COUNT);
        ts_tensor_release(t);
    }
    if (f && strcmp(name, "all_dtypes.safetensors") == 0) {
        CHECK(ts_safetensors_count(f) == 10 && strcmp(ts_safetensors_meta_get(f, "format"), "pt") == 0);
        long k = ts_safetensors_find(f, "bf16");
        ts_tensor *t = k >= 0 ? ts_safetensors_tensor(f, (size_t)k, 0) : NULL;
        CHECK(t && t->dtype == TS_BF16 && ts_tensor_item_at(t, 5) == 2.5);
        ts_tensor_release(t);
    }
    ts_safetensors_close(f);
}

static void test_corpus(void)
{
    int64_t before = ts_mem_get_stats(TS_CPU).live_bytes;
    CHECK(check_each_file("fuzz/corpus_safetensors", open_seed, NULL) >= 15);
    CHECK(ts_mem_get_stats(TS_CPU).live_bytes == before);
}

int main(void)
{
    if (!(tmpdir = check_tmpdir("st"))) return 1;
    RUN(test_reference_vectors);
    RUN(test_write_order);
    RUN(test_round_trip);
    RUN(test_write_refusals);
    RUN(test_refusals);
    RUN(test_special_layouts);
    RUN(test_corpus);
    return check_finish("safetensors");
}
