-- quickstart.lua — torsh at work in two acts:
--  1. the tensor core: fit a linear model to noisy data by gradient descent
--     on the least-squares loss (hand-written gradients), with timings;
--  2. the training stack: autograd, torsh.nn, torsh.optim and torsh.data
--     train a 784-256-128-10 MLP on Fashion-MNIST for one epoch and report
--     the test accuracy (skipped when the dataset package is missing).
--   build/torsh recipes/quickstart.lua [--samples N] [--features D] [--steps S] [--no-train]
local n, d, steps = 20000, 64, 200
local do_train = true
for i = 1, #arg do if arg[i] == "--no-train" then do_train = false end end
for i = 1, #arg, 2 do
  if arg[i] == "--samples" then n = tonumber(arg[i + 1])
  elseif arg[i] == "--features" then d = tonumber(arg[i + 1])
  elseif arg[i] == "--steps" then steps = tonumber(arg[i + 1])
  elseif arg[i] == "--help" then
    print("usage: torsh recipes/quickstart.lua [--samples N] [--features D] [--steps S] [--no-train]")
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

-- ---- act 2: train an MLP on Fashion-MNIST ------------------------------------------------
if not do_train then return end
local data = require "torsh.data"
local ok, train_set = pcall(data.FashionMNIST, { train = true, transform = data.transforms.Compose {
  data.transforms.ToFloat(), data.transforms.Normalize({ 0.2860 }, { 0.3530 }) } })
if not ok then
  print("skipping the training demo: " .. tostring(train_set))
  return
end
local nn, optim, train = require "torsh.nn", require "torsh.optim", require "torsh.train"
local test_set = data.FashionMNIST { train = false, transform = data.transforms.Compose {
  data.transforms.ToFloat(), data.transforms.Normalize({ 0.2860 }, { 0.3530 }) } }
local model = nn.zoo.mlp { sizes = { 784, 256, 128, 10 } }
print(string.format("\ntraining a 784-256-128-10 MLP (%d parameters) on Fashion-MNIST for one epoch", model:num_parameters()))
local history = train.fit {
  model = model, optimizer = optim.Adam(model:parameters(), { lr = 1e-3 }),
  train_loader = data.DataLoader(train_set, { batch_size = 128, shuffle = true, seed = 0 }),
  test_loader = data.DataLoader(test_set, { batch_size = 1000 }),
  epochs = 1, log = print,
}
print(string.format("test accuracy after one epoch: %.4f", history[1].test_accuracy))
