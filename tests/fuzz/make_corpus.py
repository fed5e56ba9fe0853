#!/usr/bin/python3
"""make_corpus.py — writes the seed corpora of the fuzz targets: tiny IDX
files (tests/fuzz/corpus_idx/) and .npy files (tests/fuzz/corpus_npy/),
one per dtype / layout the readers accept, plus a few broken ones.
Deterministic; run with Debian's /usr/bin/python3 (NumPy)."""
import gzip
import io
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(a):
    head = bytes([0, 0, IDX_CODES[a.dtype.type], a.ndim]) + b"".join(struct.pack(">I", d) for d in a.shape)
    return head + a.astype(a.dtype.newbyteorder(">")).tobytes()


def write(folder, name, data):
    os.makedirs(os.path.join(HERE, folder), exist_ok=True)
    with open(os.path.join(HERE, folder, name), "wb") as f:
        f.write(data)


def gz(data):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as f:
        f.write(data)
    return buf.getvalue()


def idx_corpus():
    write("corpus_idx", "u8_1d.idx", idx_bytes(np.arange(5, dtype=np.uint8)))
    write("corpus_idx", "u8_3d.idx", idx_bytes(np.arange(12, dtype=np.uint8).reshape(2, 2, 3)))
    write("corpus_idx", "u8_3d.idx.gz", gz(idx_bytes(np.arange(12, dtype=np.uint8).reshape(2, 2, 3))))
    write("corpus_idx", "i8.idx", idx_bytes(np.array([-3, 0, 7], dtype=np.int8)))
    write("corpus_idx", "i16.idx", idx_bytes(np.array([[-300, 2], [5, 32000]], dtype=np.int16)))
    write("corpus_idx", "i32.idx", idx_bytes(np.array([-70000, 1, 2**30], dtype=np.int32)))
    write("corpus_idx", "f32.idx.gz", gz(idx_bytes(np.array([[0.5, -1.25], [3.0, 1e-3]], dtype=np.float32))))
    write("corpus_idx", "f64.idx", idx_bytes(np.array([np.pi, -2.5], dtype=np.float64)))
    write("corpus_idx", "truncated.idx", idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))[:-3])
    write("corpus_idx", "huge_claim.idx", bytes([0, 0, 0x08, 3]) + struct.pack(">III", 60000, 28, 28) + b"\x01\x02")


def npy_bytes(a, version=None, fortran=False):
    buf = io.BytesIO()
    if fortran:
        a = np.asfortranarray(a)
    np.lib.format.write_array(buf, a, version=version, allow_pickle=False)
    return buf.getvalue()


def npy_corpus():
    write("corpus_npy", "f4_v1.npy", npy_bytes(np.arange(6, dtype=np.float32).reshape(2, 3) / 4))
    write("corpus_npy", "f8_fortran.npy", npy_bytes(np.arange(6, dtype=np.float64).reshape(2, 3), fortran=True))
    write("corpus_npy", "f2.npy", npy_bytes(np.array([0.5, -2.0, 65504.0], dtype=np.float16)))
    write("corpus_npy", "u1_v2.npy", npy_bytes(np.arange(4, dtype=np.uint8).reshape(2, 2), version=(2, 0)))
    write("corpus_npy", "i8_v3.npy", npy_bytes(np.array([-1, 2**40], dtype=np.int64), version=(3, 0)))
    write("corpus_npy", "i1.npy", npy_bytes(np.array([-128, 127], dtype=np.int8)))
    write("corpus_npy", "i2.npy", npy_bytes(np.array([-300, 300], dtype=np.int16)))
    write("corpus_npy", "i4.npy", npy_bytes(np.array([[-7]], dtype=np.int32)))
    write("corpus_npy", "b1.npy", npy_bytes(np.array([True, False, True])))
    write("corpus_npy", "scalar.npy", npy_bytes(np.array(2.5, dtype=np.float32)))
    write("corpus_npy", "truncated.npy", npy_bytes(np.arange(10, dtype=np.float32))[:-5])


if __name__ == "__main__":
    idx_corpus()
    npy_corpus()
