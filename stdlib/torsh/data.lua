-- torsh/data.lua — torsh.data: datasets, transforms and the DataLoader.
--
--   local data = require "torsh.data"
--   local T = data.transforms
--   local train = data.FashionMNIST { train = true,
--     transform = T.Compose { T.ToTensor(), T.Normalize(0.2860, 0.3530) } }
--   local loader = data.DataLoader(train, { batch_size = 128, shuffle = true, seed = 1 })
--   for epoch = 1, 2 do
--     for i, x, y in loader:iter() do     -- x f32 [128, 1, 28, 28], y i64 [128]
--       ...                               -- loader:state() -> {epoch=, batch=, seed=}
--     end
--   end
--
-- Datasets and the Dataset protocol: torsh/data/datasets.lua. Transforms:
-- torsh/data/transforms.lua. File readers (return nil, message on failure):
-- data.idx_read(path), data.npy_read(path), data.cifar10_read(path).
--
-- The DataLoader: a dataset with ds:tensors() (TensorDataset, FashionMNIST,
-- MNIST, CIFAR10, NpyFolder) whose transforms are all torsh.data.transforms
-- steps takes the fast path: a C loader (lua/l_data.c, core/data/loader.c)
-- makes batches on `num_workers` background threads, `prefetch` batches
-- ahead, so the Lua loop does not wait on them. Any other dataset, or a
-- pipeline with a Lua function, takes the Lua path: ds:get(i) and the
-- transforms run in the calling thread, and samples are collated with
-- torsh.stack (labels: numbers -> i64, or f32 when not all integers; tensors
-- stacked, integer -> i64, float -> f32). Both paths give the same batches.
--
-- Order and resume: epochs count from 1. With shuffle, epoch e visits the
-- samples in the permutation torsh._data.shuffle(seed, e, n) (Philox keyed
-- by seed and epoch), so every epoch has its own order and a run with the
-- same seed repeats it, whatever num_workers is. loader:iter() starts at the
-- loader's position {epoch, batch} and advances it as batches are handed
-- out; after the last batch of an epoch the position becomes {epoch + 1, 0}.
-- loader:state() / loader:load_state(st) save and restore that position
-- (and the seed), so a resumed run gets exactly the batches it would have
-- got. Breaking out of the loop stops the workers at once (the iterator's
-- closing value) and leaves the position after the last batch handed out.
local torsh = require "torsh"
local C = torsh._data
local datasets = require "torsh.data.datasets"
local transforms = require "torsh.data.transforms"

local M = {}
M.transforms = transforms
for name, v in pairs(datasets) do M[name] = v end
M.idx_read, M.npy_read, M.cifar10_read = C.idx_read, C.npy_read, C.cifar10_read
--- data.channel_stats(images) -> {mean per channel}, {std per channel} of raw values
--- (images [N, H, W] or [N, C, H, W]; population std; exact sums for u8).
M.channel_stats = C.channel_stats

--- data.len(ds): the number of samples of a dataset (ds:len()).
function M.len(ds) return ds:len() end

local DataLoader = {}
DataLoader.__index = DataLoader

local function check_integer(v, what, min)
  if math.type(v) ~= "integer" or v < min then error(string.format("DataLoader: %s must be an integer >= %d, got %s",
    what, min, tostring(v)), 3) end
  return v
end

--- data.DataLoader(dataset, {batch_size = 1, shuffle = false, seed =, drop_last = false,
---   num_workers = 1, prefetch =, transform =}) -> loader.
--- seed defaults to a draw from torsh's generator (so torsh.manual_seed fixes it);
--- num_workers: C threads of the fast path (0: batches made when asked);
--- prefetch: batches made ahead (default max(2, 2 * num_workers));
--- transform: applied after the dataset's own transform.
function M.DataLoader(dataset, opts)
  opts = opts or {}
  if type(dataset) ~= "table" or type(dataset.len) ~= "function" or type(dataset.get) ~= "function" then
    error("DataLoader: the dataset needs len() and get(i) methods", 2)
  end
  local self = setmetatable({
    dataset = dataset,
    batch_size = check_integer(opts.batch_size or 1, "batch_size", 1),
    shuffle = opts.shuffle and true or false,
    drop_last = opts.drop_last and true or false,
    num_workers = check_integer(opts.num_workers or 1, "num_workers", 0),
    prefetch = opts.prefetch and check_integer(opts.prefetch, "prefetch", 1) or nil,
    seed = opts.seed and check_integer(opts.seed, "seed", math.mininteger)
           or torsh.randint(0, 1 << 62, { 1 }):item(),
    epoch = 1,
    batch = 0,
  }, DataLoader)
  self.steps = transforms.steps(dataset.transform, opts.transform)
  if dataset.tensors then self.samples, self.labels = dataset:tensors() end
  self.fast = self.samples ~= nil and transforms.native(self.steps)
  return self
end

--- loader:len() / #loader: batches per epoch.
function DataLoader:len()
  local n, b = self.dataset:len(), self.batch_size
  return self.drop_last and n // b or (n + b - 1) // b
end
DataLoader.__len = DataLoader.len

