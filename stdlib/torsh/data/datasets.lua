-- torsh/data/datasets.lua — the Dataset protocol and the datasets torsh
-- reads: TensorDataset, FashionMNIST, MNIST (gzipped IDX), CIFAR10 (binary
-- batches) and NpyFolder (a folder of .npy files).
--
-- Protocol: a dataset is any table with ds:len() and ds:get(i) -> x [, y],
-- i 1-based. get returns the stored sample; transforms (ds.transform, a
-- torsh.data.transforms pipeline) are applied by the DataLoader, which keys
-- their random decisions by (seed, epoch, position). A dataset that also has
-- ds:tensors() -> samples [N, ...], labels [N] (or nil) is held in memory and
-- gets the DataLoader's fast path: batches made in C on background threads.
-- M.Dataset{len = fn, get = fn} turns a table into a dataset with `#ds`.
--
-- Every dataset keeps `classes` (names, 1-based list; label k is
-- classes[k + 1], labels being 0-based data like PyTorch's).
local torsh = require "torsh"
local C = torsh._data

local M = {}

local Dataset = {}
Dataset.__index = Dataset
Dataset.__len = function(ds) return ds:len() end

--- M.Dataset(t): t (with len and get) as a dataset; `#ds` works.
function M.Dataset(t)
  t = t or {}
  if type(t.len) ~= "function" or type(t.get) ~= "function" then
    error("Dataset: needs len and get functions", 2)
  end
  return setmetatable(t, Dataset)
end

local function class()
  local c = setmetatable({}, { __index = Dataset })
  c.__index = c
  c.__len = Dataset.__len
  return c
end

local function check_index(ds, i)
  local n = ds:len()
  if math.type(i) ~= "integer" or i < 1 or i > n then
    error(string.format("dataset index %s out of range 1..%d (indices are 1-based)", tostring(i), n), 3)
  end
end

local function label_value(labels, i)
  local y = labels:select(1, i)
  if y:dim() == 0 then return y:item() end
  return y
end

-- ---- TensorDataset ---------------------------------------------------------------------

local TensorDataset = class()
M.TensorDataset_class = TensorDataset

--- M.TensorDataset(samples [, labels [, {transform=}]]): samples [N, ...] and
--- labels [N, ...] (or nil) held in memory.
function M.TensorDataset(samples, labels, opts)
  if not torsh.is_tensor(samples) or samples:dim() < 1 then
    error("TensorDataset: samples must be a tensor [N, ...]", 2)
  end
  if labels ~= nil then
    if not torsh.is_tensor(labels) or labels:dim() < 1 then error("TensorDataset: labels must be a tensor [N, ...]", 2) end
    if labels:size(1) ~= samples:size(1) then
      error(string.format("TensorDataset: %d samples but %d labels", samples:size(1), labels:size(1)), 2)
    end
  end
  return setmetatable({ samples = samples, labels = labels, transform = opts and opts.transform }, TensorDataset)
end

function TensorDataset:len() return self.samples:size(1) end

function TensorDataset:get(i)
  check_index(self, i)
  local x = self.samples:select(1, i)
  if not self.labels then return x end
  return x, label_value(self.labels, i)
end

function TensorDataset:tensors() return self.samples, self.labels end

-- ---- MNIST and Fashion-MNIST -------------------------------------------------------------

M.FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
M.MNIST_ROOT = "/usr/share/datasets/mnist"
M.FASHION_MNIST_CLASSES = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                            "Bag", "Ankle boot" }
M.MNIST_CLASSES = { "0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
                    "8 - eight", "9 - nine" }

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- root/name.gz or root/name; nil, message when neither exists.
local function find_idx(root, name)
  for _, p in ipairs { root .. "/" .. name .. ".gz", root .. "/" .. name } do
    if exists(p) then return p end
  end
  return nil, root .. "/" .. name .. ".gz"
end

local function read_idx_split(what, root, train, hint)
  local prefix = train and "train" or "t10k"
  local paths = {}
  for i, kind in ipairs { "images-idx3-ubyte", "labels-idx1-ubyte" } do
    local p, missing = find_idx(root, prefix .. "-" .. kind)
    if not p then
      error(string.format("%s: %s not found (nor the unzipped file); %s", what, missing, hint), 3)
    end
    paths[i] = p
  end
  local images, err = C.idx_read(paths[1])
  if not images then error(what .. ": " .. err, 3) end
  local labels, err2 = C.idx_read(paths[2])
  if not labels then error(what .. ": " .. err2, 3) end
  if images:dim() ~= 3 or labels:dim() ~= 1 or images:size(1) ~= labels:size(1) then
    error(string.format("%s: %s [%s] and %s [%s] do not form a data set ([N, H, W] images, [N] labels)", what,
      paths[1], table.concat(images:shape(), ", "), paths[2], table.concat(labels:shape(), ", ")), 3)
  end
  return images, labels:to("i64"), paths
