/* cifar.c — the CIFAR-10 binary batch reader (torsh/io.h:
 * ts_cifar10_read): records of 1 label byte + 3072 pixel bytes (the red,
 * green and blue 32x32 planes), split into an images tensor u8
 * [N, 3, 32, 32] and a labels tensor i64 [N]. The file size is checked
 * before anything is allocated; records are read in chunks. */
#include "io_internal.h"

#include <errno.h>
#include <stdlib.h>

#define CIFAR_PIXELS 3072
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define CIFAR_CHUNK 512          /* records per read */
#define CIFAR_CLASSES 10

/* Reads n records into the tensors from record `first` on. */
static ts_status read_records(FILE *f, const char *path, unsigned char *buf, int64_t first, int64_t n,
                              uint8_t *pixels, int64_t *labels)
{
    size_t want = (size_t)n * CIFAR_RECORD;
    size_t got = fread(buf, 1, want, f);
    if (got != want)
        return ts_fail(ferror(f) ? TS_ERR_IO : TS_ERR_FORMAT, "cifar10_read: %s: %s at record %lld", path,
                       ferror(f) ? strerror(errno) : "truncated (the file shrank while reading)", (long long)first);
    for (int64_t r = 0; r < n; r++) {
        const unsigned char *rec = buf + r * CIFAR_RECORD;
        if (rec[0] >= CIFAR_CLASSES)
            return ts_fail(TS_ERR_FORMAT, "cifar10_read: %s: record %lld has label %d; CIFAR-10 labels are 0..9 "
                           "(a CIFAR-100 file has 2 label bytes per record)", path, (long long)(first + r), rec[0]);
        labels[first + r] = rec[0];
        memcpy(pixels + (first + r) * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
    }
    return TS_OK;
}

ts_status ts_cifar10_read(const char *path, ts_tensor **images, ts_tensor **labels)
{
    if (!images || !labels) return ts_fail(TS_ERR_ARG, "cifar10_read: NULL result pointers");
    *images = *labels = NULL;
    if (!path) return ts_fail(TS_ERR_ARG, "cifar10_read: path is NULL");
    FILE *f = fopen(path, "rbe");
    if (!f) return ts_fail(TS_ERR_IO, "cifar10_read: cannot open %s: %s", path, strerror(errno));
    int64_t size = io_file_size(f);
    if (size < 0) {
        fclose(f);
        return ts_fail(TS_ERR_IO, "cifar10_read: %s is not a regular file", path);
    }
    if (size == 0 || size % CIFAR_RECORD != 0) {
        fclose(f);
        return ts_fail(TS_ERR_FORMAT, "cifar10_read: %s: size %lld bytes is not a whole number of %d-byte records "
                       "(1 label byte + 3072 pixels; an official batch holds 10000 records, %d bytes)", path,
                       (long long)size, CIFAR_RECORD, 10000 * CIFAR_RECORD);
    }
    int64_t n = size / CIFAR_RECORD;
    int64_t ishape[4] = { n, 3, 32, 32 };
    ts_tensor *im = ts_tensor_new(ishape, 4, TS_U8), *lb = ts_tensor_new(&n, 1, TS_I64);
    unsigned char *buf = malloc((size_t)CIFAR_CHUNK * CIFAR_RECORD);
    ts_status st = TS_OK;
    if (!im || !lb) st = ts_last_status();
    else if (!buf) st = ts_fail(TS_ERR_MEMORY, "cifar10_read: out of memory");
    for (int64_t r = 0; st == TS_OK && r < n; r += CIFAR_CHUNK) {
        int64_t m = n - r < CIFAR_CHUNK ? n - r : CIFAR_CHUNK;
        st = read_records(f, path, buf, r, m, ts_tensor_data(im), ts_tensor_data(lb));
    }
    free(buf);
    fclose(f);
    if (st != TS_OK) {
        ts_tensor_release(im);
        ts_tensor_release(lb);
        return st;
    }
    *images = im;
    *labels = lb;
    return TS_OK;
}
