/* writer.c — ts_tb_writer: the event file of one run. Opens
 * <logdir>/events.out.tfevents.<time>.<host>.<pid>.<counter><suffix>
 * (O_EXCL, so two writers never share a file), writes the file_version
 * record at once, queues framed Event records in memory and writes them on
 * flush, close, a full queue or the flush timer (checked on each add).
 * A failed write keeps what was not written (partial writes included) so
 * the file never holds half a record followed by another record.
 * Provides ts_tb_writer_{open,close,free,logdir,file,pending}, ts_tb_flush
 * and the internal tb_writer_add_event / tb_writer_add_value. */
#include "tb_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TB_MAX_PENDING_BYTES ((size_t)64 << 20)
#define TB_FILE_VERSION "brain.Event:2"
#define TB_SOURCE_WRITER "tensorboard.summary.writer.event_file_writer"

struct ts_tb_writer {
    char *logdir;
    char *path;
    int fd;                 /* -1 once closed */
    tb_buf pending;         /* framed records not yet written */
    int n_pending;
    double flush_secs;
    int max_queue;
    double last_write;      /* monotonic seconds */
    tb_buf projector;       /* projector_config.pbtxt body */
};

static atomic_int file_counter;

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Writes as much of the queue as the file takes; keeps the rest. */
static ts_status write_pending(ts_tb_writer *w)
{
    size_t done = 0;
    ts_status st = TS_OK;
    while (done < w->pending.len) {
        ssize_t k = write(w->fd, w->pending.data + done, w->pending.len - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            st = ts_fail(TS_ERR_IO, "tb: writing %s: %s", w->path, k < 0 ? strerror(errno) : "nothing written");
            break;
        }
        done += (size_t)k;
    }
    if (done > 0) {
        memmove(w->pending.data, w->pending.data + done, w->pending.len - done);
        w->pending.len -= done;
    }
    if (st == TS_OK) w->n_pending = 0;
    w->last_write = mono_now();
    return st;
}

ts_status tb_check_open(const ts_tb_writer *w, const char *op, const char *tag)
{
    if (!w) return ts_fail(TS_ERR_ARG, "%s: no writer", op);
    if (w->fd < 0) return ts_fail(TS_ERR_ARG, "%s%s%s%s: the writer of %s is closed", op, tag ? " '" : "",
                                  tag ? tag : "", tag ? "'" : "", w->logdir);
    return TS_OK;
}

static ts_status queue_event(ts_tb_writer *w, Tensorboard__Event *ev)
{
    size_t n = tensorboard__event__get_packed_size(ev);
    if (w->pending.len + n + 16 > TB_MAX_PENDING_BYTES && w->pending.len > 0)
        return ts_fail(TS_ERR_IO, "tb: %s: %zu bytes could not be written earlier; event dropped", w->path,
                       w->pending.len);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return ts_fail(TS_ERR_MEMORY, "tb: out of memory serialising an event of %zu bytes", n);
    tensorboard__event__pack(ev, buf);
    ts_status st = tb_frame_record(&w->pending, buf, n);
    free(buf);
    if (st == TS_OK) w->n_pending++;
    return st;
}

ts_status tb_writer_add_event(ts_tb_writer *w, Tensorboard__Event *ev, double walltime)
{
    if (tb_check_open(w, "tb", NULL)) return ts_last_status();
    ev->wall_time = walltime >= 0 ? walltime : tb_now();
    if (queue_event(w, ev)) return ts_last_status();
    if (w->n_pending >= w->max_queue || mono_now() - w->last_write >= w->flush_secs) return write_pending(w);
    return TS_OK;
}

ts_status tb_writer_add_value(ts_tb_writer *w, Tensorboard__Summary__Value *v, int64_t step, double walltime)
{
    Tensorboard__Summary s = TENSORBOARD__SUMMARY__INIT;
    Tensorboard__Summary__Value *vals[1] = {v};
    s.n_value = 1;
    s.value = vals;
    Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
    ev.step = step;
    ev.what_case = TENSORBOARD__EVENT__WHAT_SUMMARY;
    ev.summary = &s;
    return tb_writer_add_event(w, &ev, walltime);
}

tb_buf *tb_writer_projector(ts_tb_writer *w) { return &w->projector; }

void tb_shape_init(tb_shape *s, const int64_t *dims, int ndim)
{
    tensorboard__tensor_shape_proto__init(&s->proto);
    if (ndim > 8) ndim = 8;
    for (int i = 0; i < ndim; i++) {
        tensorboard__tensor_shape_proto__dim__init(&s->dims[i]);
        s->dims[i].size = dims[i];
        s->ptrs[i] = &s->dims[i];
    }
    s->proto.n_dim = (size_t)ndim;
    s->proto.dim = ndim ? s->ptrs : NULL;
}