end

local IdxDataset = class()

-- The first `limit` samples only (opts.limit), for quick runs.
local function apply_limit(what, images, labels, limit)
  if limit == nil then return images, labels end
  if math.type(limit) ~= "integer" or limit < 0 then
    error(string.format("%s: limit must be an integer >= 0, got %s", what, tostring(limit)), 4)
  end
  local n = math.min(limit, images:size(1))
  return images:narrow(1, 1, n), labels:narrow(1, 1, n)
end

local function idx_dataset(what, opts, default_root, classes, hint)
  opts = opts or {}
  local root = opts.root or default_root
  local train = opts.train ~= false
  local images, labels, paths = read_idx_split(what, root, train, hint)
  images, labels = apply_limit(what, images, labels, opts.limit)
  return setmetatable({ name = what, root = root, train = train, images = images, labels = labels, files = paths,
                        classes = classes, transform = opts.transform }, IdxDataset)
end

function IdxDataset:len() return self.images:size(1) end

function IdxDataset:get(i)
  check_index(self, i)
  return self.images:select(1, i), self.labels:select(1, i):item()
end

function IdxDataset:tensors() return self.images, self.labels end

--- M.FashionMNIST{root = "/usr/share/datasets/fashion-mnist", train = true, transform =, limit =}:
--- images u8 [N, 28, 28], labels i64 [N] (60000 train, 10000 test); limit keeps the first N.
function M.FashionMNIST(opts)
  return idx_dataset("FashionMNIST", opts, M.FASHION_MNIST_ROOT, M.FASHION_MNIST_CLASSES,
    "install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist) or pass root= " ..
    "to a folder with the IDX files")
end

--- M.MNIST{root = "/usr/share/datasets/mnist", train = true, transform =, limit =}: the same files as Fashion-MNIST.
function M.MNIST(opts)
  return idx_dataset("MNIST", opts, M.MNIST_ROOT, M.MNIST_CLASSES,
    "pass root= to a folder with train-images-idx3-ubyte.gz and the other MNIST IDX files")
end

-- ---- CIFAR-10 ---------------------------------------------------------------------------------------

M.CIFAR10_CLASSES = { "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck" }

local Cifar10 = class()

