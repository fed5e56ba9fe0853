/* test_random.c — C tests of the generator and of the index/join ops'
 * ownership: Philox known answers, counter bookkeeping, thread-count
 * independence, and that failing index ops report and release everything
 * (live tensor bytes unchanged). */
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <torsh/torsh.h>

static void test_philox_known_answer(void)
{
    /* Random123: philox4x32_10(ctr {0,0,0,0}, key {0,0}) =
     * {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8} */
    ts_generator g;
    ts_generator_seed(&g, 0);
    int64_t one = 1;
    ts_tensor *d = ts_rand(&g, &one, 1, TS_F64, 0, 1);
    CHECK(d && ((double *)ts_tensor_data(d))[0] == (double)(0xe169c58d6627e8d5ull >> 11) * 0x1p-53);
    CHECK(g.offset == 1);
    ts_generator_seed(&g, 0);
    ts_tensor *f = ts_rand(&g, &one, 1, TS_F32, 0, 1);
    CHECK(f && ((float *)ts_tensor_data(f))[0] == (float)(0x6627e8d5u >> 8) * 0x1p-24f);
    ts_tensor_release(d);
    ts_tensor_release(f);
}

static void test_counter_bookkeeping(void)
{
    ts_generator g;
    ts_generator_seed(&g, 77);
    int64_t shape[2] = { 30, 1000 };
    ts_tensor *whole = ts_randn(&g, shape, 2, TS_F32, 0, 1);
    CHECK(g.offset == 30000);
    ts_generator_seed(&g, 77);
    int64_t half[2] = { 15, 1000 };
    ts_tensor *a = ts_randn(&g, half, 2, TS_F32, 0, 1), *b = ts_randn(&g, half, 2, TS_F32, 0, 1);
    CHECK(whole && a && b);
    if (whole && a && b) {
        CHECK(memcmp(ts_tensor_data(whole), ts_tensor_data(a), 15000 * sizeof(float)) == 0);
        CHECK(memcmp((float *)ts_tensor_data(whole) + 15000, ts_tensor_data(b), 15000 * sizeof(float)) == 0);
    }
    ts_generator_seed(&g, 77);
    ts_tensor *p = ts_randperm(&g, 1000);
    CHECK(p && g.offset == 1000);
    ts_tensor_release(whole);
    ts_tensor_release(a);
    ts_tensor_release(b);
    ts_tensor_release(p);
}

static void test_thread_count_independence(void)
{
    int64_t n = 500000;
    ts_tensor *r[2][3];
    for (int k = 0; k < 2; k++) {
        ts_set_num_threads(k + 1);
        ts_generator g;
        ts_generator_seed(&g, 5);
        r[k][0] = ts_rand(&g, &n, 1, TS_F32, -1, 1);
        r[k][1] = ts_randn(&g, &n, 1, TS_F64, 0, 1);
        r[k][2] = ts_randint(&g, 0, 1000, &n, 1, TS_I32);
    }
    ts_set_num_threads(0);
    for (int j = 0; j < 3; j++) {
        CHECK(r[0][j] && r[1][j]);
        if (r[0][j] && r[1][j])
            CHECK(memcmp(ts_tensor_data(r[0][j]), ts_tensor_data(r[1][j]), ts_tensor_nbytes(r[0][j])) == 0);
        ts_tensor_release(r[0][j]);
        ts_tensor_release(r[1][j]);
    }
}

static void test_failures_release_everything(void)
{
    int64_t shape[2] = { 3, 4 };
    ts_tensor *a = ts_tensor_zeros(shape, 2, TS_F32);
    int64_t ishape[2] = { 2, 4 };
    ts_tensor *idx = ts_tensor_full(ishape, 2, TS_I32, 3);   /* 3 is out of range for dim 0 */
    int64_t before = ts_mem_get_stats(TS_CPU).live_bytes;
    CHECK(ts_gather(a, 0, idx) == NULL);
    CHECK(strcmp(ts_last_error(), "gather: index 3 is out of range for dim 0 of size 3 (valid: 0..2)") == 0);
    CHECK(ts_scatter_add(a, 0, idx, a) == NULL && strstr(ts_last_error(), "scatter_add: index 3") != NULL);
    CHECK(ts_embedding(a, idx) == NULL && strstr(ts_last_error(), "embedding: index 3") != NULL);
    CHECK(ts_one_hot(idx, 2) == NULL && strstr(ts_last_error(), "class value 3") != NULL);
    ts_tensor **outs = NULL;
    CHECK(ts_split_sizes(a, (int64_t[]){ 1, 1 }, 2, 0, &outs) == TS_ERR_ARG && outs == NULL);
    int64_t pads[2] = { 9, 0 };
    CHECK(ts_pad(a, pads, 2, TS_PAD_REFLECT, 0) == NULL);
    ts_tensor *list[2] = { a, idx };
    CHECK(ts_stack(list, 2, 0) == NULL && strstr(ts_last_error(), "stack: expects tensors of equal shape") != NULL);
    CHECK(ts_mem_get_stats(TS_CPU).live_bytes == before);
    /* split pieces are views: no new bytes, and free() of the array */
    int n = 0;
    CHECK(ts_chunk(a, 2, 1, &outs, &n) == TS_OK && n == 2);
    CHECK(ts_mem_get_stats(TS_CPU).live_bytes == before);
    for (int i = 0; i < n; i++) {
        CHECK(outs[i]->storage == a->storage && outs[i]->shape[1] == 2);
        ts_tensor_release(outs[i]);
    }
    free(outs);
    ts_tensor_release(a);
    ts_tensor_release(idx);
}

int main(void)
{
    RUN(test_philox_known_answer);
    RUN(test_counter_bookkeeping);
    RUN(test_thread_count_independence);
    RUN(test_failures_release_everything);
    return check_finish("random");
}
