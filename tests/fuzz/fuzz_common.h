/* fuzz_common.h — what the libFuzzer targets share: the input bytes become
 * a file the reader can open by path (a memfd, seen as /proc/self/fd/N, so
 * nothing touches the disk), rewritten for every input. */
#ifndef TORSH_FUZZ_COMMON_H
#define TORSH_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* Path of a file now holding data[0..size), or NULL when it cannot be made. */
static const char *fuzz_file(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("torsh-fuzz", 0);
        if (fd < 0) return NULL;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0) return NULL;
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);
        if (n <= 0) return NULL;
        done += (size_t)n;
    }
    return path;
}

#endif
