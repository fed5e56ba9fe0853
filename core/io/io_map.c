/* io_map.c — a whole open file mapped read-only as one CPU storage
 * (io_internal.h: io_map_fd), for the readers whose tensors are views of
 * their file: .torsh (torsh_file.c), .safetensors (safetensors.c) and zip
 * archives (zip_read.c: .pt, .npz). POSIX mmap. */
#include "io_internal.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

static void release_file_map(ts_storage *s) { munmap(s->owner, s->owner_len); }

ts_storage *io_map_fd(int fd, uint64_t size, const char *op, const char *path)
{
    const char *pre = op ? op : "", *sep = op ? ": " : "";
    if (size == 0 || size > SIZE_MAX)
        return ts_fail_null(TS_ERR_IO, "%s%s'%s' is too %s to map", pre, sep, path, size ? "large" : "small");
    void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) return ts_fail_null(TS_ERR_IO, "%s%scannot map '%s': %s", pre, sep, path, strerror(errno));
    ts_storage *s = ts_storage_wrap(m, (size_t)size, release_file_map, m);
    if (!s) {
        munmap(m, (size_t)size);
        return NULL;
    }
    s->kind = TS_STORAGE_MMAP;
    s->readonly = true;
    s->owner_len = (size_t)size;
    return s;
}
