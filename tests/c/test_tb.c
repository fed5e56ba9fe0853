/* test_tb.c — C tests of core/tb (torsh/tb.h): CRC-32C against published
 * check values and a bitwise reference, the TFRecord framing, PNG and WAV
 * encoding (decoded back with zlib here), numpy-compatible histogram
 * bucketing on hand-checked cases, the writer's file name, buffering (the
 * max_queue and flush_secs triggers, flush, close) and its failures: an
 * unwritable log dir, a file-size limit hit mid-run (EFBIG, in a child
 * process), use after close. Event contents are checked by the independent
 * Python reader in tests/sh/test_tensorboard.sh. */
#include "check.h"
#include "../../core/tb/tb_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <torsh/torsh.h>
#include <torsh/tb.h>
#include <unistd.h>
#include <zlib.h>

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

/* bit-at-a-time CRC-32C, the definition */
static uint32_t ref_crc32c(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

static void test_crc32c(void)
{
    CHECK(tb_crc32c(0, "123456789", 9) == 0xE3069283u);
    uint8_t zeros[32] = {0}, ones[32];
    memset(ones, 0xff, sizeof ones);
    CHECK(tb_crc32c(0, zeros, 32) == 0x8A9136AAu);     /* RFC 3720 B.4 */
    CHECK(tb_crc32c(0, ones, 32) == 0x62A8AB43u);
    uint8_t inc[32];
    for (int i = 0; i < 32; i++) inc[i] = (uint8_t)i;
    CHECK(tb_crc32c(0, inc, 32) == 0x46DD794Eu);
    /* every length and alignment against the bitwise definition; chaining */
    uint8_t buf[300];
    for (int i = 0; i < 300; i++) buf[i] = (uint8_t)(i * 37 + 11);
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n + off <= 300; n += 7) CHECK(tb_crc32c(0, buf + off, n) == ref_crc32c(buf + off, n));
    CHECK(tb_crc32c(tb_crc32c(0, buf, 100), buf + 100, 200) == ref_crc32c(buf, 300));
    CHECK(tb_crc_mask(0) == 0xA282EAD8u);
    uint32_t c = 0x12345678u;
    CHECK(tb_crc_mask(c) == (((c >> 15) | (c << 17)) + 0xA282EAD8u));
}

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static void test_framing(void)
{
    tb_buf b = {0};
    const char *msg = "hello tensorboard";
    CHECK(tb_frame_record(&b, msg, strlen(msg)) == TS_OK);
    CHECK(tb_frame_record(&b, "", 0) == TS_OK);
    CHECK(b.len == 16 + strlen(msg) + 16);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)b.data[i] << (8 * i);
    CHECK(n == strlen(msg));
    uint32_t lc = ref_crc32c(b.data, 8), dc = ref_crc32c((const uint8_t *)msg, strlen(msg));
    CHECK(le32(b.data + 8) == ((lc >> 15 | lc << 17) + 0xA282EAD8u));
    CHECK(memcmp(b.data + 12, msg, strlen(msg)) == 0);
    CHECK(le32(b.data + 12 + strlen(msg)) == ((dc >> 15 | dc << 17) + 0xA282EAD8u));
    tb_buf_free(&b);
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

