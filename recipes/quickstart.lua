-- quickstart.lua — the tensor core at work: fit a linear model to noisy
-- data by gradient descent on the least-squares loss, with timings.
--   build/torsh recipes/quickstart.lua [--samples N] [--features D] [--steps S]
local n, d, steps = 20000, 64, 200
for i = 1, #arg, 2 do
  if arg[i] == "--samples" then n = tonumber(arg[i + 1])
  elseif arg[i] == "--features" then d = tonumber(arg[i + 1])
  elseif arg[i] == "--steps" then steps = tonumber(arg[i + 1])
  elseif arg[i] == "--help" then
    print("usage: torsh recipes/quickstart.lua [--samples N] [--features D] [--steps S]")
    os.exit(0)
  end
end

torsh.manual_seed(42)
print(string.format("torsh %s on %s, %d threads, BLAS kernel %s",
  torsh.version, torsh.cpu().model, torsh.get_num_threads(), (torsh.blas() or {}).kernel or "?"))

-- data: y = X w_true + b_true + noise
local t0 = torsh.clock()
local X = torsh.randn(n, d)
local w_true = torsh.randn(d, 1)
local b_true = 0.5
local y = X:matmul(w_true) + b_true + torsh.randn(n, 1) * 0.1
print(string.format("made %d samples x %d features in %.1f ms", n, d, (torsh.clock() - t0) * 1e3))

-- model: y_hat = X w + b, loss = mean((y_hat - y)^2)
local w = torsh.zeros(d, 1)
local b = 0.0
local lr = 0.1
local Xt = X:t()
t0 = torsh.clock()
local loss
for step = 1, steps do
  local err = X:matmul(w) + b - y                     -- [n, 1]
  loss = (err * err):mean():item()
  local grad_w = Xt:matmul(err) * (2 / n)             -- [d, 1]
  local grad_b = err:mean():item() * 2
  w:sub_(grad_w * lr)
  b = b - lr * grad_b
  if step == 1 or step % 50 == 0 then
    print(string.format("step %4d  loss %.6f", step, loss))
  end
end
local secs = torsh.clock() - t0
local werr = (w - w_true):abs():amax():item()
print(string.format("%d steps in %.1f ms (%.2f ms/step); max |w - w_true| = %.4f, b = %.4f (true %.1f)",
  steps, secs * 1e3, secs / steps * 1e3, werr, b, b_true))
print(string.format("tensor memory: %.1f MiB live, %.1f MiB peak", torsh.memory().live / 2 ^ 20, torsh.memory().peak / 2 ^ 20))
if werr > 0.05 then
  io.stderr:write("quickstart: the fit did not converge\n")
  os.exit(1)
end
