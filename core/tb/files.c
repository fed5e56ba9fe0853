/* files.c — the small file-system and formatting helpers of core/tb:
 * mkdir -p, whole-file atomic writes (temp name, fsync, rename), a malloc'ed
 * printf, shortest round-trip number formatting, error context, the wall
 * clock and the host name. Provides tb_mkdirs, tb_write_file,
 * tb_strdup_printf, tb_format_number, tb_fail_context, tb_now, ts_tb_now,
 * ts_tb_hostname. */
#include "tb_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

ts_status tb_mkdirs(const char *op, const char *path)
{
    size_t len = strlen(path);
    if (len == 0) return ts_fail(TS_ERR_ARG, "%s: empty log dir", op);
    char *buf = malloc(len + 1);
    if (!buf) return ts_fail(TS_ERR_MEMORY, "%s: out of memory", op);
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            ts_status st = ts_fail(TS_ERR_IO, "%s: cannot create log dir '%s': %s", op, buf, strerror(errno));
            free(buf);
            return st;
        }
        buf[i] = c;
    }
    free(buf);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return ts_fail(TS_ERR_IO, "%s: cannot create log dir '%s': %s", op, path, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return ts_fail(TS_ERR_IO, "%s: log dir '%s' exists and is not a directory", op, path);
    return TS_OK;
}

ts_status tb_write_file(const char *op, const char *path, const void *data, size_t n)
{
    char *tmp = tb_strdup_printf("%s.tmp-%ld", path, (long)getpid());
    if (!tmp) return ts_last_status();
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        ts_status st = ts_fail(TS_ERR_IO, "%s: cannot create '%s': %s", op, path, strerror(errno));
        free(tmp);
        return st;
    }
    const uint8_t *p = data;
    size_t left = n;
    while (left > 0) {
        ssize_t k = write(fd, p, left);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) goto fail;
        p += k;
        left -= (size_t)k;
    }
    if (fsync(fd) != 0) goto fail;
    if (close(fd) != 0) { fd = -1; goto fail; }
    fd = -1;
    if (rename(tmp, path) != 0) goto fail;
    free(tmp);
    return TS_OK;
fail:;
    int e = errno ? errno : EIO;
    if (fd >= 0) close(fd);
    unlink(tmp);
    free(tmp);
    return ts_fail(TS_ERR_IO, "%s: writing '%s': %s", op, path, strerror(e));
}

char *tb_strdup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return ts_fail_null(TS_ERR_INTERNAL, "tb: bad format");
    char *s = malloc((size_t)n + 1);
    if (!s) return ts_fail_null(TS_ERR_MEMORY, "tb: out of memory");
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void tb_format_number(char *buf, size_t cap, double v, bool single)
{
    int maxp = single ? 9 : 17;
    for (int p = 1; p <= maxp; p++) {
        snprintf(buf, cap, "%.*g", p, v);
        if (single ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v) return;
    }
    snprintf(buf, cap, "%.*g", maxp, v);   /* NaN and Inf land here: "nan", "inf" */
}

ts_status tb_fail_context(ts_status code, const char *fmt, ...)
{
    char msg[768], ctx[256];
    snprintf(msg, sizeof msg, "%s", ts_last_error());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    return ts_fail(code, "%s: %s", ctx, msg);
}

double tb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double ts_tb_now(void) { return tb_now(); }

static char host[256];
static once_flag host_once = ONCE_FLAG_INIT;

static void init_host(void)
{
    if (gethostname(host, sizeof host - 1) != 0 || !host[0]) strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    for (char *c = host; *c; c++)
        if (*c == '/') *c = '_';
}

const char *ts_tb_hostname(void)
{
    call_once(&host_once, init_host);
    return host;
}
