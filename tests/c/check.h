/* check.h — the tiny assertion harness of the C tests. Each test file
 * defines test functions and lists them in main() with RUN(fn); CHECK
 * records a failure with file:line and goes on. check_finish() prints
 * "N passed, N failed", writes the counts for tools/run-tests.sh and
 * removes the test's temporary folder. Also what file tests share: the
 * temporary folder and files in it, the source tree's tests/ files (seed
 * corpora, fixtures), and "does the core's last error say this". */
#ifndef TORSH_CHECK_H
#define TORSH_CHECK_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "torsh/tensor.h"

extern int check_failures_in_case;
void check_fail(const char *file, int line, const char *expr);
void check_run(const char *name, void (*fn)(void));
int check_finish(const char *suite);

#define CHECK(expr) do { if (!(expr)) check_fail(__FILE__, __LINE__, #expr); } while (0)
#define CHECK_NEAR(a, b, tol) do { double _a = (a), _b = (b); \
    if (!(fabs(_a - _b) <= (tol) * (1 + fabs(_b)))) { \
        char _m[256]; snprintf(_m, sizeof _m, "%s = %.9g, expected %.9g", #a, _a, _b); \
        check_fail(__FILE__, __LINE__, _m); } } while (0)
#define RUN(fn) check_run(#fn, fn)

/* ---- files ---------------------------------------------------------------- */

/* Makes the test's temporary folder /tmp/torsh_test_<suite>_XXXXXX (call
 * once, in main); check_finish removes it with all it holds. Its path, or
 * NULL (with a message) when it cannot be made. */
const char *check_tmpdir(const char *suite);
/* "<tmpdir>/<name>", in one of 16 rotating buffers shared with
 * check_write_file and check_tests_path (valid for 15 more such calls). */
const char *check_tmp_path(const char *name);
/* Writes n bytes to <tmpdir>/<name> (replacing it); returns that path. */
const char *check_write_file(const char *name, const void *data, size_t n);
/* The whole file at path in a new malloc'ed buffer with one NUL byte after
 * the data (the caller frees it); *n gets the size. NULL when unreadable. */
unsigned char *check_read_file(const char *path, size_t *n);
/* Path of `rel` inside the source tree's tests/ folder ("fuzz/corpus_npy"),
 * in one of the rotating buffers. */
const char *check_tests_path(const char *rel);
/* Calls fn(path, name, ctx) for every file of tests/<rel> whose name does
 * not start with '.'; returns how many, or -1 when the folder cannot be
 * read. */
int check_each_file(const char *rel, void (*fn)(const char *path, const char *name, void *ctx), void *ctx);

/* ---- the core's results ------------------------------------------------------ */

/* True when ts_last_error() contains fragment; prints both when not. */
bool check_error_has(const char *fragment);
/* Largest |a - b| over the elements (any dtypes and strides); INFINITY when
 * either is NULL or the shapes differ, NaN when any difference is NaN. */
double check_max_abs_diff(const ts_tensor *a, const ts_tensor *b);

#endif
