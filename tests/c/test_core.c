/* test_core.c — C tests of the core without Lua: dtype traits, promotion
 * and conversions (f16/bf16 rounding checked against the hardware paths and
 * exact cases), storage and tensor ownership, views, errors with messages,
 * the thread pool, and the allocator's accounting. */
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <torsh/torsh.h>

static void test_dtype_parse_and_promote(void)
{
    ts_dtype d;
    CHECK(ts_dtype_parse("bfloat16", &d) == TS_OK && d == TS_BF16);
    CHECK(ts_dtype_parse("torch.int64", &d) == TS_OK && d == TS_I64);
    CHECK(ts_dtype_parse("float", &d) == TS_OK && d == TS_F32);
    CHECK(ts_dtype_parse("f8", &d) == TS_ERR_ARG);
    CHECK(strstr(ts_last_error(), "unknown dtype 'f8'") != NULL);
    CHECK(ts_dtype_promote(TS_U8, TS_I8) == TS_I16);
    CHECK(ts_dtype_promote(TS_F16, TS_BF16) == TS_F32);
    CHECK(ts_dtype_promote(TS_I64, TS_F16) == TS_F16);
    CHECK(ts_dtype_promote(TS_BOOL, TS_I32) == TS_I32);
    CHECK(ts_dtype_size(TS_BF16) == 2 && ts_dtype_size(TS_I64) == 8);
}

static void test_half_rounding(void)
{
    /* exact cases: ties to even, subnormals, overflow, nan */
    CHECK(ts_f32_to_f16(1.0f) == 0x3c00);
    CHECK(ts_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(ts_f32_to_f16(65520.0f) == 0x7c00);          /* rounds to inf */
    CHECK(ts_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00); /* tie -> even (down) */
    CHECK(ts_f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02); /* tie -> even (up) */
    CHECK(ts_f32_to_f16(5.9604645e-8f) == 0x0001);     /* smallest subnormal */
    CHECK(ts_f32_to_f16(2.9802322e-8f) == 0x0000);     /* half of it: tie to even 0 */
    CHECK((ts_f32_to_f16(NAN) & 0x7c00) == 0x7c00 && (ts_f32_to_f16(NAN) & 0x3ff) != 0);
    CHECK(ts_f32_to_bf16(1.0f + 1.0f / 256) == 0x3f80);  /* tie -> even */
    CHECK(ts_f32_to_bf16(1.0f + 3.0f / 256) == 0x3f82);
    CHECK(ts_bf16_to_f32(0x3f80) == 1.0f);
    /* every f16 value survives f16 -> f32 -> f16 */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = ts_f16_to_f32((uint16_t)h);
        if (f != f) continue;
        if (ts_f32_to_f16(f) != h) bad++;
    }
    CHECK(bad == 0);
    /* the vector paths (F16C / AVX512-BF16 when present) agree with the scalar ones */
    enum { N = 4099 };
    static float src[N];
    static uint16_t vec[N];
    for (int i = 0; i < N; i++) src[i] = (float)(i - 2000) * 0.3711f + (float)i * 1e-3f;
    ts_convert(vec, TS_F16, 1, src, TS_F32, 1, N);
    for (int i = 0; i < N; i++) if (vec[i] != ts_f32_to_f16(src[i])) { bad++; }
    ts_convert(vec, TS_BF16, 1, src, TS_F32, 1, N);
    for (int i = 0; i < N; i++) if (vec[i] != ts_f32_to_bf16(src[i])) { bad++; }
    CHECK(bad == 0);
}

static void test_int_conversions(void)
{
    double vals[4] = { 300.7, -129.2, NAN, 1e30 };
    int8_t i8[4];
    int64_t i64[4];
    ts_convert(i8, TS_I8, 1, vals, TS_F64, 1, 2);
    CHECK(i8[0] == 44 && i8[1] == 127);                 /* truncate then wrap: 300 -> 44, -129 -> 127 */
    ts_convert(i64, TS_I64, 1, vals, TS_F64, 1, 4);
    CHECK(i64[2] == 0 && i64[3] == INT64_MAX);          /* NaN -> 0, saturate instead of UB */
}