static void test_png(void)
{
    enum { W = 5, H = 3, C = 3 };
    uint8_t px[W * H * C];
    for (int i = 0; i < W * H * C; i++) px[i] = (uint8_t)(i * 7);
    tb_buf b = {0};
    CHECK(tb_png_encode(px, W, H, C, &b) == TS_OK);
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    CHECK(b.len > 8 + 25 + 12 + 12 && memcmp(b.data, sig, 8) == 0);
    /* IHDR */
    CHECK(be32(b.data + 8) == 13 && memcmp(b.data + 12, "IHDR", 4) == 0);
    CHECK(be32(b.data + 16) == W && be32(b.data + 20) == H && b.data[24] == 8 && b.data[25] == 2);
    CHECK(be32(b.data + 29) == (uint32_t)crc32(0, b.data + 12, 17));
    /* IDAT: inflate and compare rows */
    size_t pos = 33;
    uint32_t zl = be32(b.data + pos);
    CHECK(memcmp(b.data + pos + 4, "IDAT", 4) == 0);
    CHECK(be32(b.data + pos + 8 + zl) == (uint32_t)crc32(0, b.data + pos + 4, zl + 4));
    uint8_t raw[H * (W * C + 1)];
    uLongf rl = sizeof raw;
    CHECK(uncompress(raw, &rl, b.data + pos + 8, zl) == Z_OK && rl == sizeof raw);
    for (int y = 0; y < H; y++) {
        CHECK(raw[y * (W * C + 1)] == 0);
        CHECK(memcmp(raw + y * (W * C + 1) + 1, px + y * W * C, W * C) == 0);
    }
    pos += 12 + zl;
    CHECK(be32(b.data + pos) == 0 && memcmp(b.data + pos + 4, "IEND", 4) == 0 && pos + 12 == b.len);
    tb_buf_free(&b);
    CHECK(tb_png_encode(px, 0, 3, 3, &b) == TS_ERR_ARG);
    CHECK(tb_png_encode(px, 3, 3, 5, &b) == TS_ERR_ARG);
    tb_buf_free(&b);
    /* byte conversion: PyTorch's trunc(v * 255) in f32, clamped */
    CHECK(tb_to_byte(1.0, true) == 255 && tb_to_byte(0.5, true) == 127 && tb_to_byte(0.999, true) == 254);
    CHECK(tb_to_byte(-0.3, true) == 0 && tb_to_byte(2.0, true) == 255 && tb_to_byte(NAN, true) == 0);
    CHECK(tb_to_byte(200, false) == 200 && tb_to_byte(300, false) == 255);
}

static void test_wav(void)
{
    int16_t s[3] = {0, 32767, -32767};
    tb_buf b = {0};
    CHECK(tb_wav_encode(s, 3, 16000, &b) == TS_OK);
    CHECK(b.len == 44 + 6);
    CHECK(memcmp(b.data, "RIFF", 4) == 0 && le32(b.data + 4) == 36 + 6 && memcmp(b.data + 8, "WAVEfmt ", 8) == 0);
    CHECK(le32(b.data + 24) == 16000 && le32(b.data + 28) == 32000 && b.data[34] == 16 && le32(b.data + 40) == 6);
    CHECK(b.data[46] == 0xff && b.data[47] == 0x7f && b.data[48] == 0x01 && b.data[49] == 0x80);
    tb_buf_free(&b);
}

