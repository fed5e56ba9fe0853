/* fs.c — the few file-system operations the hub's cache needs beyond what
 * Lua's io/os offer: lstat, sorted directory listings, mkdir -p, atomic
 * symlink replacement, readlink, rm -rf, atomic copies and directory fsync.
 * Provides ts_hub_{stat_path,listdir,mkdirs,symlink,readlink,remove_tree,
 * copy_file,fsync_dir}. */
#include "torsh/hub.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static ts_hub_ftype ftype_of(mode_t m)
{
    if (S_ISREG(m)) return TS_HUB_FILE;
    if (S_ISDIR(m)) return TS_HUB_DIR;
    if (S_ISLNK(m)) return TS_HUB_LINK;
    return TS_HUB_OTHER;
}

ts_status ts_hub_stat_path(const char *path, ts_hub_stat *st)
{
    struct stat sb;
    memset(st, 0, sizeof *st);
    if (lstat(path, &sb) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) return TS_OK;
        return ts_fail(TS_ERR_IO, "stat: '%s': %s", path, strerror(errno));
    }
    st->type = ftype_of(sb.st_mode);
    st->size = (int64_t)sb.st_size;
    st->mtime = (double)sb.st_mtim.tv_sec + (double)sb.st_mtim.tv_nsec * 1e-9;
    if (st->type == TS_HUB_LINK) {
        struct stat tb;
        st->target = stat(path, &tb) == 0 ? ftype_of(tb.st_mode) : TS_HUB_NONE;
    }
    return TS_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *ts_hub_listdir(const char *path, size_t *count)
{
    *count = 0;
    DIR *d = opendir(path);
    if (!d) return ts_fail_null(TS_ERR_IO, "listdir: '%s': %s", path, strerror(errno));
    size_t n = 0, cap = 16, bytes = 0;
    char **names = malloc(cap * sizeof *names);
    struct dirent *e = NULL;
    while (names && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (n == cap) {
            char **more = realloc(names, 2 * cap * sizeof *names);
            if (!more) break;
            names = more;
            cap *= 2;
        }
        names[n] = strdup(e->d_name);
        if (!names[n]) break;
        bytes += strlen(e->d_name) + 1;
        n++;
    }
    bool complete = names && e == NULL;
    closedir(d);
    char *block = complete ? malloc(bytes + 1) : NULL;
    if (block) {
        qsort(names, n, sizeof *names, cmp_str);
        char *p = block;
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(names[i]) + 1;
            memcpy(p, names[i], len);
            p += len;
        }
        *count = n;
    }
    for (size_t i = 0; names && i < n; i++) free(names[i]);
    free(names);
    if (!block) return ts_fail_null(TS_ERR_MEMORY, "listdir: out of memory listing '%s'", path);
    return block;
}

ts_status ts_hub_mkdirs(const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf) return ts_fail(TS_ERR_ARG, "mkdirs: bad path '%s'", path);
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return ts_fail(TS_ERR_IO, "mkdirs: cannot create '%s': %s", buf, strerror(errno));
            *p = c;
            if (c == '\0') break;
        }
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return ts_fail(TS_ERR_IO, "mkdirs: '%s' exists and is not a directory", path);
    return TS_OK;
}

ts_status ts_hub_symlink(const char *target, const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return ts_fail(TS_ERR_ARG, "symlink: path too long '%s'", path);
    unlink(tmp);
    if (symlink(target, tmp) != 0)
        return ts_fail(TS_ERR_IO, "symlink: cannot create '%s': %s", tmp, strerror(errno));
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return ts_fail(TS_ERR_IO, "symlink: cannot rename to '%s': %s", path, strerror(e));
    }
    return TS_OK;
}

ts_status ts_hub_readlink(const char *path, char *buf, size_t n)
{
    ssize_t got = readlink(path, buf, n - 1);
    if (got < 0) return ts_fail(TS_ERR_IO, "readlink: '%s': %s", path, strerror(errno));
    buf[got] = '\0';
    return TS_OK;
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)ftw;
    int rc = flag == FTW_DP ? rmdir(path) : unlink(path);
    return rc != 0 && errno != ENOENT ? -1 : 0;
}

ts_status ts_hub_remove_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0) return errno == ENOENT ? TS_OK : ts_fail(TS_ERR_IO, "remove: '%s': %s", path, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) {
        if (unlink(path) != 0 && errno != ENOENT) return ts_fail(TS_ERR_IO, "remove: '%s': %s", path, strerror(errno));
        return TS_OK;
    }
    if (nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return ts_fail(TS_ERR_IO, "remove: cannot remove all of '%s': %s", path, strerror(errno));
    return TS_OK;
}

ts_status ts_hub_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ts_fail(TS_ERR_IO, "fsync: cannot open directory '%s': %s", dir, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    /* some file systems do not support fsync on directories */
    if (rc != 0 && e != EINVAL && e != ENOTSUP) return ts_fail(TS_ERR_IO, "fsync: '%s': %s", dir, strerror(e));
    return TS_OK;
}

static ts_status copy_fd(int in, int out, const char *src, const char *dst)
{
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
        if (n == 0) return TS_OK;
        if (n > 0) continue;
        if (errno == EINTR) continue;
        if (errno != EXDEV && errno != ENOSYS && errno != EOPNOTSUPP && errno != EINVAL)
            return ts_fail(TS_ERR_IO, "copy: '%s' -> '%s': %s", src, dst, strerror(errno));
        break;   /* fall back to read/write */
    }
    char *buf = malloc(1 << 20);
    if (!buf) return ts_fail(TS_ERR_MEMORY, "copy: out of memory");
    ts_status st = TS_OK;
    for (;;) {
        ssize_t n = read(in, buf, 1 << 20);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n < 0) st = ts_fail(TS_ERR_IO, "copy: cannot read '%s': %s", src, strerror(errno));
            break;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) { st = ts_fail(TS_ERR_IO, "copy: cannot write '%s': %s", dst, strerror(errno)); break; }
            off += w;
        }
        if (st != TS_OK) break;
    }
    free(buf);
    return st;
}

ts_status ts_hub_copy_file(const char *src, const char *dst)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp-%ld", dst, (long)getpid()) >= (int)sizeof tmp)
        return ts_fail(TS_ERR_ARG, "copy: path too long '%s'", dst);
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return ts_fail(TS_ERR_IO, "copy: cannot open '%s': %s", src, strerror(errno));
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        int e = errno;
        close(in);
        return ts_fail(TS_ERR_IO, "copy: cannot create '%s': %s", tmp, strerror(e));
    }
    ts_status st = copy_fd(in, out, src, dst);
    close(in);
    if (st == TS_OK && fsync(out) != 0) st = ts_fail(TS_ERR_IO, "copy: fsync '%s': %s", tmp, strerror(errno));
    if (close(out) != 0 && st == TS_OK) st = ts_fail(TS_ERR_IO, "copy: close '%s': %s", tmp, strerror(errno));
    if (st == TS_OK && rename(tmp, dst) != 0) st = ts_fail(TS_ERR_IO, "copy: cannot rename to '%s': %s", dst, strerror(errno));
    if (st != TS_OK) unlink(tmp);
    return st;
}