static void test_tensor_ownership_and_views(void)
{
    int64_t live0 = ts_mem_get_stats(TS_CPU).live_bytes;
    ts_tensor *a = ts_arange(0, 12, 1, TS_F32);
    int64_t shape[2] = { 3, 4 };
    ts_tensor *m = ts_view(a, shape, 2);
    ts_tensor *t = ts_transpose(m, 0, 1);
    CHECK(a && m && t);
    CHECK(t->storage == a->storage && a->storage->refcount == 3);
    CHECK(!ts_tensor_is_contiguous(t));
    CHECK(ts_tensor_get_f64(t, (int64_t[]){ 3, 2 }) == 11.0);
    ts_tensor_release(a);
    ts_tensor_release(m);
    ts_tensor *c = ts_contiguous(t);
    CHECK(c && c != t && ts_tensor_is_contiguous(c));
    CHECK(ts_tensor_item_at(c, 1) == 4.0);
    ts_tensor *s = ts_slice(c, 1, 0, 3, 2);              /* columns 0 and 2 */
    CHECK(s && s->shape[1] == 2 && ts_tensor_get_f64(s, (int64_t[]){ 1, 1 }) == 9.0);
    ts_tensor_release(s);
    ts_tensor_release(c);
    ts_tensor_release(t);
    CHECK(ts_mem_get_stats(TS_CPU).live_bytes == live0);
}

static void test_errors_have_context(void)
{
    int64_t s1[2] = { 3, 4 }, s2[2] = { 5, 6 };
    ts_tensor *a = ts_tensor_zeros(s1, 2, TS_F32), *b = ts_tensor_zeros(s2, 2, TS_F32);
    CHECK(ts_matmul(a, b) == NULL);
    CHECK(strcmp(ts_last_error(), "matmul: shapes [3, 4] and [5, 6] do not line up (4 != 5)") == 0);
    CHECK(ts_binary(TS_ADD, a, b) == NULL && ts_last_status() == TS_ERR_ARG);
    CHECK(ts_select(a, 2, 0) == NULL && strstr(ts_last_error(), "dim 2 is out of range") != NULL);
    CHECK(ts_select(a, 0, 3) == NULL && strstr(ts_last_error(), "index 3 is out of range") != NULL);
    int64_t neg[1] = { -2 };
    CHECK(ts_tensor_new(neg, 1, TS_F32) == NULL && strstr(ts_last_error(), "negative size") != NULL);
    int64_t huge[2] = { (int64_t)1 << 40, (int64_t)1 << 20 };
    CHECK(ts_tensor_new(huge, 2, TS_F32) == NULL && ts_last_status() == TS_ERR_MEMORY);
    ts_tensor_release(a);
    ts_tensor_release(b);
}

static void add_range(int64_t begin, int64_t end, void *ctx)
{
    int64_t *hits = ctx;
    for (int64_t i = begin; i < end; i++) __atomic_add_fetch(&hits[i], 1, __ATOMIC_RELAXED);
}

static void test_parallel_for_covers_once(void)
{
    enum { N = 100003 };
    static int64_t hits[N];
    for (int threads = 1; threads <= 4; threads++) {
        ts_set_num_threads(threads);
        memset(hits, 0, sizeof hits);
        for (int rep = 0; rep < 20; rep++) ts_parallel_for(N, 1000, add_range, hits);
        int bad = 0;
        for (int i = 0; i < N; i++) bad += hits[i] != 20;
        CHECK(bad == 0);
    }
    ts_set_num_threads(0);
}

static void test_mmap_storage(void)
{
    char path[] = "/tmp/torsh_test_mmapXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    float data[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
    CHECK(write(fd, "HEADER..", 8) == 8 && write(fd, data, sizeof data) == sizeof data);
    close(fd);
    ts_storage *s = ts_storage_mmap(path, 8, sizeof data);
    CHECK(s && s->readonly);
    int64_t shape[2] = { 2, 4 };
    ts_tensor *t = s ? ts_tensor_from_storage(s, TS_F32, 0, shape, NULL, 2) : NULL;
    ts_storage_release(s);
    CHECK(t && ts_tensor_get_f64(t, (int64_t[]){ 1, 3 }) == 7.0);
    CHECK(ts_fill_(t, 1.0) == TS_ERR_ARG && strstr(ts_last_error(), "read-only") != NULL);
    int64_t too_big[1] = { 9 };
    CHECK(ts_tensor_from_storage(t->storage, TS_F32, 0, too_big, NULL, 1) == NULL);
    ts_tensor_release(t);
    CHECK(ts_storage_mmap(path, 8, 4096) == NULL && strstr(ts_last_error(), "past the end") != NULL);
    unlink(path);
}

int main(void)
{
    RUN(test_dtype_parse_and_promote);
    RUN(test_half_rounding);
    RUN(test_int_conversions);
    RUN(test_tensor_ownership_and_views);
    RUN(test_errors_have_context);
    RUN(test_parallel_for_covers_once);
    RUN(test_mmap_storage);
    return check_finish("core");
}