static void test_histogram(void)
{
    tb_hist h;
    /* numpy: np.histogram([0,1,1,2,3,NaN dropped], bins=3) -> counts [1,2,2], edges [0,1,2,3];
     * nothing trimmed (start 0): one empty bucket in front */
    double v[6] = {0, 1, 1, 2, 3, NAN};
    ts_tb_bins three = {.count = 3};
    CHECK(tb_histogram(v, 6, &three, &h) == TS_OK);
    CHECK(h.num == 5 && h.min == 0 && h.max == 3 && h.sum == 7 && h.sum_squares == 15);
    CHECK(h.n == 4);
    if (h.n == 4) {
        CHECK(h.counts[0] == 0 && h.counts[1] == 1 && h.counts[2] == 2 && h.counts[3] == 2);
        CHECK(h.limits[0] == 0 && h.limits[1] == 1 && h.limits[2] == 2 && h.limits[3] == 3);
    }
    tb_hist_free(&h);
    /* explicit edges, empty bins trimmed: values only in [2,3) and [3,4] of 0..4 */
    double e[5] = {0, 1, 2, 3, 4}, v2[3] = {2.5, 3, 4};
    ts_tb_bins edges = {.edges = e, .n_edges = 5};
    CHECK(tb_histogram(v2, 3, &edges, &h) == TS_OK);
    CHECK(h.n == 3);   /* empty bin [1,2) kept on the left, then [2,3) and [3,4] */
    if (h.n == 3) {
        CHECK(h.counts[0] == 0 && h.counts[1] == 1 && h.counts[2] == 2);
        CHECK(h.limits[0] == 2 && h.limits[1] == 3 && h.limits[2] == 4);
    }
    tb_hist_free(&h);
    /* TensorFlow edges: 1.0 falls in the bucket whose right edge is just above it */
    double one = 1.0;
    CHECK(tb_histogram(&one, 1, NULL, &h) == TS_OK);
    CHECK(h.n == 2 && h.counts[0] == 0 && h.counts[1] == 1);
    if (h.n == 2) CHECK(h.limits[0] <= 1.0 && h.limits[1] > 1.0 && h.limits[1] < 1.11);
    tb_hist_free(&h);
    /* all equal values with a count: numpy widens to [v-0.5, v+0.5] */
    double same[4] = {2, 2, 2, 2};
    ts_tb_bins two = {.count = 2};
    CHECK(tb_histogram(same, 4, &two, &h) == TS_OK);
    CHECK(h.n == 2 && h.counts[1] == 4 && h.limits[1] == 2.5);
    tb_hist_free(&h);
    /* nothing finite: empty histogram with one empty bucket */
    double bad[3] = {NAN, INFINITY, -INFINITY};
    CHECK(tb_histogram(bad, 3, NULL, &h) == TS_OK);
    CHECK(h.num == 0 && h.n == 1 && h.counts[0] == 0);
    tb_hist_free(&h);
    /* max_bins merges neighbours: 4 unit bins -> 2 */
    double v3[4] = {0.5, 1.5, 2.5, 3.5};
    ts_tb_bins merged = {.edges = e, .n_edges = 5, .max_bins = 2};
    CHECK(tb_histogram(v3, 4, &merged, &h) == TS_OK);
    CHECK(h.n == 3 && h.counts[1] == 2 && h.counts[2] == 2 && h.limits[1] == 2 && h.limits[2] == 4);
    tb_hist_free(&h);
    /* bad edges */
    double dec[3] = {0, 2, 1};
    ts_tb_bins bad_edges = {.edges = dec, .n_edges = 3};
    CHECK(tb_histogram(v3, 4, &bad_edges, &h) == TS_ERR_ARG && strstr(ts_last_error(), "increase"));
}

static void test_format_number(void)
{
    char b[40];
    tb_format_number(b, sizeof b, 0.1f, true);
    CHECK(strcmp(b, "0.1") == 0);
    tb_format_number(b, sizeof b, 0.1, false);
    CHECK(strcmp(b, "0.1") == 0);
    tb_format_number(b, sizeof b, 1.0 / 3.0, false);
    CHECK(strtod(b, NULL) == 1.0 / 3.0);
    tb_format_number(b, sizeof b, 3, true);
    CHECK(strcmp(b, "3") == 0);
}

/* records in a file, checking the framing with the reference CRC; -1 if bad */
static int count_records(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int n = 0;
    uint8_t head[12];
    while (fread(head, 1, 12, f) == 12) {
        uint64_t len = 0;
        for (int i = 0; i < 8; i++) len |= (uint64_t)head[i] << (8 * i);
        uint32_t c = ref_crc32c(head, 8);
        if (le32(head + 8) != ((c >> 15 | c << 17) + 0xA282EAD8u) || len > (1 << 24)) { n = -1; break; }
        uint8_t *d = malloc(len + 4);
        if (!d || fread(d, 1, len + 4, f) != len + 4) { free(d); n = -1; break; }
        c = ref_crc32c(d, len);
        bool ok = le32(d + len) == ((c >> 15 | c << 17) + 0xA282EAD8u);
        free(d);
        if (!ok) { n = -1; break; }
        n++;
    }
    fclose(f);
    return n;
}

