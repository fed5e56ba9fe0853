/* lock.c — exclusive locks between processes on a lock file: flock(2) on
 * "<path>", the file holding "pid hostname" of its holder. The kernel drops
 * a flock when its holder dies, so a lock file left by a killed process is
 * free at once; a lock still held through a descriptor some leftover child
 * inherited, while the recorded holder is dead on this host, is broken
 * (unlinked) and taken over. Release unlinks the file before unlocking;
 * takers check that the file they locked is still the one at the path, so
 * unlinking never lets two holders in. Provides ts_hub_lock_*. */
#include "torsh/hub.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct ts_hub_lock {
    int fd;
    char path[];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static void read_holder(int fd, char *buf, size_t n)
{
    ssize_t got = pread(fd, buf, n - 1, 0);
    if (got < 0) got = 0;
    buf[got] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl) *nl = '\0';
}

void ts_hub_lock_holder(const char *path, char *buf, size_t n)
{
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    read_holder(fd, buf, n);
    close(fd);
}

/* True when "pid host" names a process of this host that no longer runs. */
static bool holder_is_dead(const char *holder)
{
    char host[256] = "", their_host[256] = "";
    long pid = 0;
    if (sscanf(holder, "%ld %255s", &pid, their_host) != 2 || pid <= 0) return false;
    gethostname(host, sizeof host - 1);
    if (strcmp(host, their_host) != 0 || pid == (long)getpid()) return false;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static bool same_file(int fd, const char *path)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

static ts_hub_lock *take(int fd, const char *path, bool *took_over)
{
    char old[320];
    read_holder(fd, old, sizeof old);
    if (old[0] && took_over) *took_over = true;   /* a clean release unlinks the file: content means a dead holder */
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    char line[320];
    int len = snprintf(line, sizeof line, "%ld %s\n", (long)getpid(), host);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len) {
        int e = errno;
        close(fd);
        return ts_fail_null(TS_ERR_IO, "lock: cannot write '%s': %s", path, strerror(e));
    }
    size_t plen = strlen(path) + 1;
    ts_hub_lock *lk = malloc(sizeof *lk + plen);
    if (!lk) {
        unlink(path);
        close(fd);
        return ts_fail_null(TS_ERR_MEMORY, "lock: out of memory");
    }
    lk->fd = fd;
    memcpy(lk->path, path, plen);
    return lk;
}

ts_hub_lock *ts_hub_lock_acquire(const char *path, double timeout_s, bool *took_over)
{
    if (took_over) *took_over = false;
    double start = now_s(), wait = 0.02;
    char stale[320] = "";          /* holder seen dead, and since when */
    double stale_since = 0;
    for (;;) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return ts_fail_null(TS_ERR_IO, "lock: cannot open '%s': %s", path, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            if (!same_file(fd, path)) { close(fd); continue; }   /* released (unlinked) meanwhile */
            return take(fd, path, took_over);
        }
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int e = errno;
            close(fd);
            return ts_fail_null(TS_ERR_IO, "lock: flock '%s': %s", path, strerror(e));
        }
        char holder[320];
        read_holder(fd, holder, sizeof holder);
        if (holder_is_dead(holder)) {
            /* the same dead holder twice, 0.2 s apart: not a taker between flock and write */
            if (strcmp(stale, holder) == 0 && now_s() - stale_since >= 0.2) {
                if (same_file(fd, path)) unlink(path);
                close(fd);
                if (took_over) *took_over = true;
                stale[0] = '\0';
                continue;
            }
            if (strcmp(stale, holder) != 0) {
                snprintf(stale, sizeof stale, "%s", holder);
                stale_since = now_s();
            }
        } else {
            stale[0] = '\0';
        }
        close(fd);
        double waited = now_s() - start;
        if (timeout_s >= 0 && waited >= timeout_s)
            return ts_fail_null(TS_ERR_IO, "lock: '%s' is held by %s%s (waited %.1f s)", path,
                                holder[0] ? "pid " : "another process", holder[0] ? holder : "", waited);
        double left = timeout_s >= 0 ? timeout_s - waited : wait;
        sleep_s(wait < left ? wait : left);
        if (wait < 0.2) wait *= 1.5;
    }
}

void ts_hub_lock_release(ts_hub_lock *lock)
{
    if (!lock) return;
    if (same_file(lock->fd, lock->path)) unlink(lock->path);
    close(lock->fd);
    free(lock);
}
