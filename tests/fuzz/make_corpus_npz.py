#!/usr/bin/python3
"""make_corpus_npz.py — writes the seed corpus of fuzz_npz.c
(tests/fuzz/corpus_npz/): tiny .npz archives made by NumPy itself
(np.savez stored, np.savez_compressed deflate) covering every dtype torsh
reads, Fortran order, big-endian, 0-dim and empty arrays, plus a few
broken archives (truncated, a non-.npy entry, a lying .npy header).
Deterministic (fixed zip timestamps); run with Debian's /usr/bin/python3."""
import io
import os
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def npz(arrays, compress=False):
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", method) as z:
        for k, a in arrays.items():
            b = io.BytesIO()
            np.save(b, a)
            z.writestr(zipfile.ZipInfo(k + ".npy", date_time=(1980, 1, 1, 0, 0, 0)), b.getvalue(), compress_type=method)
    return buf.getvalue()


def raw_zip(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries:
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def corpus():
    a = {
        "f4": np.arange(6, dtype="<f4").reshape(2, 3), "f8": np.array([-1.5, 2.25]), "f2": np.ones(3, "<f2"),
        "u1": np.arange(4, dtype=np.uint8), "i1": np.array([-3, 3], np.int8), "i2": np.array([-300], "<i2"),
        "i4": np.array([[7]], "<i4"), "i8": np.array([2**40], "<i8"), "b1": np.array([True, False]),
    }
    odd = {"fortran": np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
           "bigend": np.arange(3, dtype=">i4"), "scalar": np.ones((), np.float64), "empty": np.zeros((0, 2), np.int16)}
    files = {
        "dtypes.npz": npz(a), "dtypes_compressed.npz": npz(a, True),
        "layouts.npz": npz(odd), "layouts_compressed.npz": npz(odd, True),
        "empty_archive.npz": npz({}),
    }
    good = files["dtypes.npz"]
    files["bad_truncated.npz"] = good[:len(good) // 2]
    files["bad_text_entry.npz"] = raw_zip([("notes.txt", b"hello")])
    b = io.BytesIO()
    np.save(b, np.arange(4, dtype="<f4"))
    lie = b.getvalue().replace(b"(4,)", b"(9,)")
    files["bad_npy_size.npz"] = raw_zip([("x.npy", lie)])
    return files


def main():
    out = os.path.join(HERE, "corpus_npz")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(corpus().items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
