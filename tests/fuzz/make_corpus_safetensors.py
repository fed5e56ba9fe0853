#!/usr/bin/python3
"""make_corpus_safetensors.py — writes the seed corpus of fuzz_safetensors.c
(tests/fuzz/corpus_safetensors/): tiny .safetensors files laid out as the
reference writer (huggingface/safetensors, safetensors/src/tensor.rs) lays
them out — tensors sorted by dtype size descending then name, compact JSON
with __metadata__ first, header space-padded to a multiple of 8 — one file
per feature the reader handles, plus broken files it must refuse.

The `python safetensors` package is not needed: st_bytes() below formats the
header by hand following FORMATS.md §4, and tests/sh/test_safetensors_interop.sh
imports it to check torsh's writer byte for byte. Deterministic; run with
Debian's /usr/bin/python3 (NumPy)."""
import json
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

# safetensors dtype -> (reference sort rank, element bytes)
RANK = {"BOOL": 0, "U8": 4, "I8": 5, "F8_E5M2": 6, "F8_E4M3": 7, "I16": 9, "U16": 10, "F16": 11, "BF16": 12,
        "I32": 13, "U32": 14, "F32": 15, "F64": 17, "I64": 18, "U64": 19}
NP_CODE = {np.dtype("bool"): "BOOL", np.dtype("uint8"): "U8", np.dtype("int8"): "I8", np.dtype("int16"): "I16",
           np.dtype("uint16"): "U16", np.dtype("float16"): "F16", np.dtype("int32"): "I32",
           np.dtype("uint32"): "U32", np.dtype("float32"): "F32", np.dtype("float64"): "F64",
           np.dtype("int64"): "I64", np.dtype("uint64"): "U64"}


def st_bytes(tensors, metadata=None):
    """tensors: {name: ndarray or (dtype_code, shape, raw bytes)} -> file bytes."""
    items = []
    for name, t in tensors.items():
        if isinstance(t, tuple):
            code, shape, raw = t
        else:
            code, shape, raw = NP_CODE[t.dtype], list(t.shape), np.ascontiguousarray(t).astype(t.dtype.newbyteorder("<")).tobytes()
        items.append((name, code, list(shape), raw))
    items.sort(key=lambda it: (-RANK[it[1]], it[0].encode("utf-8")))
    header, data, off = {}, b"", 0
    if metadata:
        header["__metadata__"] = dict(sorted(metadata.items(), key=lambda kv: kv[0].encode("utf-8")))
    for name, code, shape, raw in items:
        header[name] = {"dtype": code, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
    js = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    js += b" " * ((8 - len(js) % 8) % 8)
    return struct.pack("<Q", len(js)) + js + data


def raw_file(header_text, data=b"", n=None):
    """A file with a hand-written header (not padded) and a given length field."""
    h = header_text.encode("utf-8") if isinstance(header_text, str) else header_text
    return struct.pack("<Q", len(h) if n is None else n) + h + data


def bf16_bytes(values):
    f = np.asarray(values, dtype=np.float32).view(np.uint32)
    return ((f + 0x7FFF + ((f >> 16) & 1)) >> 16).astype("<u2").tobytes()


def corpus():
    r = np.arange(6, dtype=np.float64).reshape(2, 3) - 2.5
    files = {}
    files["all_dtypes.safetensors"] = st_bytes({
        "f32": r.astype(np.float32), "f64": r, "f16": r.astype(np.float16),
        "bf16": ("BF16", [2, 3], bf16_bytes(r)),
        "i8": np.array([-128, -1, 0, 1, 127], np.int8), "u8": np.array([0, 1, 255], np.uint8),
        "i16": np.array([-300, 300], np.int16), "i32": np.array([-70000, 70000], np.int32),
        "i64": np.array([-2**40, 2**40], np.int64), "bool": np.array([True, False, True]),
    }, {"format": "pt", "note": "seed"})
    files["empty.safetensors"] = st_bytes({})
    files["meta_only.safetensors"] = st_bytes({}, {"framework": "pt"})
    files["scalar_zero_size.safetensors"] = st_bytes({
        "scalar": np.array(1.5, np.float32), "empty": np.zeros((0, 3), np.int64), "empty2": np.zeros((2, 0), np.float16)})
    # escapes and non-ASCII names, written by hand (JSON escapes the writer never uses)
    data = np.array([1, 2], np.int32).tobytes() + np.array([3], np.int32).tobytes()
    files["escapes.safetensors"] = raw_file(
        '{"__metadata__":{"k\\"q":"v\\\\\\/\\n\\u00e9"},"a\\u00e9\\ud83d\\ude00":{"dtype":"I32","shape":[2],'
        '"data_offsets":[0,8]},"b\\tc":{"shape":[1],"data_offsets":[8,12],"dtype":"I32"}}  ', data)
    files["unsupported_dtypes.safetensors"] = st_bytes({
        "u16": np.array([1, 65535], np.uint16), "f8": ("F8_E4M3", [2], b"\x38\x40"), "f32": np.array([2.0], np.float32)})
    # header length 7 + odd text: data starts at an odd offset -> copies
    files["unaligned.safetensors"] = raw_file('{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
                                              np.array([1.0, -2.0], np.float32).tobytes())
    files["bool_bytes.safetensors"] = raw_file('{"b":{"dtype":"BOOL","shape":[4],"data_offsets":[0,4]}}   ',
                                               b"\x00\x01\x02\xff")
    # broken files the reader refuses
    good = files["all_dtypes.safetensors"]
    files["bad_truncated.safetensors"] = good[:len(good) - 3]
    files["bad_short.safetensors"] = b"\x10\x00\x00"
    files["bad_header_len.safetensors"] = struct.pack("<Q", 4096) + good[8:]
    files["bad_header_huge.safetensors"] = struct.pack("<Q", 200_000_000) + b"{}"
    files["bad_overlap.safetensors"] = raw_file(
        '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}',
        bytes(6))
    files["bad_gap.safetensors"] = raw_file(
        '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}',
        bytes(6))
    files["bad_length.safetensors"] = raw_file('{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}', bytes(20))
    files["bad_duplicate.safetensors"] = raw_file(
        '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}',
        bytes(2))
    files["bad_dtype.safetensors"] = raw_file('{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}', bytes(4))
    files["bad_trailing.safetensors"] = raw_file('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', bytes(3))
    files["bad_json.safetensors"] = raw_file('{"a":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}}', bytes(1))
    return files


def main():
    out = os.path.join(HERE, "corpus_safetensors")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(corpus().items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    # the header of every good seed is JSON Python agrees with
    for name, data in corpus().items():
        if not name.startswith("bad_"):
            n = struct.unpack("<Q", data[:8])[0]
            json.loads(data[8:8 + n].decode("utf-8"))
    print("wrote %d files to %s" % (len(corpus()), out), file=sys.stderr)


if __name__ == "__main__":
    main()