static void test_writer_buffering(void)
{
    ts_tb_options o = {.flush_secs = 0.3, .max_queue = 3, .filename_suffix = ".sfx"};
    ts_tb_writer *w = ts_tb_writer_open(check_tmp_path("runs/a/b"), &o);
    CHECK(w != NULL);
    if (!w) return;
    const char *path = ts_tb_writer_file(w);
    char pat[256];
    snprintf(pat, sizeof pat, "events.out.tfevents.");
    const char *base = strrchr(path, '/') + 1;
    CHECK(strncmp(base, pat, strlen(pat)) == 0);
    CHECK(strlen(base) > 20 + 10 && base[30] == '.');                         /* 10-digit time */
    CHECK(strstr(base, ts_tb_hostname()) != NULL);
    CHECK(strlen(base) > 4 && strcmp(base + strlen(base) - 4, ".sfx") == 0);
    CHECK(count_records(path) == 1);                                         /* file_version, at once */
    long s0 = file_size(path);
    CHECK(ts_tb_add_scalar(w, "x", 1, 0, TS_TB_NOW, TS_TB_SIMPLE) == TS_OK);
    CHECK(ts_tb_add_scalar(w, "x", 2, 1, TS_TB_NOW, TS_TB_SIMPLE) == TS_OK);
    CHECK(ts_tb_writer_pending(w) == 2 && file_size(path) == s0);             /* buffered */
    CHECK(ts_tb_add_scalar(w, "x", 3, 2, TS_TB_NOW, TS_TB_SIMPLE) == TS_OK);
    CHECK(ts_tb_writer_pending(w) == 0 && count_records(path) == 4);          /* max_queue reached */
    CHECK(ts_tb_add_scalar(w, "x", 4, 3, TS_TB_NOW, TS_TB_SIMPLE) == TS_OK);
    CHECK(ts_tb_writer_pending(w) == 1);
    struct timespec ts = {0, 350 * 1000 * 1000};
    nanosleep(&ts, NULL);
    CHECK(ts_tb_add_scalar(w, "x", 5, 4, TS_TB_NOW, TS_TB_SIMPLE) == TS_OK);  /* the timer fires on add */
    CHECK(ts_tb_writer_pending(w) == 0 && count_records(path) == 6);
    CHECK(ts_tb_add_text(w, "t", "hi", 2, 5, TS_TB_NOW) == TS_OK);
    CHECK(ts_tb_flush(w) == TS_OK && count_records(path) == 7);
    CHECK(ts_tb_add_scalar(w, "x", 6, 6, TS_TB_NOW, TS_TB_SIMPLE) == TS_OK);
    CHECK(ts_tb_writer_close(w) == TS_OK && count_records(path) == 8);
    CHECK(ts_tb_writer_close(w) == TS_OK);                                     /* idempotent */
    CHECK(ts_tb_add_scalar(w, "x", 7, 7, TS_TB_NOW, TS_TB_SIMPLE) != TS_OK && strstr(ts_last_error(), "closed"));
    ts_tb_writer_free(w);

    /* two writers on one dir never share a file */
    ts_tb_writer *w1 = ts_tb_writer_open(check_tmp_path("runs/same"), NULL), *w2 = ts_tb_writer_open(check_tmp_path("runs/same"), NULL);
    CHECK(w1 && w2 && strcmp(ts_tb_writer_file(w1), ts_tb_writer_file(w2)) != 0);
    ts_tb_writer_free(w1);
    ts_tb_writer_free(w2);
}

