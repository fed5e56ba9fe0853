# bench_train_step.py — PyTorch's side of bench/bench_train_step.lua: one
# training step (forward, cross-entropy, backward; no optimizer) of the
# Fashion-MNIST recipe CNN, batch 128, 28x28 inputs, with the given thread
# count. Prints "step <median ms> <min ms>"; with --profile also PyTorch's
# profiler table of the ops.
# Usage: /usr/bin/python3 bench/bench_train_step.py [threads] [reps]
import statistics
import sys
import time

import torch
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 20
torch.set_num_threads(threads)
torch.manual_seed(0)


def param(*shape, scale=0.1):
    return (torch.randn(*shape) * scale).requires_grad_()


c1w, c1b = param(32, 1, 3, 3), param(32)
bn1w, bn1b = param(32), param(32)
c2w, c2b = param(64, 32, 3, 3, scale=0.05), param(64)
bn2w, bn2b = param(64), param(64)
f1w, f1b = param(128, 3136, scale=0.02), param(128)
f2w, f2b = param(10, 128), param(10)
rm1, rv1 = torch.zeros(32), torch.ones(32)
rm2, rv2 = torch.zeros(64), torch.ones(64)
params = [c1w, c1b, bn1w, bn1b, c2w, c2b, bn2w, bn2b, f1w, f1b, f2w, f2b]

x = torch.randn(128, 1, 28, 28)
target = torch.randint(0, 10, (128,))


def step():
    for p in params:
        p.grad = None
    h = F.conv2d(x, c1w, c1b, padding=1)
    h = F.batch_norm(h, rm1, rv1, bn1w, bn1b, training=True, momentum=0.1, eps=1e-5)
    h = F.max_pool2d(F.relu(h), 2)
    h = F.conv2d(h, c2w, c2b, padding=1)
    h = F.batch_norm(h, rm2, rv2, bn2w, bn2b, training=True, momentum=0.1, eps=1e-5)
    h = F.max_pool2d(F.relu(h), 2)
    h = h.flatten(1)
    h = F.relu(F.linear(h, f1w, f1b))
    h = F.linear(h, f2w, f2b)
    loss = F.cross_entropy(h, target)
    loss.backward()
    return loss


for _ in range(5):
    step()
ts = []
for _ in range(reps):
    t = time.perf_counter()
    step()
    ts.append(time.perf_counter() - t)
print("step %.3f %.3f" % (statistics.median(ts) * 1e3, min(ts) * 1e3))

if "--profile" in sys.argv:
    with torch.autograd.profiler.profile() as prof:
        for _ in range(5):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