--- loader:state() -> {epoch=, batch=, seed=}: batch = batches of `epoch` already handed out.
function DataLoader:state() return { epoch = self.epoch, batch = self.batch, seed = self.seed } end

--- loader:load_state(st): continue from a state() (the next iter() starts there).
function DataLoader:load_state(st)
  if type(st) ~= "table" then error("DataLoader: load_state expects a table from state()", 2) end
  check_integer(st.epoch, "state.epoch", math.mininteger)
  check_integer(st.batch, "state.batch", 0)
  if st.batch > self:len() then
    error(string.format("DataLoader: state.batch %d is past the %d batches of an epoch", st.batch, self:len()), 2)
  end
  self.epoch, self.batch = st.epoch, st.batch
  if st.seed ~= nil then self.seed = check_integer(st.seed, "state.seed", math.mininteger) end
end

--- loader:set_epoch(e): the next iter() runs epoch e — from its first batch, or,
--- when the loader is already positioned in epoch e (after load_state), from
--- there, so a training loop may call set_epoch(epoch) every epoch and still resume
--- mid-epoch. (load_state{epoch = e, batch = 0} restarts an epoch unconditionally.)
function DataLoader:set_epoch(e)
  check_integer(e, "epoch", math.mininteger)
  if e ~= self.epoch then self.epoch, self.batch = e, 0 end
end

-- ---- the Lua path --------------------------------------------------------------------------

local LuaBatches = {}
LuaBatches.__index = LuaBatches
LuaBatches.__close = function(p) p:close() end

local function collate_labels(ys, count)
  if count == 0 or ys[1] == nil then return nil end
  if type(ys[1]) == "number" then
    local all_int = true
    for j = 1, count do all_int = all_int and math.type(ys[j]) == "integer" end
    return torsh.tensor(ys, all_int and "i64" or "f32")
  end
  local y = torsh.stack(ys, 1)
  local dt = y:dtype()
  local float = dt == "f32" or dt == "f64" or dt == "f16" or dt == "bf16"
  return y:to(float and "f32" or "i64")
end

function LuaBatches:next()
  if self.closed or self.b >= self.nb then return nil end
  local b, bs = self.b, self.loader.batch_size
  self.b = b + 1
  local start = b * bs
  local count = math.min(bs, self.n - start)
  local xs, ys, ds = {}, {}, self.loader.dataset
  for j = 1, count do
    local pos = start + j - 1
    local idx = self.order and self.order[pos + 1] or pos
    local x, y = ds:get(idx + 1)
    if not torsh.is_tensor(x) then
      error(string.format("DataLoader: dataset:get(%d) returned a %s, not a tensor", idx + 1, type(x)), 3)
    end
    xs[j] = transforms.apply(self.steps, x, { seed = self.seed, epoch = self.epoch, position = pos })
    ys[j] = y
  end
  return torsh.stack(xs, 1), collate_labels(ys, count)
end

function LuaBatches:close() self.closed = true end

function DataLoader:_lua_batches(order, epoch, start)
  return setmetatable({ loader = self, order = order and order:totable(), n = self.dataset:len(), nb = self:len(),
                        b = start, steps = self.steps, seed = self.seed, epoch = epoch }, LuaBatches)
end

function DataLoader:_c_batches(order, epoch, start)
  return C.Loader(self.samples, self.labels, order, {
    batch_size = self.batch_size, drop_last = self.drop_last, num_workers = self.num_workers,
    prefetch = self.prefetch, seed = self.seed, epoch = epoch, start_batch = start, transforms = self.steps,
  })
end

--- loader:iter() -> for batch_idx, x, y in loader:iter() do ... end
--- batch_idx counts from 1 within the epoch (a resumed epoch goes on counting).
function DataLoader:iter()
  local nb = self:len()
  if self.batch >= nb then self.epoch, self.batch = self.epoch + 1, 0 end
  local epoch, start = self.epoch, self.batch
  local order = self.shuffle and C.shuffle(self.seed, epoch, self.dataset:len()) or nil
  local batches = self.fast and self:_c_batches(order, epoch, start) or self:_lua_batches(order, epoch, start)
  local k = start
  local function step()
    local P = package.loaded["torsh.profiler"]   -- while profiling, batches are timed as "data" ranges
    local x, y
    if P and P.active then x, y = P._data_next(batches) else x, y = batches:next() end
    if x == nil then
      batches:close()
      if self.epoch == epoch and self.batch == nb then self.epoch, self.batch = epoch + 1, 0 end
      return nil
    end
    k = k + 1
    self.epoch, self.batch = epoch, k
    return k, x, y
  end
  return step, nil, nil, batches
end

--- for x, y in loader() do ... end — the same batches without the index.
function DataLoader:__call()
  local step, s, c, closing = self:iter()
  return function()
    local _, x, y = step(s, c)
    return x, y
  end, nil, nil, closing
end

function DataLoader:__tostring()
  return string.format("DataLoader(%d samples, batch %d, %s path, epoch %d, batch %d of %d)", self.dataset:len(),
    self.batch_size, self.fast and "C" or "Lua", self.epoch, self.batch, self:len())
end

return M
