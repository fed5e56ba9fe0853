# reference_core.py — PyTorch's side of bench/bench_core.lua, run in the same
# session with the same thread count. Prints one "name value" line per case.
import sys, time, statistics
import torch

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
torch.set_num_threads(threads)

def median_time(fn, reps, warm=2):
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)

n = 2048
a = torch.rand(n, n); b = torch.rand(n, n)
t = median_time(lambda: torch.matmul(a, b), 10)
print("matmul2048_gflops %.3f" % (2 * n ** 3 / t / 1e9))

x = torch.ones(1); y = torch.ones(1)
def loop():
    for _ in range(200000):
        c = x + y
t = median_time(loop, 5, 1)
print("perop_us %.4f" % (t / 200000 * 1e6))

big1 = torch.rand(16 * 1024 * 1024); big2 = torch.rand(16 * 1024 * 1024)
t = median_time(lambda: big1 + big2, 20)
print("add16m_ms %.3f" % (t * 1e3))