static void test_writer_errors(void)
{
    /* a log dir below a regular file cannot be created (even as root) */
    FILE *f = fopen(check_tmp_path("plain"), "w");
    if (f) fclose(f);
    ts_tb_writer *w = ts_tb_writer_open(check_tmp_path("plain/logs"), NULL);
    CHECK(w == NULL && ts_last_status() == TS_ERR_IO);
    CHECK(strstr(ts_last_error(), "cannot create log dir") && strstr(ts_last_error(), "plain"));
    CHECK(ts_tb_writer_open(check_tmp_path("plain"), NULL) == NULL && strstr(ts_last_error(), "not a directory"));
    CHECK(ts_tb_writer_open("", NULL) == NULL);
    ts_tb_options bad = {.filename_suffix = "/x"};
    CHECK(ts_tb_writer_open(check_tmp_path("runs/c"), &bad) == NULL);

    w = ts_tb_writer_open(check_tmp_path("runs/args"), NULL);
    CHECK(w != NULL);
    if (!w) return;
    ts_tensor *img = ts_tensor_zeros((int64_t[]){2, 4, 4}, 3, TS_F32);
    CHECK(ts_tb_add_image(w, "img", img, "CHW", 0, TS_TB_NOW) == TS_ERR_ARG && strstr(ts_last_error(), "2 channels"));
    CHECK(ts_tb_add_image(w, "img", img, "CHWX", 0, TS_TB_NOW) == TS_ERR_ARG);
    CHECK(ts_tb_add_audio(w, "a", img, 8000, 0, TS_TB_NOW) == TS_ERR_ARG && strstr(ts_last_error(), "1-dimensional"));
    CHECK(ts_tb_add_scalar(w, "", 1, 0, TS_TB_NOW, TS_TB_SIMPLE) == TS_ERR_ARG);
    ts_tensor *empty = ts_tensor_zeros((int64_t[]){0}, 1, TS_F32);
    CHECK(ts_tb_add_histogram(w, "h", empty, NULL, 0, TS_TB_NOW) == TS_ERR_ARG && strstr(ts_last_error(), "'h'"));
    ts_tensor *two = ts_tensor_zeros((int64_t[]){2}, 1, TS_F32), *three = ts_tensor_zeros((int64_t[]){3}, 1, TS_F32);
    CHECK(ts_tb_add_pr_curve(w, "pr", two, three, NULL, 10, 0, TS_TB_NOW) == TS_ERR_ARG);
    ts_tb_chart ch = {.title = "m", .margin = true, .tags = (const char *[]){"a", "b"}, .n_tags = 2};
    ts_tb_category cat = {.title = "c", .charts = &ch, .n_charts = 1};
    CHECK(ts_tb_add_custom_scalars(w, &cat, 1, TS_TB_NOW) == TS_ERR_ARG && strstr(ts_last_error(), "3 tags"));
    ts_tensor_release(img); ts_tensor_release(empty); ts_tensor_release(two); ts_tensor_release(three);
    CHECK(ts_tb_writer_close(w) == TS_OK);
    CHECK(count_records(ts_tb_writer_file(w)) == 1);    /* refused calls wrote nothing */
    ts_tb_writer_free(w);
}

/* A file-size limit stands in for a full disk: writes fail with EFBIG (the
 * signal is ignored), which must come back as a status, not a crash, and
 * the records written before stay intact. Runs in a child (setrlimit). */
static void test_writer_full_disk(void)
{
    const char *dir = check_tmp_path("runs/full");
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        ts_tb_options o = {.max_queue = 1};
        ts_tb_writer *w = ts_tb_writer_open(dir, &o);
        if (!w) _exit(10);
        struct rlimit rl = {4096, 4096};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(11);
        ts_status st = TS_OK;
        int i;
        for (i = 0; i < 1000 && st == TS_OK; i++) st = ts_tb_add_scalar(w, "loss", i, i, TS_TB_NOW, TS_TB_SIMPLE);
        if (st != TS_ERR_IO || !strstr(ts_last_error(), "writing") || !strstr(ts_last_error(), "too large")) _exit(12);
        if (ts_tb_flush(w) != TS_ERR_IO) _exit(13);              /* still failing, still no crash */
        if (ts_tb_writer_close(w) != TS_ERR_IO) _exit(14);
        ts_tb_writer_free(w);
        _exit(i > 10 ? 0 : 15);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* what reached the file is whole records (a partial tail at most) */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s/events.out.tfevents.* > /dev/null 2>&1", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    if (!check_tmpdir("tb")) return 1;
    RUN(test_crc32c);
    RUN(test_framing);
    RUN(test_png);
    RUN(test_wav);
    RUN(test_histogram);
    RUN(test_format_number);
    RUN(test_writer_buffering);
    RUN(test_writer_errors);
    RUN(test_writer_full_disk);
    return check_finish("tb");
}
