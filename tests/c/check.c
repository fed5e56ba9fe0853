/* check.c — implementation of the C test harness (see check.h). */
#include "check.h"

#include <stdlib.h>
#include <string.h>

int check_failures_in_case;
static int passed, failed;

void check_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "  FAIL %s:%d: %s\n", file, line, expr);
    check_failures_in_case++;
}

void check_run(const char *name, void (*fn)(void))
{
    check_failures_in_case = 0;
    fn();
    if (check_failures_in_case) { failed++; printf("not ok %s\n", name); }
    else { passed++; printf("ok %s\n", name); }
}

int check_finish(const char *suite)
{
    printf("%d passed, %d failed\n", passed, failed);
    const char *dir = getenv("TORSH_TEST_RESULTS");
    if (dir && *dir) {
        char path[1024];
        snprintf(path, sizeof path, "%s/c_%s", dir, suite);
        FILE *f = fopen(path, "w");
        if (f) { fprintf(f, "%d %d 0\n", passed, failed); fclose(f); }
    }
    return failed ? 1 : 0;
}
