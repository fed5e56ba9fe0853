# bench_conv2d.py — PyTorch's side of bench/bench_conv2d.lua, run in the same
# session with the same thread count and shapes (oneDNN on Debian's PyTorch).
# Prints one "name milliseconds" line per case (median after warm-up).
# Usage: /usr/bin/python3 bench/bench_conv2d.py [threads]
import statistics
import sys
import time

import torch
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
torch.set_num_threads(threads)

# name, input shape, weight shape, stride, padding (same list as the Lua side)
CASES = [
    ("3x3_64_56_n8", (8, 64, 56, 56), (64, 64, 3, 3), 1, 1),
    ("1x1_64to256_56_n8", (8, 64, 56, 56), (256, 64, 1, 1), 1, 0),
    ("3x3s2_64to128_56_n8", (8, 64, 56, 56), (128, 64, 3, 3), 2, 1),
    ("7x7s2_3to64_224_n2", (2, 3, 224, 224), (64, 3, 7, 7), 2, 3),
]


def median_ms(fn, reps, warm):
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


with torch.no_grad():
    for name, xs, ws, stride, pad in CASES:
        x, w, b = torch.randn(*xs), torch.randn(*ws), torch.randn(ws[0])
        ms = median_ms(lambda: F.conv2d(x, w, b, stride=stride, padding=pad), 20, 10)
        print("%s %.3f" % (name, ms))
