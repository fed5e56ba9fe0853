/* storage.c — ref-counted storages: counted heap memory, read-only mmap'd
 * file regions, and caller-owned (external) memory. Device storages come from
 * their backend's storage_new. */
#include "torsh/tensor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void release_heap(ts_storage *s) { ts_mem_free(s->data, s->nbytes); }
static void release_mmap(ts_storage *s) { munmap(s->owner, s->owner_len); }

ts_storage *ts_storage_new(size_t nbytes)
{
    ts_storage *s = calloc(1, sizeof *s);
    if (!s) return ts_fail_null(TS_ERR_MEMORY, "out of memory (storage header)");
    s->data = ts_mem_alloc(nbytes);
    if (!s->data) { free(s); return NULL; }
    s->refcount = 1;
    s->kind = TS_STORAGE_HEAP;
    s->nbytes = nbytes;
    s->release = release_heap;
    return s;
}

ts_storage *ts_storage_mmap(const char *path, size_t offset, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ts_fail_null(TS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ts_fail_null(TS_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (offset > (size_t)st.st_size || len > (size_t)st.st_size - offset) {
        close(fd);
        return ts_fail_null(TS_ERR_FORMAT, "'%s': region [%zu, +%zu) is past the end of the file (%lld bytes)",
                            path, offset, len, (long long)st.st_size);
    }
    long page = sysconf(_SC_PAGESIZE);
    size_t base = offset - offset % (size_t)page, maplen = len + (offset - base);
    void *m = mmap(NULL, maplen ? maplen : 1, PROT_READ, MAP_PRIVATE, fd, (off_t)base);
    close(fd);
    if (m == MAP_FAILED) return ts_fail_null(TS_ERR_IO, "cannot map '%s': %s", path, strerror(errno));
    ts_storage *s = calloc(1, sizeof *s);
    if (!s) { munmap(m, maplen); return ts_fail_null(TS_ERR_MEMORY, "out of memory (storage header)"); }
    s->refcount = 1;
    s->kind = TS_STORAGE_MMAP;
    s->data = (char *)m + (offset - base);
    s->nbytes = len;
    s->readonly = true;
    s->release = release_mmap;
    s->owner = m;
    s->owner_len = maplen ? maplen : 1;
    return s;
}

ts_storage *ts_storage_wrap(void *data, size_t nbytes, ts_storage_release_fn release, void *owner)
{
    ts_storage *s = calloc(1, sizeof *s);
    if (!s) return ts_fail_null(TS_ERR_MEMORY, "out of memory (storage header)");
    s->refcount = 1;
    s->kind = TS_STORAGE_EXTERNAL;
    s->data = data;
    s->nbytes = nbytes;
    s->release = release;
    s->owner = owner;
    return s;
}

void ts_storage_retain(ts_storage *s) { __atomic_add_fetch(&s->refcount, 1, __ATOMIC_RELAXED); }

void ts_storage_release(ts_storage *s)
{
    if (!s) return;
    if (__atomic_sub_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL) != 0) return;
    if (s->release) s->release(s);
    free(s);
}
