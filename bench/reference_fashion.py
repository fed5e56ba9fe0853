# reference_fashion.py — PyTorch's side of bench/bench_fashion.lua: the same
# CNN (or MLP), data, normalisation, optimizer, batch size and thread count
# as recipes/fashion_mnist.lua. Prints one JSON object per epoch with the
# epoch time, test accuracy and peak RSS.
# Usage: /usr/bin/python3 bench/reference_fashion.py [--epochs N] [--threads T] [--model cnn|mlp] [--limit N]
import argparse, gzip, json, os, resource, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=1)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--model", default="cnn")
p.add_argument("--limit", type=int, default=0)
p.add_argument("--batch", type=int, default=128)
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(int(os.environ.get("SEED", "0")))

def idx(name):
    for cand in (name, name + ".gz"):
        path = os.path.join(a.data, cand)
        if os.path.exists(path):
            raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
            nd = raw[3]
            dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
            return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)
    raise FileNotFoundError(name)

xtr = torch.from_numpy(idx("train-images-idx3-ubyte").copy()).float().div(255).sub(0.2860).div(0.3530).unsqueeze(1)
ytr = torch.from_numpy(idx("train-labels-idx1-ubyte").astype(np.int64))
xte = torch.from_numpy(idx("t10k-images-idx3-ubyte").copy()).float().div(255).sub(0.2860).div(0.3530).unsqueeze(1)
yte = torch.from_numpy(idx("t10k-labels-idx1-ubyte").astype(np.int64))
if a.limit:
    xtr, ytr = xtr[:a.limit], ytr[:a.limit]

if a.model == "cnn":
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
else:
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
g = torch.Generator().manual_seed(int(os.environ.get("SEED", "0")))
for epoch in range(1, a.epochs + 1):
    model.train()
    t0 = time.perf_counter()
    perm = torch.randperm(len(xtr), generator=g)
    for i in range(0, len(xtr), a.batch):
        b = perm[i:i + a.batch]
        loss = F.cross_entropy(model(xtr[b]), ytr[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
    secs = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        correct = sum((model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item() for i in range(0, len(xte), 1000))
    print(json.dumps({"epoch": epoch, "seconds": secs, "test_accuracy": correct / len(xte),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)
