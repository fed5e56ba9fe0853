/* torsh/onnx.h — ONNX models in and out of the graph IR (torsh/graph.h).
 *
 *     ts_graph *g = ts_onnx_load("resnet18.onnx");  // new graph, or NULL
 *     if (!g) fprintf(stderr, "%s\n", ts_last_error());
 *     // "onnx_load: resnet18.onnx: initializer 'fc.weight': raw_data has 1000 bytes, expected 2048000"
 *     ts_exec *e = ts_exec_new(g, NULL);
 *     ...
 *     ts_onnx_save(g, "copy.onnx", NULL);           // atomic: all or nothing
 *     ts_graph_free(g);
 *
 * Import (ts_onnx_load, ts_onnx_load_buffer) reads a serialized ModelProto
 * with protobuf-c (which bounds-checks the wire format; recursive messages
 * such as the subgraphs of If/Loop are not parsed, so the nesting depth is
 * fixed) and builds a graph holding:
 *   - the producer, the opset of every domain ("ai.onnx" is stored as ""),
 *     the metadata_props;
 *   - graph inputs (initializers that older exporters also list as inputs
 *     are left out), outputs and value_info with dtypes and shapes (a
 *     dim_param becomes a graph symbol, a dim_value a size);
 *   - initializers as constant tensors (raw_data or the typed fields, or
 *     external data: `location` relative to the model's folder, which must
 *     stay inside it, with `offset` / `length` checked against the file;
 *     mapped read-only when aligned, read otherwise), dtypes f32 f64 f16
 *     bf16 i8 u8 i16 i32 i64 bool;
 *   - nodes with their attributes of every type torsh has (TENSOR
 *     attributes become tensors); `Constant` nodes become constant values;
 *     node names are made unique (an empty name gets a generated one).
 * Then the nodes are sorted (ts_graph_toposort). Refused, with a message
 * naming the file and the place: a truncated or corrupt file (with the byte
 * offset where the wire format breaks), an IR version or default-domain
 * opset newer than torsh supports (max opset 21), dtypes torsh lacks
 * (naming the tensor or value), lying sizes (dims product vs the bytes
 * present), negative dims, rank > 8, GRAPH attributes (If/Loop/Scan; the
 * message names the node and op), sparse initializers, model-local
 * functions, external data paths that are absolute or contain "..", and
 * missing or short external data files. Nothing claimed by the file is
 * allocated before it is checked against the bytes actually present.
 * Unknown ops are NOT refused here: ts_exec_new reports them.
 *
 * Export (ts_onnx_save) writes a ModelProto: IR version 8 for opset <= 18
 * (9 for 19-20, 10 for 21), producer "torsh" with the library version, the
 * graph's opsets, metadata, value infos of inputs and outputs (symbols as
 * dim_param) and of inferred intermediate values, initializers (weights)
 * in raw_data (little-endian), other constants that no node computes as
 * Constant nodes (constants folded from nodes are not written: the nodes
 * are), nodes and attributes. With external_data, initializers of at least
 * external_min_bytes (default 1024) go to PATH.data (offsets aligned to 64
 * bytes, 4096 for tensors >= 64 KiB) and the model names it relative to its
 * own folder. Writing is atomic: temporary files in the destination folder,
 * fsync, rename; on failure nothing is left behind and the old file (if
 * any) is untouched. (With external data, PATH.data is renamed just before
 * the model: only a failure between those two renames would pair an old
 * model with new data.)
 *
 * Ownership: the loaders return a new graph the caller frees with
 * ts_graph_free (constants reference their own storage: heap copies or
 * read-only mappings of the external data file; the model file itself is
 * not kept open). ts_onnx_save borrows the graph.
 */
#ifndef TORSH_ONNX_H
#define TORSH_ONNX_H

#include "torsh/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Highest default-domain opset the importer accepts. */
#define TS_ONNX_MAX_OPSET 21

/* Loads the model at `path` (external data relative to its folder). Returns
 * a new graph or NULL with the reason in ts_last_error(). */
ts_graph *ts_onnx_load(const char *path);

/* Loads a model from memory (borrowed; not kept). name_for_messages names the
 * model in errors (NULL: "<buffer>"); base_dir is the folder external data
 * paths are relative to (NULL: a model with external data is refused). */
ts_graph *ts_onnx_load_buffer(const void *data, size_t len, const char *name_for_messages, const char *base_dir);

typedef struct ts_onnx_save_options {
    int64_t opset;              /* default-domain opset written; 0 = the graph's (17 if it has none) */
    bool external_data;         /* initializers >= external_min_bytes go to PATH.data */
    size_t external_min_bytes;  /* 0 = 1024 */
} ts_onnx_save_options;

/* Writes g to `path` atomically (opt NULL = defaults). */
ts_status ts_onnx_save(const ts_graph *g, const char *path, const ts_onnx_save_options *opt);

#ifdef __cplusplus
}
#endif
#endif