local function read_lines(path)
  local f = io.open(path)
  if not f then return nil end
  local out = {}
  for line in f:lines() do
    line = line:gsub("%s+$", "")
    if line ~= "" then out[#out + 1] = line end
  end
  f:close()
  return out
end

--- M.CIFAR10{root =, train = true, transform =, limit =}: root holds data_batch_1.bin ..
--- data_batch_5.bin and test_batch.bin (directly or in cifar-10-batches-bin/).
--- images u8 [N, 3, 32, 32], labels i64 [N].
function M.CIFAR10(opts)
  opts = opts or {}
  if not opts.root then error("CIFAR10: pass root= (the folder with data_batch_1.bin ... test_batch.bin)", 2) end
  local root = opts.root
  if not exists(root .. "/test_batch.bin") and exists(root .. "/cifar-10-batches-bin/test_batch.bin") then
    root = root .. "/cifar-10-batches-bin"
  end
  local train = opts.train ~= false
  local names = train and { "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                            "data_batch_5.bin" } or { "test_batch.bin" }
  local ims, lbs, files = {}, {}, {}
  for i, name in ipairs(names) do
    local path = root .. "/" .. name
    if not exists(path) then error(string.format("CIFAR10: %s not found", path), 2) end
    local im, lb = C.cifar10_read(path)
    if not im then error("CIFAR10: " .. lb, 2) end
    ims[i], lbs[i], files[i] = im, lb, path
  end
  local images = #ims == 1 and ims[1] or torsh.cat(ims, 1)
  local labels = #lbs == 1 and lbs[1] or torsh.cat(lbs, 1)
  images, labels = apply_limit("CIFAR10", images, labels, opts.limit)
  local classes = read_lines(root .. "/batches.meta.txt") or M.CIFAR10_CLASSES
  return setmetatable({ name = "CIFAR10", root = root, train = train, images = images, labels = labels,
                        files = files, classes = classes, transform = opts.transform }, Cifar10)
end

Cifar10.len, Cifar10.get, Cifar10.tensors = IdxDataset.len, IdxDataset.get, IdxDataset.tensors

-- ---- a folder of .npy files ------------------------------------------------------------------------

local NpyFolder = class()

local function npy_files(dir)
  local entries, err = C.listdir(dir)
  if not entries then error("NpyFolder: " .. err, 4) end
  local files = {}
  for _, e in ipairs(entries) do
    if not e.dir and e.name:match("%.npy$") and e.name ~= "labels.npy" then files[#files + 1] = dir .. "/" .. e.name end
  end
  return files, entries
end

local function read_npy(path)
  local t, err = C.npy_read(path)
  if not t then error("NpyFolder: " .. err, 4) end
  return t
end

--- M.NpyFolder{root, lazy = false, transform =}: one sample per .npy file.
--- Labels: root/labels.npy (one per sample file, files in name order), or
--- else one sub-folder per class (folder names sorted = classes, label =
--- 0-based folder position, files sorted by name within each), or else no
--- labels. By default all samples are read now and stacked into one tensor
--- (the fast path; they must share shape and dtype); lazy = true reads each
--- file in get(i) instead.
function M.NpyFolder(opts)
  if type(opts) == "string" then opts = { root = opts } end
  opts = opts or {}
  local root = opts.root or opts[1]
  if not root then error("NpyFolder: pass root=", 2) end
  local files, entries = npy_files(root)
  local labels, classes, label_list
  if exists(root .. "/labels.npy") then
    labels = read_npy(root .. "/labels.npy")
    if labels:dim() < 1 or labels:size(1) ~= #files then
      error(string.format("NpyFolder: %s/labels.npy has %s labels for %d sample files", root,
        labels:dim() < 1 and "no" or tostring(labels:size(1)), #files), 2)
    end
  elseif #files == 0 then
    classes, label_list = {}, {}
    for _, e in ipairs(entries) do
      if e.dir then
        classes[#classes + 1] = e.name
        for _, f in ipairs((npy_files(root .. "/" .. e.name))) do
          files[#files + 1] = f
          label_list[#files] = #classes - 1
        end
      end
    end
    if #classes == 0 then classes, label_list = nil, nil end
    if label_list and #label_list > 0 then labels = torsh.tensor(label_list, "i64") end
  end
  if #files == 0 then error(string.format("NpyFolder: no .npy files in %s", root), 2) end
  local ds = setmetatable({ root = root, files = files, labels = labels, classes = classes,
                            transform = opts.transform, lazy = opts.lazy and true or false }, NpyFolder)
  if not ds.lazy then
    local samples = {}
    for i, f in ipairs(files) do
      samples[i] = read_npy(f)
      if samples[i]:dtype() ~= samples[1]:dtype() then
        error(string.format("NpyFolder: %s is %s, %s is %s (eager loading needs one dtype; use lazy = true)", f,
          samples[i]:dtype(), files[1], samples[1]:dtype()), 2)
      end
    end
    local ok, stacked = pcall(torsh.stack, samples, 1)
    if not ok then error("NpyFolder: samples differ in shape (use lazy = true): " .. tostring(stacked), 2) end
    ds.samples = stacked
  end
  return ds
end

function NpyFolder:len() return #self.files end

function NpyFolder:get(i)
  check_index(self, i)
  local x = self.samples and self.samples:select(1, i) or read_npy(self.files[i])
  if not self.labels then return x end
  return x, label_value(self.labels, i)
end

function NpyFolder:tensors()
  if not self.samples then return nil end
  return self.samples, self.labels
end

-- ---- the registry `torsh dataset` uses -------------------------------------------------------------

--- M.registry: name -> {open = fn(opts), root = default root or nil, description =}
M.registry = {
  ["fashion-mnist"] = { open = M.FashionMNIST, root = M.FASHION_MNIST_ROOT,
                        description = "Zalando's Fashion-MNIST: 28x28 grey clothing images, 10 classes" },
  mnist = { open = M.MNIST, root = M.MNIST_ROOT, description = "MNIST handwritten digits: 28x28 grey, 10 classes" },
  cifar10 = { open = M.CIFAR10, description = "CIFAR-10: 32x32 colour images, 10 classes (binary batches)" },
}

return M
