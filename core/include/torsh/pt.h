/* torsh/pt.h — PyTorch checkpoints (torch.save files, .pt / .pth): a reader
 * that runs no code and uses tensor data in place, and a writer of state
 * dicts that torch.load(weights_only=True) reads.
 *
 *     ts_pickle *ck = ts_pt_load("resnet18.pt", TS_PT_VERIFY);
 *     if (!ck) fprintf(stderr, "%s\n", ts_last_error());
 *     const ts_pkval *sd = ts_pickle_root(ck);    // e.g. an OrderedDict of str -> tensor
 *     for (size_t i = 0; i < sd->u.dict.n; i++) {
 *         const ts_pkval *v = sd->u.dict.vals[i];
 *         if (v->kind == TS_PK_TENSOR) use(sd->u.dict.keys[i]->u.str.s, v->u.tensor.t);  // borrowed
 *     }
 *     ts_pickle_free(ck);    // releases the tensors (retain the ones you keep)
 *
 * Formats: the zip format of torch >= 1.6 (any top-level folder name; the
 * `byteorder` entry may say "big": those storages are byte-swapped into
 * memory) and the legacy format of torch.save(..., _use_new_zipfile_
 * serialization=False) / torch <= 1.5 (storages are copied into memory).
 * TorchScript archives (torch.jit.save: a constants.pkl entry), the 1.4
 * preview format ("PYTORCH1") and the pre-0.3 tar format are refused with a
 * message saying what the file is.
 *
 * data.pkl goes through the restricted unpickler (torsh/pickle.h): only the
 * globals torch's weights_only unpickler allows; os.system & co. fail with
 * "pickle: global 'os.system' is not allowed (offset N)". Persistent ids
 * ('storage', StorageClass, key, location, numel) resolve to the entry
 * <folder>/data/<key>, once per key: tensors that shared a storage in
 * PyTorch share one ts_storage here (and so memory). Stored (uncompressed)
 * entries are used in place: read-only views of one read-only mapping of
 * the file (the mapping lives as long as any tensor does). With TS_PT_COPY,
 * for deflated entries, for big-endian data and for legacy files, storages
 * are heap copies (writable). The location (cpu, cuda:0, mps, ...) is
 * ignored: everything loads to the CPU.
 *
 * Tensors (_rebuild_tensor / _v2 / _v3, _rebuild_parameter(_with_state),
 * _rebuild_from_type_v2 of Tensor or Parameter, Parameter(...)) keep their
 * storage offset, sizes and strides, so views (a transpose, a slice with a
 * step) stay views. dtypes: f32 f64 f16 bf16 i64 i32 i16 i8 u8 bool; a
 * tensor of any other dtype (complex, quantized, float8, uint16, ...),
 * sparse or nested tensors, or more than TS_MAX_DIMS dims, fails the load
 * with a message naming where the tensor sits ("['layer.weight']").
 * Every offset, size and stride is checked against the storage; every
 * storage size against its entry; every entry against the file (torsh/zip.h).
 */
#ifndef TORSH_PT_H
#define TORSH_PT_H

#include "torsh/base.h"
#include "torsh/pickle.h"
#include "torsh/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    TS_PT_COPY = 1,       /* heap copies instead of views of the mapped file */
    TS_PT_VERIFY = 2,     /* check the CRC-32 of every storage entry (data.pkl is always checked) */
};

/* Loads the checkpoint at path. Returns a new document (free with
 * ts_pickle_free; its tensors are released then, so retain what you keep)
 * or NULL with a message naming the file and the problem. */
ts_pickle *ts_pt_load(const char *path, unsigned flags);

/* What kind of file `path` looks like, from its first bytes: "zip" (torch
 * >= 1.6, also TorchScript), "legacy" (torch <= 1.5 pickles), "preview"
 * (PYTORCH1), "tar" (pre-0.3) or NULL (none of these, or unreadable). */
const char *ts_pt_sniff(const char *path);

/* Writes a state dict (names[i] -> tensors[i], i < n, in that order) as a
 * zip-format checkpoint that torch.load(path, weights_only=True) returns as
 * an OrderedDict, atomically (temp file, fsync, rename). The archive folder
 * is the file's base name without extension. A tensor listed twice is
 * stored once (the two names share a storage); tensors are written
 * contiguous (any strides in, row-major out). zip64_at (0 = 0xFFFFFFFF) is
 * for tests. Tensors are borrowed. */
ts_status ts_pt_save(const char *path, const char *const *names, ts_tensor *const *tensors, size_t n, uint64_t zip64_at);

#ifdef __cplusplus
}
#endif
#endif
