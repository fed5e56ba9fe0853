/* torsh/random.h — seeded, reproducible random numbers.
 *
 * A ts_generator is a (seed, offset) pair driving the Philox-4x32-10
 * counter-based generator: element i of a request draws from counter
 * (offset + i), so results depend only on the seed and the order of
 * requests, never on the thread count or how work is split. Each request
 * advances the offset past what it used. Generators are plain values owned
 * by their user (the Lua binding keeps one per Lua state).
 */
#ifndef TORSH_RANDOM_H
#define TORSH_RANDOM_H

#include "torsh/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ts_generator { uint64_t seed; uint64_t offset; } ts_generator;

void ts_generator_seed(ts_generator *g, uint64_t seed);

/* Uniform in [lo, hi). Floating dtypes only. */
ts_tensor *ts_rand(ts_generator *g, const int64_t *shape, int ndim, ts_dtype dt, double lo, double hi);
/* Normal with mean and std. */
ts_tensor *ts_randn(ts_generator *g, const int64_t *shape, int ndim, ts_dtype dt, double mean, double std);
/* Integers uniform in [lo, hi). */
ts_tensor *ts_randint(ts_generator *g, int64_t lo, int64_t hi, const int64_t *shape, int ndim, ts_dtype dt);
/* 1 with probability p (p a tensor of probabilities, same shape as the result). */
ts_tensor *ts_bernoulli(ts_generator *g, const ts_tensor *p, ts_dtype dt);
ts_tensor *ts_bernoulli_scalar(ts_generator *g, double p, const int64_t *shape, int ndim, ts_dtype dt);
/* A random permutation of 0..n-1 (i64). */
ts_tensor *ts_randperm(ts_generator *g, int64_t n);
/* Fills an existing tensor in place. */
ts_status ts_uniform_(ts_generator *g, ts_tensor *t, double lo, double hi);
ts_status ts_normal_(ts_generator *g, ts_tensor *t, double mean, double std);

/* The raw Philox-4x32-10 block for 64-bit `counter` under 64-bit `key`
 * (the same bits ts_rand draws for element i from counter offset + i): for
 * callers that lay out their own counters, such as the data loader, which
 * keys each sample's draws by (seed, epoch, position) with no generator. */
void ts_philox4x32(uint64_t key, uint64_t counter, uint32_t out[4]);

#ifdef __cplusplus
}
#endif
#endif
