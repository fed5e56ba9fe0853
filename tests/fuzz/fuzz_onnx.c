/* fuzz_onnx.c — libFuzzer target of the ONNX importer (ts_onnx_load_buffer,
 * core/io/onnx_read.c) and, for every input it accepts, of the exporter
 * (ts_onnx_save, core/io/onnx_write.c): a graph or an error message, never a
 * crash or a leak; and a graph that loaded, once saved, loads again (with
 * the same numbers of nodes, inputs and outputs). External data is
 * not reachable (no base folder is given). See README.md; seeds in
 * corpus_onnx/ (tests/fixtures/gen_onnx.py OUTDIR corpus).
 *
 * Build and run with tests/fuzz/run.sh (README.md), e.g.
 *   tests/fuzz/run.sh --build build --seconds 60 onnx
 * (the reader includes the protoc-c output, <build>/proto/onnx.pb-c.h).
 */
// fuzz-sources: core/io/onnx_read.c core/io/onnx_wire.c core/io/onnx_write.c
#include "fuzz_common.h"

#include <stdlib.h>
#include <torsh/onnx.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char out[64];
    if (!out[0]) snprintf(out, sizeof out, "%s/fuzz_onnx_%ld.onnx", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
                          (long)getpid());
    ts_clear_error();
    ts_graph *g = ts_onnx_load_buffer(data, size, "fuzz.onnx", NULL);
    if (!fuzz_ok(g != NULL)) return 0;
    if (ts_onnx_save(g, out, NULL) == TS_OK) {
        ts_graph *h = ts_onnx_load(out);
        if (!h) __builtin_trap();   /* what torsh writes, torsh reads */
        if (ts_graph_node_count(h) != ts_graph_node_count(g) || ts_graph_input_count(h) != ts_graph_input_count(g) ||
            ts_graph_output_count(h) != ts_graph_output_count(g))
            __builtin_trap();
        ts_graph_free(h);
        unlink(out);
    } else {
        fuzz_ok(false);
    }
    ts_graph_free(g);
    return 0;
}
