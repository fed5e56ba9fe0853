/* test_npz.c — C tests of torsh/npz.h: .npy headers byte-identical to
 * numpy's (shapes of every rank, the spare-space rule), the in-memory .npy
 * parser's refusals, an .npz round trip with zero-copy views, and a replay
 * of the fuzz seed corpus (tests/fuzz/corpus_npz, archives made by NumPy). */
#include "check.h"

#include <string.h>
#include <torsh/npz.h>
#include <torsh/torsh.h>

/* numpy 1.24: np.save(b, np.zeros(shape, '<f4')) header lengths and texts */
static void test_npy_header(void)
{
    struct { int64_t shape[3]; int ndim; ts_dtype dt; const char *dict; size_t total; } cases[] = {
        { { 0 }, 0, TS_F32, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 128 },
        { { 5 }, 1, TS_F32, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", 128 },
        { { 2, 3 }, 2, TS_I64, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }", 128 },
        { { 0, 7, 1 }, 3, TS_BOOL, "{'descr': '|b1', 'fortran_order': False, 'shape': (0, 7, 1), }", 128 },
        { { 123456789012, 0 }, 2, TS_U8, "{'descr': '|u1', 'fortran_order': False, 'shape': (123456789012, 0), }", 128 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        ts_tensor *t = ts_tensor_zeros(cases[c].shape, cases[c].ndim, cases[c].dt);
        unsigned char h[TS_NPY_HEADER_MAX];
        size_t n = 0;
        CHECK(t && ts_npy_header(t, h, sizeof h, &n) == TS_OK);
        size_t dl = strlen(cases[c].dict);
        CHECK(n == cases[c].total && memcmp(h, "\x93NUMPY\x01\x00", 8) == 0);
        CHECK((size_t)(h[8] | h[9] << 8) == n - 10 && memcmp(h + 10, cases[c].dict, dl) == 0 && h[n - 1] == '\n');
        for (size_t i = 10 + dl; i < n - 1; i++) CHECK(h[i] == ' ');
        ts_npy_info info;
        CHECK(ts_npy_parse(h, n, "hdr", &info) == TS_OK || ts_tensor_numel(t) > 0);
        ts_tensor_release(t);
    }
    ts_tensor *b = ts_tensor_zeros((int64_t[]){ 2 }, 1, TS_BF16);
    unsigned char h[TS_NPY_HEADER_MAX];
    size_t n;
    CHECK(ts_npy_header(b, h, sizeof h, &n) != TS_OK && check_error_has("NumPy has no bf16 dtype"));
    ts_tensor_release(b);
}

static void test_npy_parse_refusals(void)
{
    ts_npy_info info;
    const char pre[] = "\x93NUMPY\x01\x00";
    CHECK(ts_npy_parse("abc", 3, "x", &info) != TS_OK && check_error_has("x: not a .npy array"));
    char buf[200];
    const char *dicts[] = {
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",       /* 4 bytes short */
        "{'descr': '<c8', 'fortran_order': False, 'shape': (), }",
        "{'descr': '<f4', 'fortran_order': False, }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}",
        "{'descr': '<f4', 'fortran_order': maybe, 'shape': (1,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
    };
    const char *want[] = { "truncated: shape [2] of <f4 needs 8 bytes of data, there are 4", "dtype '<c8' is not supported",
                           "lacks 'shape'", "unexpected or repeated header key 'x'", "True or False",
                           "non-negative integer" };
    for (size_t i = 0; i < sizeof dicts / sizeof *dicts; i++) {
        size_t dl = strlen(dicts[i]);
        memcpy(buf, pre, 8);
        buf[8] = (char)(dl & 0xFF);
        buf[9] = 0;
        memcpy(buf + 10, dicts[i], dl);
        memset(buf + 10 + dl, 0, 4);                    /* 4 data bytes */
        CHECK(ts_npy_parse(buf, 10 + dl + 4, "x", &info) != TS_OK && check_error_has(want[i]));
    }
}

static void test_npz_round_trip(void)
{
    ts_tensor *a = ts_arange(0, 12, 1, TS_F32), *a2 = a ? ts_view(a, (int64_t[]){ 3, 4 }, 2) : NULL;
    ts_tensor *b = a2 ? ts_transpose(a2, 0, 1) : NULL;             /* strided */
    ts_tensor *c = ts_tensor_scalar(7, TS_I64);
    const char *names[] = { "a", "sub/b", "c" };
    ts_tensor *ts[] = { a2, b, c };
    const char *p = check_tmp_path("rt.npz");
    CHECK(ts_npz_write(p, names, ts, 3) == TS_OK);
    ts_npz *z = ts_npz_open(p);
    CHECK(z && ts_npz_count(z) == 3 && strcmp(ts_npz_name(z, 1), "sub/b") == 0 && ts_npz_find(z, "c") == 2);
    for (size_t i = 0; z && i < 3; i++) {
        ts_tensor *v = ts_npz_tensor(z, i, TS_NPZ_MMAP), *h = ts_npz_tensor(z, i, 0);
        CHECK(v && h && v->storage->readonly && !h->storage->readonly);
        ts_tensor *want = ts_contiguous(ts[i]);
        CHECK(v && want && v->ndim == want->ndim && memcmp(ts_tensor_data(v), ts_tensor_data(want), ts_tensor_nbytes(want)) == 0);
        CHECK(h && want && memcmp(ts_tensor_data(h), ts_tensor_data(want), ts_tensor_nbytes(want)) == 0);
        CHECK(v && (uintptr_t)ts_tensor_data(v) % 64 == 0);
        ts_tensor_release(want);
        ts_tensor_release(v);
        ts_tensor_release(h);
    }
    CHECK(z && ts_npz_tensor(z, 3, 0) == NULL && check_error_has("out of range"));
    ts_npz_close(z);
    const char *dup[] = { "x", "x" };
    CHECK(ts_npz_write(check_tmp_path("dup.npz"), dup, ts, 2) != TS_OK && check_error_has("duplicate name 'x'"));
    ts_tensor_release(a);
    ts_tensor_release(a2);
    ts_tensor_release(b);
    ts_tensor_release(c);
}

static void open_seed(const char *path, const char *name, void *ctx)
{
    (void)ctx;
    ts_clear_error();
    ts_npz *z = ts_npz_open(path);
    bool ok = z != NULL;
    for (size_t i = 0; z && i < ts_npz_count(z); i++) {
        ts_tensor *t = ts_npz_tensor(z, i, 0);
        ok = ok && t;
        ts_tensor_release(t);
    }
    ts_npz_close(z);
    bool broken = strncmp(name, "bad_", 4) == 0;
    CHECK(broken ? !ok && ts_last_error()[0] : ok);
    if (!broken && !ok) fprintf(stderr, "  %s: %s\n", name, ts_last_error());
}

static void test_corpus(void)
{
    int64_t before = ts_mem_get_stats(TS_CPU).live_bytes;
    CHECK(check_each_file("fuzz/corpus_npz", open_seed, NULL) >= 8);
    CHECK(ts_mem_get_stats(TS_CPU).live_bytes == before);
}

int main(void)
{
    if (!check_tmpdir("npz")) return 1;
    RUN(test_npy_header);
    RUN(test_npy_parse_refusals);
    RUN(test_npz_round_trip);
    RUN(test_corpus);
    return check_finish("npz");
}
