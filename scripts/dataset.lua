-- describe the data sets torsh reads: sizes, classes, image shape, per-channel mean/std
local cli = require "torsh.cli"
local data = require "torsh.data"

local opts = cli.parse(arg, {
  name = "dataset",
  positional = "ls | info NAME",
  summary = "Lists the data sets torsh.data knows (ls), or describes one (info): the sizes of the\n" ..
            "train and test splits, the classes with their names and sample counts, the image\n" ..
            "shape, and the per-channel mean and standard deviation of the train images (pixels\n" ..
            "scaled to [0, 1]: the numbers for transforms.Normalize).",
  options = {
    { "root", "DIR", help = "folder holding the files (default: where the data set's package puts them)" },
    { "format", "table|json|yaml", default = "table", choices = { "table", "json", "yaml" }, help = "output format" },
  },
  examples = { "torsh dataset ls", "torsh dataset info fashion-mnist",
               "torsh dataset info cifar10 --root ~/data/cifar-10-batches-bin --format json" },
})

local function names()
  local list = {}
  for name in pairs(data.registry) do list[#list + 1] = name end
  table.sort(list)
  return list
end

local function fail(msg)
  io.stderr:write("torsh: dataset: ", msg, "\n")
  os.exit(1)
end

-- ---- ls -------------------------------------------------------------------------------------

local function list()
  local rows = {}
  for _, name in ipairs(names()) do
    local entry = data.registry[name]
    local root = opts.root or entry.root
    local ok = root ~= nil and pcall(entry.open, { root = root, train = false })
    rows[#rows + 1] = { name = name, description = entry.description, root = root or "(pass --root)", present = ok }
  end
  cli.output(rows, opts.format, function(r)
    for _, row in ipairs(r) do row.present_text = row.present and "yes" or "no" end
    return cli.table(r, { { "name", "NAME" }, { "present_text", "PRESENT" }, { "root", "ROOT" },
                          { "description", "DESCRIPTION" } })
  end)
end

-- ---- info -----------------------------------------------------------------------------------

local function count_labels(labels, nclasses)
  local counts = {}
  for k = 1, nclasses do counts[k] = 0 end
  for _, v in ipairs(labels:totable()) do
    if v >= 0 and v < nclasses then counts[v + 1] = counts[v + 1] + 1 end
  end
  return counts
end

local function info(name)
  local entry = data.registry[name]
  if not entry then fail(string.format("unknown data set '%s' (known: %s)", name, table.concat(names(), ", "))) end
  local root = opts.root or entry.root
  local ok, train = pcall(entry.open, { root = root, train = true })
  if not ok then fail((tostring(train):gsub("^[^:]*:%d+: ", ""):gsub("pass root=", "pass --root"))) end
  local ok2, test = pcall(entry.open, { root = root, train = false })
  if not ok2 then fail(tostring(test):gsub("^[^:]*:%d+: ", "")) end
  local images = train.images
  local shape = images:shape()
  table.remove(shape, 1)
  local mean, std = data.channel_stats(images)
  for c = 1, #mean do mean[c], std[c] = mean[c] / 255, std[c] / 255 end
  local train_counts, test_counts = count_labels(train.labels, #train.classes), count_labels(test.labels, #test.classes)
  local classes = {}
  for k, cname in ipairs(train.classes) do
    classes[k] = { label = k - 1, name = cname, train = train_counts[k], test = test_counts[k] }
  end
  return {
    name = name, root = train.root, train = { samples = train:len(), files = train.files },
    test = { samples = test:len(), files = test.files }, image_shape = shape, channels = #mean,
    dtype = images:dtype(), classes = classes, mean = mean, std = std,
  }
end

local function info_table(d)
  local function nums(list)
    local out = {}
    for i, v in ipairs(list) do out[i] = string.format("%.4f", v) end
    return table.concat(out, ", ")
  end
  local lines = {
    string.format("%-14s %s", "data set", d.name),
    string.format("%-14s %s", "root", d.root),
    string.format("%-14s %d samples", "train", d.train.samples),
    string.format("%-14s %d samples", "test", d.test.samples),
    string.format("%-14s %s (%d channel%s, %s)", "image shape", table.concat(d.image_shape, " x "), d.channels,
      d.channels == 1 and "" or "s", d.dtype),
    string.format("%-14s %s", "mean (train)", nums(d.mean)),
    string.format("%-14s %s", "std (train)", nums(d.std)),
    "",
  }
  return table.concat(lines, "\n") .. "\n" ..
    cli.table(d.classes, { { "label", "LABEL" }, { "name", "CLASS" }, { "train", "TRAIN" }, { "test", "TEST" } })
end

local sub = opts[1]
if sub == "ls" or sub == "list" then
  list()
elseif sub == "info" then
  if not opts[2] then cli.usage_error("dataset info: which data set? (" .. table.concat(names(), ", ") .. ")") end
  cli.output(info(opts[2]), opts.format, info_table)
elseif sub == nil then
  cli.usage_error("dataset: expected a subcommand: ls or info NAME (see torsh dataset --help)")
else
  cli.usage_error(string.format("dataset: unknown subcommand '%s' (ls, info NAME)", sub))
end
