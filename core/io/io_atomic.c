/* io_atomic.c — the atomic file writer of core/io (io_atomic.h): temp file
 * with O_EXCL next to the target, fsync, rename, folder fsync. POSIX only.
 * Used by every writer of core/io (.torsh, zip/.pt/.npz, .npy,
 * .safetensors). */
#include "io_atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WRITE_MAX ((size_t)1 << 30)     /* bytes per write() call */

/* The two arguments that start a message: "op: ", or nothing when op is
 * NULL (the caller adds its own prefix). */
#define OP(op) ((op) ? (op) : ""), ((op) ? ": " : "")

/* The file a save replaces: the target of a symlink, so the link survives. */
static char *resolve_target(const char *path, struct stat *old, bool *exists)
{
    struct stat ls;
    *exists = false;
    if (lstat(path, &ls) == 0 && S_ISLNK(ls.st_mode)) {
        char *real = realpath(path, NULL);
        if (real && stat(real, old) == 0) { *exists = true; return real; }
        free(real);
    } else if (stat(path, old) == 0) {
        *exists = true;
    }
    return strdup(path);
}

/* "<path>.tmp.<pid>.<16 hex digits>", created with O_EXCL. */
static int create_temp(const char *path, const char *op, char **tmp_out)
{
    size_t cap = strlen(path) + 48;
    char *tmp = malloc(cap);
    if (!tmp) { ts_fail(TS_ERR_MEMORY, "%s%sout of memory (temp name)", OP(op)); return -1; }
    for (int attempt = 0; attempt < 16; attempt++) {
        uint64_t r = 0;
        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            r = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec ^ ((uint64_t)attempt << 56);
        }
        snprintf(tmp, cap, "%s.tmp.%ld.%016llx", path, (long)getpid(), (unsigned long long)r);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) { *tmp_out = tmp; return fd; }
        if (errno != EEXIST) {
            ts_fail(TS_ERR_IO, "%s%s'%s': cannot create the temporary file '%s': %s", OP(op), path, tmp, strerror(errno));
            free(tmp);
            return -1;
        }
    }
    ts_fail(TS_ERR_IO, "%s%s'%s': cannot find a free temporary file name", OP(op), path);
    free(tmp);
    return -1;
}

/* fsync of the folder holding path, so the rename itself is durable. */
static ts_status sync_folder(const char *path, const char *op)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return ts_fail(TS_ERR_MEMORY, "%s%sout of memory (folder name)", OP(op));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ts_status st = TS_OK;
    if (fd < 0) st = ts_fail(TS_ERR_IO, "%s%s'%s': saved, but cannot open its folder to sync it: %s", OP(op), path, strerror(errno));
    else {
        if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS && errno != ENOTSUP)
            st = ts_fail(TS_ERR_IO, "%s%s'%s': saved, but syncing its folder failed: %s", OP(op), path, strerror(errno));
        close(fd);
    }
    free(dir);
    return st;
}

static void release(ts_io_atomic *a)
{
    free(a->tmp);
    free(a->target);
    a->tmp = a->target = NULL;
    a->fd = -1;
}

ts_status ts_io_atomic_begin(ts_io_atomic *a, const char *path, const char *op)
{
    memset(a, 0, sizeof *a);
    a->fd = -1;
    a->op = op;
    if (!path || !*path) return ts_fail(TS_ERR_ARG, "%s%sempty path", OP(op));
    struct stat old;
    bool exists;
    a->target = resolve_target(path, &old, &exists);
    if (!a->target) return ts_fail(TS_ERR_MEMORY, "%s%sout of memory (path)", OP(op));
    if (exists && S_ISDIR(old.st_mode)) {
        release(a);
        return ts_fail(TS_ERR_IO, "%s%s'%s' is a folder; give a file name to save to", OP(op), path);
    }
    a->fd = create_temp(a->target, op, &a->tmp);
    if (a->fd < 0) { release(a); return ts_last_status(); }
    if (exists && S_ISREG(old.st_mode)) (void)fchmod(a->fd, old.st_mode & 07777);   /* keep the old file's mode */
    return TS_OK;
}

ts_status ts_io_atomic_write(ts_io_atomic *a, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(a->fd, p, n < WRITE_MAX ? n : WRITE_MAX);
        if (w < 0) {
            if (errno == EINTR) continue;
            return ts_fail(TS_ERR_IO, "%s%scannot write '%s': %s", OP(a->op), a->tmp, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return TS_OK;
}

ts_status ts_io_atomic_write_tensor(ts_io_atomic *a, const ts_tensor *t)
{
    ts_tensor *c = ts_contiguous(t);      /* t itself (retained) when already contiguous */
    if (!c) return ts_last_status();
    ts_status st = ts_io_atomic_write(a, ts_tensor_data(c), ts_tensor_nbytes(c));
    ts_tensor_release(c);
    return st;
}

ts_status ts_io_atomic_zeros(ts_io_atomic *a, uint64_t n)
{
    static const char zeros[4096];
    while (n > 0) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (ts_io_atomic_write(a, zeros, k)) return ts_last_status();
        n -= k;
    }
    return TS_OK;
}

ts_status ts_io_atomic_commit(ts_io_atomic *a)
{
    ts_status st = TS_OK;
    if (fsync(a->fd) != 0) st = ts_fail(TS_ERR_IO, "%s%scannot sync '%s' to disk: %s", OP(a->op), a->tmp, strerror(errno));
    if (close(a->fd) != 0 && st == TS_OK) st = ts_fail(TS_ERR_IO, "%s%scannot close '%s': %s", OP(a->op), a->tmp, strerror(errno));
    if (st == TS_OK && rename(a->tmp, a->target) != 0)
        st = ts_fail(TS_ERR_IO, "%s%scannot rename '%s' to '%s': %s", OP(a->op), a->tmp, a->target, strerror(errno));
    if (st != TS_OK) unlink(a->tmp);
    else st = sync_folder(a->target, a->op);
    release(a);
    return st;
}

void ts_io_atomic_abort(ts_io_atomic *a)
{
    if (a->fd >= 0) {
        close(a->fd);
        unlink(a->tmp);
    }
    release(a);
}
