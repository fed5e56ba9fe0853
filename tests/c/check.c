/* check.c — implementation of the C test harness (see check.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE         /* nftw's FTW_DEPTH, FTW_PHYS */
#endif
#include "check.h"

#include <dirent.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "torsh/base.h"

static char tmpdir[256];

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

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    if (remove(path) != 0) fprintf(stderr, "could not remove %s\n", path);
    return 0;
}

int check_finish(const char *suite)
{
    if (tmpdir[0]) nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
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

/* ---- files ---------------------------------------------------------------- */

const char *check_tmpdir(const char *suite)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/torsh_test_%s_XXXXXX", suite);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        tmpdir[0] = '\0';
        return NULL;
    }
    return tmpdir;
}

/* One of 16 rotating path buffers. */
static char *next_buffer(void)
{
    static char buf[16][1024];
    static int next;
    return buf[next++ % 16];
}

const char *check_tmp_path(const char *name)
{
    char *p = next_buffer();
    snprintf(p, 1024, "%s/%s", tmpdir, name);
    return p;
}

const char *check_write_file(const char *name, const void *data, size_t n)
{
    const char *p = check_tmp_path(name);
    FILE *f = fopen(p, "wb");
    if (f) {
        if (n) fwrite(data, 1, n, f);
        fclose(f);
    }
    return p;
}

unsigned char *check_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *b = NULL;
    long len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (len >= 0 && fseek(f, 0, SEEK_SET) == 0 && (b = malloc((size_t)len + 1)) != NULL) {
        *n = fread(b, 1, (size_t)len, f);
        b[*n] = 0;
    }
    fclose(f);
    return b;
}

const char *check_tests_path(const char *rel)
{
    char *p = next_buffer();
    snprintf(p, 1024, "%s", __FILE__);             /* .../tests/c/check.c */
    char *slash = strrchr(p, '/');
    if (slash) snprintf(slash, 1024 - (size_t)(slash - p), "/../%s", rel);
    else snprintf(p, 1024, "../%s", rel);
    return p;
}

int check_each_file(const char *rel, void (*fn)(const char *path, const char *name, void *ctx), void *ctx)
{
    char root[1024];
    snprintf(root, sizeof root, "%s", check_tests_path(rel));
    DIR *d = opendir(root);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", root, e->d_name);
        fn(path, e->d_name, ctx);
        n++;
    }
    closedir(d);
    return n;
}

double check_max_abs_diff(const ts_tensor *a, const ts_tensor *b)
{
    if (!a || !b || a->ndim != b->ndim) return INFINITY;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return INFINITY;
    double m = 0;
    for (int64_t i = 0; i < ts_tensor_numel(a); i++) {
        double d = fabs(ts_tensor_item_at(a, i) - ts_tensor_item_at(b, i));
        if (!(d <= m)) m = d;   /* NaN wins */
    }
    return m;
}

bool check_error_has(const char *fragment)
{
    bool ok = strstr(ts_last_error(), fragment) != NULL;
    if (!ok) fprintf(stderr, "  error was: %s\n  expected: %s\n", ts_last_error(), fragment);
    return ok;
}
