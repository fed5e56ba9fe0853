/* check.h — the tiny assertion harness of the C tests. Each test file
 * defines test functions and lists them in main() with RUN(fn); CHECK
 * records a failure with file:line and goes on. check_finish() prints
 * "N passed, N failed" and writes the counts for tools/run-tests.sh. */
#ifndef TORSH_CHECK_H
#define TORSH_CHECK_H

#include <math.h>
#include <stdio.h>

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

#endif