void tb_meta_init(tb_meta *m, const char *plugin, const void *content, size_t len)
{
    tensorboard__summary_metadata__init(&m->meta);
    tensorboard__summary_metadata__plugin_data__init(&m->plugin);
    m->plugin.plugin_name = (char *)plugin;
    m->plugin.content.data = (uint8_t *)content;
    m->plugin.content.len = content ? len : 0;
    m->meta.plugin_data = &m->plugin;
}

/* ---- open / close ---------------------------------------------------------------------- */

static int create_event_file(ts_tb_writer *w, const char *suffix)
{
    for (int tries = 0; tries < 1000; tries++) {
        int counter = atomic_fetch_add(&file_counter, 1);
        free(w->path);
        w->path = tb_strdup_printf("%s/events.out.tfevents.%010lld.%s.%ld.%d%s", w->logdir, (long long)time(NULL),
                                   ts_tb_hostname(), (long)getpid(), counter, suffix ? suffix : "");
        if (!w->path) return -1;
        int fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_APPEND, 0644);
        if (fd >= 0) return fd;
        if (errno != EEXIST) {
            ts_fail(TS_ERR_IO, "SummaryWriter: cannot create event file %s: %s", w->path, strerror(errno));
            return -1;
        }
    }
    ts_fail(TS_ERR_IO, "SummaryWriter: no free event file name in %s", w->logdir);
    return -1;
}

ts_tb_writer *ts_tb_writer_open(const char *logdir, const ts_tb_options *opt)
{
    if (!logdir || !*logdir) return ts_fail_null(TS_ERR_ARG, "SummaryWriter: empty log dir");
    const char *suffix = opt ? opt->filename_suffix : NULL;
    if (suffix && strchr(suffix, '/'))
        return ts_fail_null(TS_ERR_ARG, "SummaryWriter: filename_suffix '%s' contains '/'", suffix);
    if (tb_mkdirs("SummaryWriter", logdir)) return NULL;
    ts_tb_writer *w = calloc(1, sizeof *w);
    if (!w) return ts_fail_null(TS_ERR_MEMORY, "SummaryWriter: out of memory");
    w->fd = -1;
    w->flush_secs = opt && opt->flush_secs > 0 ? opt->flush_secs : 120.0;
    w->max_queue = opt && opt->max_queue > 0 ? opt->max_queue : 10;
    w->logdir = tb_strdup_printf("%s", logdir);
    if (!w->logdir) goto fail;
    w->fd = create_event_file(w, suffix);
    if (w->fd < 0) goto fail;

    Tensorboard__SourceMetadata src = TENSORBOARD__SOURCE_METADATA__INIT;
    src.writer = TB_SOURCE_WRITER;
    Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
    ev.wall_time = tb_now();
    ev.what_case = TENSORBOARD__EVENT__WHAT_FILE_VERSION;
    ev.file_version = TB_FILE_VERSION;
    ev.source_metadata = &src;
    if (queue_event(w, &ev) || write_pending(w)) {
        unlink(w->path);
        goto fail;
    }
    return w;
fail:
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    ts_tb_writer_free(w);
    return NULL;
}

ts_status ts_tb_flush(ts_tb_writer *w)
{
    if (tb_check_open(w, "flush", NULL)) return ts_last_status();
    if (w->pending.len == 0) return TS_OK;
    return write_pending(w);
}

ts_status ts_tb_writer_close(ts_tb_writer *w)
{
    if (!w) return ts_fail(TS_ERR_ARG, "close: no writer");
    if (w->fd < 0) return TS_OK;
    ts_status st = w->pending.len ? write_pending(w) : TS_OK;
    if (st == TS_OK && fsync(w->fd) != 0 && errno != EINVAL && errno != EROFS)
        st = ts_fail(TS_ERR_IO, "tb: syncing %s: %s", w->path, strerror(errno));
    if (close(w->fd) != 0 && st == TS_OK) st = ts_fail(TS_ERR_IO, "tb: closing %s: %s", w->path, strerror(errno));
    w->fd = -1;
    tb_buf_free(&w->pending);
    w->n_pending = 0;
    return st;
}

void ts_tb_writer_free(ts_tb_writer *w)
{
    if (!w) return;
    if (w->fd >= 0) ts_tb_writer_close(w);
    tb_buf_free(&w->pending);
    tb_buf_free(&w->projector);
    free(w->logdir);
    free(w->path);
    free(w);
}

const char *ts_tb_writer_logdir(const ts_tb_writer *w) { return w ? w->logdir : NULL; }
const char *ts_tb_writer_file(const ts_tb_writer *w) { return w ? w->path : NULL; }
int ts_tb_writer_pending(const ts_tb_writer *w) { return w ? w->n_pending : 0; }
