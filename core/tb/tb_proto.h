/* tb_proto.h — the writer's protobuf-facing internals shared by the files of
 * core/tb: queueing an Event or one Summary.Value (writer.c), and small
 * holders that keep a TensorShapeProto or plugin metadata alive on the
 * stack while a message is serialised. Needs <build>/proto on the include
 * path (tensorboard.pb-c.h). Not installed. */
#ifndef TORSH_TB_PROTO_H
#define TORSH_TB_PROTO_H

#include "tb_internal.h"
#include "tensorboard.pb-c.h"

/* ---- the writer ------------------------------------------------------------------------- */

/* Checks the writer is usable; names op and tag in the message. */
ts_status tb_check_open(const ts_tb_writer *w, const char *op, const char *tag);
/* Serialises ev (wall_time filled from walltime, or now when < 0), frames
 * it, queues it and writes the queue when the timer or the queue says so. */
ts_status tb_writer_add_event(ts_tb_writer *w, Tensorboard__Event *ev, double walltime);
/* Event{summary: {value: [v]}, step}. */
ts_status tb_writer_add_value(ts_tb_writer *w, Tensorboard__Summary__Value *v, int64_t step, double walltime);
/* The writer's projector_config.pbtxt text so far: one "embeddings { ... }"
 * block per embedding added (embedding.c appends and rewrites the file). */
tb_buf *tb_writer_projector(ts_tb_writer *w);

/* TensorProto helpers: a tensor proto needs its shape's dims to live as long
 * as it; these hold up to 8 dims inline. */
typedef struct tb_shape {
    Tensorboard__TensorShapeProto proto;
    Tensorboard__TensorShapeProto__Dim dims[8];
    Tensorboard__TensorShapeProto__Dim *ptrs[8];
} tb_shape;
void tb_shape_init(tb_shape *s, const int64_t *dims, int ndim);

/* PluginData metadata with no content (content may be NULL/0). */
typedef struct tb_meta {
    Tensorboard__SummaryMetadata meta;
    Tensorboard__SummaryMetadata__PluginData plugin;
} tb_meta;
void tb_meta_init(tb_meta *m, const char *plugin, const void *content, size_t len);

#endif
