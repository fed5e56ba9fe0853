#include "torsh/random.h"
void ts_generator_seed(ts_generator *g, uint64_t seed) { g->seed = seed; g->offset = 0; }
