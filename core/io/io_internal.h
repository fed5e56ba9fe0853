/* io_internal.h — helpers shared by the file readers of core/io (not
 * installed): byte-order swaps, "how many bytes does this file hold", size
 * checks, and the whole file mapped as one storage (io_map.c). */
#ifndef TORSH_IO_INTERNAL_H
#define TORSH_IO_INTERNAL_H

#include "torsh/io.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Reverses the byte order of n elements of esize bytes (1, 2, 4 or 8) in place. */
static inline void io_swap_bytes(void *data, int64_t n, size_t esize)
{
    unsigned char *p = data;
    for (int64_t i = 0; i < n; i++, p += esize) {
        if (esize == 2) {
            uint16_t v;
            memcpy(&v, p, 2);
            v = __builtin_bswap16(v);
            memcpy(p, &v, 2);
        } else if (esize == 4) {
            uint32_t v;
            memcpy(&v, p, 4);
            v = __builtin_bswap32(v);
            memcpy(p, &v, 4);
        } else if (esize == 8) {
            uint64_t v;
            memcpy(&v, p, 8);
            v = __builtin_bswap64(v);
            memcpy(p, &v, 8);
        }
    }
}

/* Size in bytes of the open regular file f; -1 (with errno) when it is not
 * a regular file or fstat fails. */
static inline int64_t io_file_size(FILE *f)
{
    struct stat st;
    if (fstat(fileno(f), &st) != 0) return -1;
    if (!S_ISREG(st.st_mode)) return -1;
    return (int64_t)st.st_size;
}

/* Product of n sizes times esize into *bytes; false when it passes the
 * largest tensor the core allocates (TS_MAX_ALLOC_BYTES). */
static inline bool io_checked_bytes(const int64_t *shape, int n, size_t esize, int64_t *numel, int64_t *bytes)
{
    uint64_t count = 1;
    for (int i = 0; i < n; i++) {
        if (shape[i] < 0) return false;
        if (shape[i] == 0) { count = 0; continue; }
        if (count && (uint64_t)shape[i] > (uint64_t)TS_MAX_ALLOC_BYTES / count) return false;
        count = count ? count * (uint64_t)shape[i] : 0;
    }
    if (count > (uint64_t)TS_MAX_ALLOC_BYTES / esize) return false;
    *numel = (int64_t)count;
    *bytes = (int64_t)(count * esize);
    return true;
}

/* The whole open file fd (size bytes, > 0) mapped read-only as a new CPU
 * storage (kind TS_STORAGE_MMAP, readonly; unmapped when its last
 * reference goes; fd may be closed at once). Messages start "op: " (none
 * when op is NULL) and name path. NULL on failure. */
ts_storage *io_map_fd(int fd, uint64_t size, const char *op, const char *path);

#endif
