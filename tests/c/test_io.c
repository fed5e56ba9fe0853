/* test_io.c — C tests of the data-set readers (torsh/io.h: IDX plain and
 * gzip, CIFAR-10 batches, .npy) on files written here byte by byte, their
 * refusals of broken files (with no allocation beyond the file's real size),
 * a replay of the fuzz seed corpora (tests/fuzz/corpus_*), and of the batch
 * producer (torsh/data.h): same bytes for any worker count, exact resume,
 * drop_last, bad orders, and freeing mid-epoch. */
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <torsh/torsh.h>
#include <zlib.h>

static const char *tmpdir;

static const char *write_gz(const char *name, const void *data, size_t n)
{
    const char *p = check_tmp_path(name);
    gzFile g = gzopen(p, "wb");
    if (g) {
        gzwrite(g, data, (unsigned)n);
        gzclose(g);
    }
    return p;
}

/* ---- IDX ----------------------------------------------------------------------- */

/* u8 [2, 3]: 1..6 */
static const unsigned char IDX_U8[] = { 0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6 };

static void test_idx_plain_and_gzip(void)
{
    for (int gz = 0; gz < 2; gz++) {
        const char *p = gz ? write_gz("u8.idx.gz", IDX_U8, sizeof IDX_U8) : check_write_file("u8.idx", IDX_U8, sizeof IDX_U8);
        ts_tensor *t = ts_idx_read(p);
        CHECK(t && t->dtype == TS_U8 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
        if (t) CHECK(((uint8_t *)ts_tensor_data(t))[5] == 6 && ts_tensor_get_i64(t, (int64_t[]){ 1, 0 }) == 4);
        ts_tensor_release(t);
    }
    /* i16 and f32 big-endian */
    const unsigned char i16[] = { 0, 0, 0x0B, 1, 0, 0, 0, 2, 0xFE, 0xD4, 0x01, 0x00 };
    ts_tensor *a = ts_idx_read(check_write_file("i16.idx", i16, sizeof i16));
    CHECK(a && a->dtype == TS_I16 && ts_tensor_item_at(a, 0) == -300 && ts_tensor_item_at(a, 1) == 256);
    ts_tensor_release(a);
    const unsigned char f32[] = { 0, 0, 0x0D, 1, 0, 0, 0, 1, 0x3F, 0xC0, 0, 0 };
    ts_tensor *b = ts_idx_read(write_gz("f32.idx.gz", f32, sizeof f32));
    CHECK(b && b->dtype == TS_F32 && ts_tensor_item_at(b, 0) == 1.5);
    ts_tensor_release(b);
    const unsigned char f64[] = { 0, 0, 0x0E, 1, 0, 0, 0, 1, 0xC0, 0x04, 0, 0, 0, 0, 0, 0 };
    ts_tensor *c = ts_idx_read(check_write_file("f64.idx", f64, sizeof f64));
    CHECK(c && c->dtype == TS_F64 && ts_tensor_item_at(c, 0) == -2.5);
    ts_tensor_release(c);
}

static void test_idx_refusals(void)
{
    int64_t before = ts_mem_get_stats(TS_CPU).live_bytes;
    CHECK(!ts_idx_read(check_tmp_path("missing.idx")) && check_error_has("cannot open") && check_error_has("missing.idx"));
    CHECK(!ts_idx_read(tmpdir) && check_error_has("not a regular file"));
    const unsigned char magic[] = { 1, 0, 8, 1, 0, 0, 0, 1, 7 };
    CHECK(!ts_idx_read(check_write_file("magic.idx", magic, sizeof magic)) && check_error_has("not an IDX file"));
    const unsigned char type[] = { 0, 0, 0x0A, 1, 0, 0, 0, 1, 7 };
    CHECK(!ts_idx_read(check_write_file("type.idx", type, sizeof type)) && check_error_has("unknown IDX type code 0x0a"));
    const unsigned char dims0[] = { 0, 0, 8, 0, 7 };
    CHECK(!ts_idx_read(check_write_file("dims0.idx", dims0, sizeof dims0)) && check_error_has("declares 0 dims"));
    const unsigned char dims9[] = { 0, 0, 8, 9, 0, 0, 0, 1 };
    CHECK(!ts_idx_read(check_write_file("dims9.idx", dims9, sizeof dims9)) && check_error_has("declares 9 dims"));
    CHECK(!ts_idx_read(check_write_file("short.idx", IDX_U8, 3)) && check_error_has("too short for an IDX header"));
    CHECK(!ts_idx_read(check_write_file("head.idx", IDX_U8, 9)) && check_error_has("truncated header"));
    CHECK(!ts_idx_read(check_write_file("trunc.idx", IDX_U8, sizeof IDX_U8 - 2)) &&
          check_error_has("truncated: the header declares [2, 3] u8 (6 bytes of data) but only 4 bytes follow"));
    CHECK(!ts_idx_read(write_gz("trunc.idx.gz", IDX_U8, sizeof IDX_U8 - 2)) && check_error_has("truncated") &&
          check_error_has("trunc.idx.gz"));
    unsigned char extra[sizeof IDX_U8 + 1];
    memcpy(extra, IDX_U8, sizeof IDX_U8);
    extra[sizeof IDX_U8] = 9;
    CHECK(!ts_idx_read(check_write_file("extra.idx", extra, sizeof extra)) && check_error_has("1 unexpected bytes after"));
    CHECK(!ts_idx_read(write_gz("extra.idx.gz", extra, sizeof extra)) && check_error_has("unexpected bytes after"));
    /* a header claiming 4 GiB x 4 GiB: refused before anything is allocated */
    const unsigned char huge[] = { 0, 0, 8, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1 };
    CHECK(!ts_idx_read(write_gz("huge.idx.gz", huge, sizeof huge)) && check_error_has("larger than any tensor"));
    /* 47 MB claimed, 2 bytes there: plain and gzip both say truncated */
    const unsigned char big[] = { 0, 0, 8, 3, 0, 0, 0xEA, 0x60, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2 };
    ts_mem_reset_peak(TS_CPU);
    CHECK(!ts_idx_read(check_write_file("big.idx", big, sizeof big)) && check_error_has("but only 2 bytes follow"));
    CHECK(!ts_idx_read(write_gz("big.idx.gz", big, sizeof big)) && check_error_has("but only 2 bytes follow"));
    CHECK(ts_mem_get_stats(TS_CPU).peak_bytes - before < 1024);
    /* a corrupt gzip stream */
    const char *gzp = write_gz("corrupt.idx.gz", IDX_U8, sizeof IDX_U8);
    FILE *f = fopen(gzp, "r+b");
    if (f) {
        fseek(f, 12, SEEK_SET);
        fputc(0xFF, f);
        fputc(0xFF, f);
        fputc(0xFF, f);
        fclose(f);
    }
    CHECK(!ts_idx_read(gzp) && check_error_has("corrupt.idx.gz"));
    CHECK(ts_mem_get_stats(TS_CPU).live_bytes == before);
}

/* ---- CIFAR-10 ------------------------------------------------------------------ */

static void test_cifar10(void)
{
    enum { REC = 3073 };
    unsigned char *buf = malloc(3 * REC);
    for (int r = 0; r < 3; r++) {
        buf[r * REC] = (unsigned char)(r * 4);            /* labels 0, 4, 8 */
        for (int i = 0; i < 3072; i++) buf[r * REC + 1 + i] = (unsigned char)(i + r);
    }
    ts_tensor *im = NULL, *lb = NULL;
    CHECK(ts_cifar10_read(check_write_file("c.bin", buf, 3 * REC), &im, &lb) == TS_OK);
    CHECK(im && im->dtype == TS_U8 && im->ndim == 4 && im->shape[0] == 3 && im->shape[1] == 3 && im->shape[2] == 32);
    CHECK(lb && lb->dtype == TS_I64 && lb->shape[0] == 3 && ts_tensor_item_at(lb, 2) == 8);
    /* record 1, green plane (1024 on), pixel 5 -> byte 1024 + 5 + 1 of the record */
    if (im) CHECK(ts_tensor_get_i64(im, (int64_t[]){ 1, 1, 0, 5 }) == (1024 + 5 + 1) % 256);
    ts_tensor_release(im);
    ts_tensor_release(lb);
    CHECK(ts_cifar10_read(check_write_file("c_short.bin", buf, 3 * REC - 1), &im, &lb) == TS_ERR_FORMAT &&
          check_error_has("not a whole number of 3073-byte records") && !im && !lb);
    CHECK(ts_cifar10_read(check_write_file("c_empty.bin", buf, 0), &im, &lb) == TS_ERR_FORMAT);
    buf[REC] = 10;
    CHECK(ts_cifar10_read(check_write_file("c_label.bin", buf, 3 * REC), &im, &lb) == TS_ERR_FORMAT &&
          check_error_has("record 1 has label 10"));
    CHECK(ts_cifar10_read(check_tmp_path("nope.bin"), &im, &lb) == TS_ERR_IO && check_error_has("nope.bin"));
    free(buf);
}

/* ---- .npy ------------------------------------------------------------------------- */

/* A version-1.0 file: header text padded to a 64-byte preamble+header, then data. */
static const char *write_npy(const char *name, const char *dict, const void *data, size_t n, int major)
{
    unsigned char buf[512];
    size_t pre = major == 1 ? 10 : 12, len = strlen(dict);
    size_t hlen = ((pre + len + 1 + 63) / 64) * 64 - pre;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    buf[8] = (unsigned char)(hlen & 0xFF);
    buf[9] = (unsigned char)(hlen >> 8);
    if (major != 1) buf[10] = buf[11] = 0;
    memset(buf + pre, ' ', hlen);
    memcpy(buf + pre, dict, len);
    buf[pre + hlen - 1] = '\n';
    memcpy(buf + pre + hlen, data, n);
    return check_write_file(name, buf, pre + hlen + n);
}

static void test_npy(void)
{
    float f[6] = { 0, 1, 2, 3, 4, 5 };
    ts_tensor *t = ts_npy_read(write_npy("f.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f,
                                         sizeof f, 1));
    CHECK(t && t->dtype == TS_F32 && t->ndim == 2 && t->shape[1] == 3 && ts_tensor_item_at(t, 4) == 4);
    ts_tensor_release(t);
    /* Fortran order: data is column-major, the result C-ordered */
    double d[6] = { 0, 3, 1, 4, 2, 5 };
    t = ts_npy_read(write_npy("fo.npy", "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", d, sizeof d, 2));
    CHECK(t && t->dtype == TS_F64 && t->shape[0] == 2 && t->shape[1] == 3 && ts_tensor_is_contiguous(t));
    for (int i = 0; t && i < 6; i++) CHECK(ts_tensor_item_at(t, i) == i);
    ts_tensor_release(t);
    const unsigned char be[] = { 0xFF, 0xFF, 0xFF, 0xF9 };
    t = ts_npy_read(write_npy("be.npy", "{\"descr\": \">i4\", \"fortran_order\": False, \"shape\": (1,)}", be, 4, 3));
    CHECK(t && t->dtype == TS_I32 && ts_tensor_item_at(t, 0) == -7);
    ts_tensor_release(t);
    const unsigned char bools[] = { 0, 1, 2 };
    t = ts_npy_read(write_npy("b.npy", "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", bools, 3, 1));
    CHECK(t && t->dtype == TS_BOOL && ts_tensor_item_at(t, 2) == 1 && ((uint8_t *)ts_tensor_data(t))[2] == 1);
    ts_tensor_release(t);
    t = ts_npy_read(write_npy("s.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", f + 3, 4, 1));
    CHECK(t && t->ndim == 0 && ts_tensor_item_at(t, 0) == 3);
    ts_tensor_release(t);

    int64_t before = ts_mem_get_stats(TS_CPU).live_bytes;
    CHECK(!ts_npy_read(check_write_file("nomagic.npy", "NUMPY\x01\x00", 8)) && check_error_has("not a .npy file"));
    CHECK(!ts_npy_read(write_npy("v4.npy", "{}", f, 0, 4)) && check_error_has("format version 4.0 is not supported"));
    CHECK(!ts_npy_read(write_npy("c8.npy", "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", f, 8, 1)) &&
          check_error_has("dtype '<c8' is not supported"));
    CHECK(!ts_npy_read(write_npy("tr.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f, 20, 1)) &&
          check_error_has("truncated: shape [2, 3] of <f4 needs 24 bytes of data, the file has 20"));
    CHECK(!ts_npy_read(write_npy("ex.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", f, 8, 1)) &&
          check_error_has("size mismatch"));
    CHECK(!ts_npy_read(write_npy("key.npy", "{'descr': '<f4', 'shape': (1,), }", f, 4, 1)) &&
          check_error_has("lacks 'fortran_order'"));
    CHECK(!ts_npy_read(write_npy("bad.npy", "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }", f, 4, 1)) &&
          check_error_has("malformed header: fortran_order must be True or False"));
    CHECK(!ts_npy_read(write_npy("big.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }",
                                 f, 4, 1)) && check_error_has("truncated"));
    CHECK(!ts_npy_read(write_npy("neg.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", f, 4, 1)) &&
          check_error_has("expected a non-negative integer"));
    CHECK(!ts_npy_read(write_npy("dup.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'descr': '<f8'}",
                                 f, 4, 1)) && check_error_has("repeated header key 'descr'"));
    CHECK(!ts_npy_read(write_npy("v2tr.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", f, 8, 2)) &&
          check_error_has("truncated: shape [3] of <f4 needs 12 bytes of data, the file has 8"));
    CHECK(!ts_npy_read(check_write_file("v2pre.npy", "\x93NUMPY\x02\x00\x10", 9)) && check_error_has("not a .npy file"));
    CHECK(!ts_npy_read(check_write_file("v2pre2.npy", "\x93NUMPY\x02\x00\x10\x00", 10)) && check_error_has("truncated preamble"));
    CHECK(!ts_npy_read(check_write_file("hdr.npy", "\x93NUMPY\x01\x00\x40\x00{'descr'", 17)) &&
          check_error_has("the header needs 64 bytes, the file has 7 after the preamble"));
    CHECK(ts_mem_get_stats(TS_CPU).live_bytes == before);
}

/* ---- the fuzz seed corpora ---------------------------------------------------------- */

typedef struct replay_ctx { ts_tensor *(*reader)(const char *); } replay_ctx;

/* One seed file: a tensor (unless its name says it is broken) or a message. */
static void replay_one(const char *path, const char *name, void *ctx)
{
    ts_clear_error();
    ts_tensor *t = ((replay_ctx *)ctx)->reader(path);
    CHECK(t || ts_last_error()[0] != '\0');
    bool broken = strstr(name, "truncated") || strstr(name, "huge");
    CHECK(broken ? t == NULL : t != NULL);
    ts_tensor_release(t);
}

/* Every file of tests/fuzz/<dir> read by `reader`: a tensor or a message, no leak. */
static int replay(const char *dir, ts_tensor *(*reader)(const char *))
{
    char rel[64];
    snprintf(rel, sizeof rel, "fuzz/%s", dir);
    int64_t before = ts_mem_get_stats(TS_CPU).live_bytes;
    replay_ctx c = { reader };
    int n = check_each_file(rel, replay_one, &c);
    CHECK(ts_mem_get_stats(TS_CPU).live_bytes == before);
    return n;
}

static void test_fuzz_corpora(void)
{
    CHECK(replay("corpus_idx", ts_idx_read) >= 8);
    CHECK(replay("corpus_npy", ts_npy_read) >= 8);
}

/* ---- the loader ----------------------------------------------------------------------- */

/* u8 samples [n, 2, 5, 6] with distinct values, labels i32 [n] */
static void make_data(int64_t n, ts_tensor **x, ts_tensor **y)
{
    *x = ts_tensor_new((int64_t[]){ n, 2, 5, 6 }, 4, TS_U8);
    *y = ts_tensor_new(&n, 1, TS_I32);
    uint8_t *p = ts_tensor_data(*x);
    for (int64_t i = 0; i < n * 60; i++) p[i] = (uint8_t)(i * 7 + i / 60);
    int32_t *l = ts_tensor_data(*y);
    for (int64_t i = 0; i < n; i++) l[i] = (int32_t)(i * 3);
}

static const ts_transform PIPELINE[] = {
    { .kind = TS_TF_RANDOM_CROP, .size_h = 4, .size_w = 4, .padding = 1, .fill = 7 },
    { .kind = TS_TF_RANDOM_HFLIP, .p = 0.5 },
    { .kind = TS_TF_TO_FLOAT, .divisor = 255 },
    { .kind = TS_TF_NORMALIZE, .nchannels = 2, .mean = { 0.5, 0.25 }, .std = { 0.2, 0.4 } },
    { .kind = TS_TF_RANDOM_ERASING, .p = 0.7, .scale_lo = 0.1, .scale_hi = 0.4, .ratio_lo = 0.5, .ratio_hi = 2,
      .random_value = true },
};

/* All batches of one epoch, concatenated: x bytes into *xs, labels into ys. */
static int64_t run_epoch(const ts_tensor *x, const ts_tensor *y, const ts_tensor *order, ts_loader_options o,
                         float *xs, int64_t *ys)
{
    ts_loader *ld = ts_loader_new(x, y, order, &o);
    CHECK(ld != NULL);
    if (!ld) return -1;
    int64_t nx = 0, ny = 0, batches = 0;
    ts_tensor *bx, *by;
    while (ts_loader_next(ld, &bx, &by) == TS_OK && bx) {
        CHECK(bx->dtype == TS_F32 && bx->ndim == 4 && bx->shape[1] == 2 && bx->shape[2] == 4 && by->dtype == TS_I64);
        memcpy(xs + nx, ts_tensor_data(bx), ts_tensor_nbytes(bx));
        memcpy(ys + ny, ts_tensor_data(by), ts_tensor_nbytes(by));
        nx += ts_tensor_numel(bx);
        ny += ts_tensor_numel(by);
        batches++;
        ts_tensor_release(bx);
        ts_tensor_release(by);
    }
    CHECK(ts_loader_position(ld) == ts_loader_num_batches(ld));
    ts_loader_free(ld);
    return batches;
}

static void test_draws(void)
{
    /* Random123's known answer, through the helper the loader uses */
    uint32_t w[4];
    ts_philox4x32(0, 0, w);
    CHECK(w[0] == 0x6627e8d5u && w[1] == 0xe169c58du && w[2] == 0xbc57ac4cu && w[3] == 0x9b00dbd8u);
    /* uniform k of (position p, step t) is half k % 2 of block ((p * 16 + t) << 24) + k / 2 */
    double u[3];
    ts_data_uniforms(5, 2, 7, 3, 0, 3, u);
    uint64_t key = ts_data_key(5, 2, TS_DATA_STREAM_TRANSFORM);
    ts_philox4x32(key, ((uint64_t)(7 * 16 + 3) << 24) + 1, w);
    CHECK(u[2] == (double)(((uint64_t)w[0] | (uint64_t)w[1] << 32) >> 11) * 0x1p-53);
    CHECK(u[0] >= 0 && u[0] < 1 && u[0] != u[1]);
    CHECK(key != ts_data_key(5, 3, TS_DATA_STREAM_TRANSFORM) && key != ts_data_key(6, 2, TS_DATA_STREAM_TRANSFORM) &&
          key != ts_data_key(5, 2, TS_DATA_STREAM_SHUFFLE));
}

static void test_loader_deterministic(void)
{
    enum { N = 37, PER = 32 };
    ts_tensor *x, *y;
    make_data(N, &x, &y);
    ts_tensor *order = ts_data_shuffle(9, 2, N);
    ts_loader_options o = { .batch_size = 5, .seed = 9, .epoch = 2, .transforms = PIPELINE, .ntransforms = 5 };
    static float xs[4][N * PER];
    static int64_t ys[4][N];
    int workers[4] = { 0, 1, 3, 2 };
    for (int k = 0; k < 4; k++) {
        o.num_workers = workers[k];
        o.prefetch = k == 3 ? 1 : 0;
        CHECK(run_epoch(x, y, order, o, xs[k], ys[k]) == 8);
        CHECK(memcmp(xs[k], xs[0], sizeof xs[0]) == 0 && memcmp(ys[k], ys[0], sizeof ys[0]) == 0);
    }
    /* every sample once, in the shuffled order */
    for (int64_t i = 0; i < N; i++) CHECK(ys[0][i] == 3 * ts_tensor_item_at(order, i));
    /* each sample equals the single-sample transform at its position */
    for (int64_t pos = 0; pos < N; pos += 6) {
        int64_t idx = (int64_t)ts_tensor_item_at(order, pos);
        ts_tensor *s = ts_select(x, 0, idx);
        ts_tensor *one = ts_transform_apply(s, PIPELINE, 5, 9, 2, pos);
        CHECK(one && memcmp(ts_tensor_data(one), xs[0] + pos * PER, PER * sizeof(float)) == 0);
        ts_tensor_release(one);
        ts_tensor_release(s);
    }
    /* resume at batch 3: the same remaining batches */
    static float rx[N * PER];
    static int64_t ry[N];
    o.num_workers = 2;
    o.start_batch = 3;
    CHECK(run_epoch(x, y, order, o, rx, ry) == 5);
    CHECK(memcmp(rx, xs[0] + 15 * PER, (N - 15) * PER * sizeof(float)) == 0);
    /* another epoch draws differently */
    o.start_batch = 0;
    o.epoch = 3;
    CHECK(run_epoch(x, y, order, o, rx, ry) == 8);
    CHECK(memcmp(rx, xs[0], sizeof rx) != 0);
    ts_tensor_release(order);
    ts_tensor_release(x);
    ts_tensor_release(y);
}

static void test_loader_edges(void)
{
    ts_tensor *x, *y;
    make_data(10, &x, &y);
    int64_t before = ts_mem_get_stats(TS_CPU).live_bytes;
    ts_loader_options o = { .batch_size = 4, .drop_last = true, .num_workers = 2 };
    ts_loader *ld = ts_loader_new(x, y, NULL, &o);
    CHECK(ld && ts_loader_num_batches(ld) == 2);
    ts_tensor *bx, *by;
    CHECK(ts_loader_next(ld, &bx, &by) == TS_OK && bx && bx->shape[0] == 4 && bx->ndim == 4 && bx->shape[2] == 5);
    if (bx) CHECK(ts_tensor_item_at(bx, 61) == (double)(uint8_t)(61 * 7 + 1));   /* raw values, no transforms */
    ts_tensor_release(bx);
    ts_tensor_release(by);
    ts_loader_free(ld);                        /* mid-epoch, workers still running */
    o.drop_last = false;
    ld = ts_loader_new(x, NULL, NULL, &o);
    CHECK(ld && ts_loader_num_batches(ld) == 3);
    for (int b = 0; b < 3; b++) {
        CHECK(ts_loader_next(ld, &bx, &by) == TS_OK && bx && !by && bx->shape[0] == (b < 2 ? 4 : 2));
        ts_tensor_release(bx);
    }
    CHECK(ts_loader_next(ld, &bx, &by) == TS_OK && !bx && !by);
    ts_loader_free(ld);
    CHECK(ts_mem_get_stats(TS_CPU).live_bytes == before);

    ts_tensor *bad = ts_tensor_from_data((int64_t[]){ 0, 10 }, TS_I64, (int64_t[]){ 2 }, 1, TS_I64);
    CHECK(!ts_loader_new(x, y, bad, &o) && check_error_has("order[1] = 10 is out of range for 10 samples"));
    ts_tensor *lab = ts_tensor_zeros((int64_t[]){ 9 }, 1, TS_I64);
    CHECK(!ts_loader_new(x, lab, NULL, &o) && check_error_has("labels [9] do not match samples [10, 2, 5, 6]"));
    o.batch_size = 0;
    CHECK(!ts_loader_new(x, y, NULL, &o) && check_error_has("batch_size must be >= 1"));
    o.batch_size = 2;
    o.start_batch = 6;
    CHECK(!ts_loader_new(x, y, NULL, &o) && check_error_has("start_batch 6 is out of range 0..5"));
    o.start_batch = 0;
    ts_transform crop = { .kind = TS_TF_RANDOM_CROP, .size_h = 9, .size_w = 9, .padding = 1 };
    o.transforms = &crop;
    o.ntransforms = 1;
    CHECK(!ts_loader_new(x, y, NULL, &o) && check_error_has("transform 1 (random_crop): crop 9x9 does not fit the padded 7x8"));
    ts_transform norm = { .kind = TS_TF_NORMALIZE, .nchannels = 3, .mean = { 0, 0, 0 }, .std = { 1, 1, 1 } };
    o.transforms = &norm;
    CHECK(!ts_loader_new(x, y, NULL, &o) && check_error_has("has 3 mean/std values for 2 channels"));
    ts_tensor_release(lab);
    ts_tensor_release(bad);
    ts_tensor_release(x);
    ts_tensor_release(y);
}

/* A host allocator that refuses blocks of 449..512 bytes: the last batch below. */
static void *picky_alloc(size_t n, void *user)
{
    (void)user;
    return n > 448 && n <= 512 ? NULL : aligned_alloc(64, (n + 63) / 64 * 64);
}
static void picky_free(void *p, size_t n, void *user) { (void)n; (void)user; free(p); }

static void test_loader_errors_propagate(void)
{
    ts_tensor *x, *y;
    make_data(10, &x, &y);
    ts_allocator picky = { picky_alloc, picky_free, NULL };
    for (int workers = 0; workers < 3; workers += 2) {
        ts_loader_options o = { .batch_size = 4, .num_workers = workers };
        ts_mem_set_allocator(&picky);          /* before the workers start: they make batches at once */
        ts_loader *ld = ts_loader_new(x, y, NULL, &o);
        CHECK(ld != NULL);
        ts_tensor *bx, *by;
        for (int b = 0; ld && b < 2; b++) {
            CHECK(ts_loader_next(ld, &bx, &by) == TS_OK && bx && by);
            ts_tensor_release(bx);
            ts_tensor_release(by);
        }
        /* batch 2: [2, 2, 5, 6] f32 = 480 bytes, refused in whichever thread made it */
        CHECK(ld && ts_loader_next(ld, &bx, &by) == TS_ERR_MEMORY && !bx && !by && check_error_has("480 bytes"));
        CHECK(ld && ts_loader_next(ld, &bx, &by) == TS_OK && !bx && ts_loader_position(ld) == 3);
        ts_loader_free(ld);
        ts_mem_set_allocator(NULL);
    }
    ts_tensor_release(x);
    ts_tensor_release(y);
}

static void test_channel_stats(void)
{
    ts_tensor *x = ts_tensor_new((int64_t[]){ 2, 2, 1, 2 }, 4, TS_U8);
    uint8_t v[8] = { 0, 2, 10, 10, 4, 6, 10, 10 };   /* channel 0: 0 2 4 6, channel 1: all 10 */
    memcpy(ts_tensor_data(x), v, 8);
    double mean[4], std[4];
    int n = 0;
    CHECK(ts_data_channel_stats(x, mean, std, 4, &n) == TS_OK && n == 2);
    CHECK_NEAR(mean[0], 3, 1e-12);
    CHECK_NEAR(std[0], sqrt(5.0), 1e-12);
    CHECK_NEAR(mean[1], 10, 1e-12);
    CHECK_NEAR(std[1], 0, 1e-12);
    ts_tensor *f = ts_to_dtype(x, TS_F32);
    CHECK(ts_data_channel_stats(f, mean, std, 4, &n) == TS_OK && n == 2);
    CHECK_NEAR(std[0], sqrt(5.0), 1e-9);
    CHECK(ts_data_channel_stats(x, mean, std, 1, &n) == TS_ERR_ARG && check_error_has("2 channels, room for 1"));
    ts_tensor_release(f);
    ts_tensor_release(x);
}

int main(void)
{
    if (!(tmpdir = check_tmpdir("io"))) return 1;
    RUN(test_idx_plain_and_gzip);
    RUN(test_idx_refusals);
    RUN(test_cifar10);
    RUN(test_npy);
    RUN(test_fuzz_corpora);
    RUN(test_draws);
    RUN(test_loader_deterministic);
    RUN(test_loader_edges);
    RUN(test_loader_errors_propagate);
    RUN(test_channel_stats);
    return check_finish("io");
}
