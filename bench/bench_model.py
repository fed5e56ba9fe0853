# bench_model.py — PyTorch's side of bench/bench_model.lua, run in the same
# session with the same thread count: torchvision ResNet-18 eager inference
# latency at batch 1 and 8 (median ms after warm-up), and the time of
# torch.load of the same weights as a .pt file (median of 11, page cache warm).
# Writes the model/weights files the Lua side uses into DIR.
# Usage: /usr/bin/python3 bench/bench_model.py DIR [threads]
import sys
import time
import warnings

import numpy as np
import torch
import torchvision

warnings.filterwarnings("ignore")
d = sys.argv[1]
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
torch.set_num_threads(threads)
torch.manual_seed(0)
m = torchvision.models.resnet18().eval()
x = torch.randn(1, 3, 224, 224)
torch.onnx.export(m, x, d + "/resnet18.onnx", opset_version=13, input_names=["input"], output_names=["logits"],
                  dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, training=torch.onnx.TrainingMode.PRESERVE)
torch.save(m.state_dict(), d + "/resnet18.pt")


def median_ms(fn, reps, warm):
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    ts.sort()
    return ts[len(ts) // 2] * 1e3


with torch.no_grad():
    for b, reps in ((1, 20), (8, 6)):
        xb = torch.randn(b, 3, 224, 224)
        print("latency_b%d %.4f" % (b, median_ms(lambda: m(xb), reps, 3)))
print("load_pt %.4f" % median_ms(lambda: torch.load(d + "/resnet18.pt"), 11, 2))
