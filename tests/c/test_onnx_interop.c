/* test_onnx_interop.c — the model-running half of tests/sh/test_onnx_interop.sh:
 * when TORSH_ONNX_INTEROP_DIR names a folder, every subfolder holding
 * model.onnx, input.npy and expected.npy (written by tests/fixtures/gen_onnx.py
 * from real PyTorch exports) is loaded (ts_onnx_load), run through the
 * executor and compared with PyTorch's output (max abs difference <= 1e-4,
 * or TORSH_ONNX_INTEROP_TOL); then exported by torsh (torsh.onnx inline,
 * torsh_ext.onnx + .data with external data) — files the shell test hands
 * to onnx.checker — and the exports re-imported and run to the same bytes.
 * Without the variable (a plain ctest run) it reports itself skipped. */
#include "check.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <torsh/graph.h>
#include <torsh/io.h>
#include <torsh/onnx.h>

static const char *dir;
static const char *model;   /* the subfolder being tested */
static double tol = 1e-4;

static ts_tensor *run1(const ts_graph *g, ts_tensor *x)
{
    ts_exec *e = ts_exec_new(g, NULL);
    if (!e) { fprintf(stderr, "  %s: %s\n", model, ts_last_error()); return NULL; }
    ts_tensor *y = NULL;
    if (ts_exec_run(e, &x, 1, &y, 1) != TS_OK) fprintf(stderr, "  %s: %s\n", model, ts_last_error());
    ts_exec_free(e);
    return y;
}

static const char *path_of(const char *file)
{
    static char buf[4][1024];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 1024, "%s/%s/%s", dir, model, file);
    return p;
}

static void run_model(void)
{
    ts_graph *g = ts_onnx_load(path_of("model.onnx"));
    ts_tensor *x = ts_npy_read(path_of("input.npy"));
    ts_tensor *want = ts_npy_read(path_of("expected.npy"));
    if (!g || !x || !want) fprintf(stderr, "  %s: %s\n", model, ts_last_error());
    CHECK(g && x && want);
    ts_tensor *y = NULL;
    if (g && x && want) {
        y = run1(g, x);
        double d = check_max_abs_diff(y, want);
        printf("  %s: max abs difference vs PyTorch %.3g\n", model, d);
        CHECK(d <= tol);
        /* torsh's own exports: inline and external data, same outputs exactly */
        const char *names[2] = { "torsh.onnx", "torsh_ext.onnx" };
        for (int ext = 0; ext < 2; ext++) {
            ts_onnx_save_options o = { .external_data = ext };
            CHECK(ts_onnx_save(g, path_of(names[ext]), &o) == TS_OK);
            ts_graph *h = ts_onnx_load(path_of(names[ext]));
            if (!h) fprintf(stderr, "  %s: %s\n", model, ts_last_error());
            CHECK(h != NULL);
            ts_tensor *y2 = h ? run1(h, x) : NULL;
            CHECK(y && y2 && check_max_abs_diff(y, y2) == 0);
            ts_tensor_release(y2);
            ts_graph_free(h);
        }
    }
    ts_tensor_release(y);
    ts_tensor_release(x);
    ts_tensor_release(want);
    ts_graph_free(g);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(void)
{
    dir = getenv("TORSH_ONNX_INTEROP_DIR");
    if (!dir || !*dir) {
        printf("skip: TORSH_ONNX_INTEROP_DIR is not set (tests/sh/test_onnx_interop.sh sets it)\n");
        printf("0 passed, 0 failed, 1 skipped\n");
        const char *res = getenv("TORSH_TEST_RESULTS");
        if (res && *res) {
            char p[1024];
            snprintf(p, sizeof p, "%s/c_onnx_interop", res);
            FILE *f = fopen(p, "w");
            if (f) { fputs("0 0 1\n", f); fclose(f); }
        }
        return 0;
    }
    const char *t = getenv("TORSH_ONNX_INTEROP_TOL");
    if (t && *t) tol = atof(t);
    DIR *d = opendir(dir);
    if (!d) { perror(dir); return 1; }
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256) {
        if (e->d_name[0] == '.') continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s/model.onnx", dir, e->d_name);
        FILE *f = fopen(p, "rb");
        if (!f) continue;
        fclose(f);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_name);
    for (int i = 0; i < n; i++) {
        model = names[i];
        check_run(model, run_model);
        free(names[i]);
    }
    if (n == 0) {
        fprintf(stderr, "no model folders in %s\n", dir);
        return 1;
    }
    return check_finish("onnx_interop");
}
