-- torsh/tb.lua — torsh.tb: TensorBoard logging with PyTorch's SummaryWriter
-- interface (method names, argument order and on-disk layout of
-- torch.utils.tensorboard), over the event-file writer in core/tb.
--
--   local tb = require "torsh.tb"              -- or torsh.tb
--   local w <close> = tb.SummaryWriter("runs/exp1")
--   for step = 1, 100 do w:add_scalar("loss", 1 / step, step) end
--   w:add_histogram("fc.weight", model.fc.weight, 100)
--   w:add_image("sample", x[1], 100)           -- CHW in [0, 1]
--   -- leaving the block closes the writer (flushes and closes every file)
--
-- Then `tensorboard --logdir runs`. Steps default to 0 and walltimes to
-- now. Every failure (unwritable log dir, full disk, bad argument) raises an
-- error with the core's message. See docs/TENSORBOARD.md.
local torsh = require "torsh"
local core = require "torsh.tb.core"

local M = {}

local SummaryWriter = {}
SummaryWriter.__index = SummaryWriter
SummaryWriter.__name = "torsh.tb.SummaryWriter"
M.SummaryWriter_class = SummaryWriter

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

-- Calls a method of a core writer; its error is raised at the caller of the
-- SummaryWriter method, so the message points at the user's line.
local function invoke(fw, method, ...)
  local ok, err = pcall(fw[method], fw, ...)
  if not ok then error(err, 3) end
end

local function check_open(self, op)
  if self.closed then error(("%s: the SummaryWriter of %s is closed"):format(op, self.log_dir), 3) end
end

local function writer_options(self)
  return { flush_secs = self.flush_secs, max_queue = self.max_queue, filename_suffix = self.filename_suffix }
end

--- SummaryWriter([logdir] [, {comment=, flush_secs=120, max_queue=10, filename_suffix=}])
--- Without a logdir, runs/<Mon>DD_HH-MM-SS_<host><comment> like PyTorch.
function M.SummaryWriter(logdir, opts)
  if type(logdir) == "table" and opts == nil then opts, logdir = logdir, logdir.log_dir or logdir.logdir end
  opts = opts or {}
  if logdir ~= nil and type(logdir) ~= "string" then
    error("SummaryWriter: logdir must be a string, got " .. type(logdir), 2)
  end
  if not logdir or logdir == "" then
    logdir = "runs/" .. os.date("%b%d_%H-%M-%S") .. "_" .. core.hostname() .. (opts.comment or "")
  end
  local self = setmetatable({
    log_dir = logdir, flush_secs = opts.flush_secs, max_queue = opts.max_queue,
    filename_suffix = opts.filename_suffix, closed = false,
  }, SummaryWriter)
  local ok, fw = pcall(core.open, logdir, writer_options(self))
  if not ok then error(fw, 2) end
  self.file_writer = fw
  self.all_writers = { [logdir] = self.file_writer }
  self.writer_order = { logdir }
  return self
end

--- w:get_logdir() -> the run's folder
function SummaryWriter:get_logdir() return self.log_dir end
--- w:event_file() -> path of the run's event file
function SummaryWriter:event_file() return self.file_writer:file() end

--- w:add_scalar(tag, value, [step], [walltime], [new_style], [double_precision])
--- value: number, boolean or 1-element tensor. NaN/Inf are written as they are.
function SummaryWriter:add_scalar(tag, value, step, walltime, new_style, double_precision)
  check_open(self, "add_scalar")
  local style = new_style and (double_precision and "f64" or "f32") or "simple"
  invoke(self.file_writer, "add_scalar", tag, value, step, walltime, style)
end

--- w:add_scalars(main_tag, {name = value, ...}, [step], [walltime]): one run per
--- name, in the folder <logdir>/<main_tag with / as _>_<name>, each holding the
--- scalar series main_tag (so TensorBoard draws them in one chart).
function SummaryWriter:add_scalars(main_tag, tag_scalar_dict, step, walltime)
  check_open(self, "add_scalars")
  walltime = walltime or core.now()
  for _, tag in ipairs(sorted_keys(tag_scalar_dict)) do
    local dir = self.log_dir .. "/" .. main_tag:gsub("/", "_") .. "_" .. tostring(tag)
    local fw = self.all_writers[dir]
    if not fw then
      local ok, opened = pcall(core.open, dir, writer_options(self))
      if not ok then error(opened, 2) end
      fw = opened
      self.all_writers[dir] = fw
      self.writer_order[#self.writer_order + 1] = dir
    end
    invoke(fw, "add_scalar", main_tag, tag_scalar_dict[tag], step, walltime, "simple")
  end
end

--- w:add_histogram(tag, values, [step], [bins="tensorflow"], [walltime], [max_bins])
--- bins: "tensorflow" (TensorFlow's default edges), a count (equal-width bins over
--- [min, max]) or a list of edges. NaN and +-Inf are left out of the histogram.
function SummaryWriter:add_histogram(tag, values, step, bins, walltime, max_bins)
  check_open(self, "add_histogram")
  invoke(self.file_writer, "add_histogram", tag, values, step, walltime, bins, max_bins)
end

--- w:add_histogram_raw(tag, min, max, num, sum, sum_squares, bucket_limits, bucket_counts, [step], [walltime])
function SummaryWriter:add_histogram_raw(tag, min, max, num, sum, sum_squares, bucket_limits, bucket_counts, step, walltime)
  check_open(self, "add_histogram_raw")
  local function list(x) return torsh.is_tensor(x) and x:reshape(-1):totable() or x end
  invoke(self.file_writer, "add_histogram_raw", tag, min, max, num, sum, sum_squares, list(bucket_limits), list(bucket_counts),
    step, walltime)
end

-- (walltime, dataformats) positionally as in PyTorch, or an options table
local function image_args(a, b, default)
  if type(a) == "table" then return a.walltime, a.dataformats or default end
  return a, b or default
end

--- w:add_image(tag, img, [step], [walltime], [dataformats="CHW"]) or
--- w:add_image(tag, img, step, {dataformats="HWC"|"HW"|..., walltime=})
--- img: floats in [0, 1] or u8 in [0, 255]; 1, 3 or 4 channels.
function SummaryWriter:add_image(tag, img, step, walltime, dataformats)
  check_open(self, "add_image")
  local wt, fmt = image_args(walltime, dataformats, "CHW")
  invoke(self.file_writer, "add_image", tag, img, step, wt, fmt)
end

--- w:add_images(tag, imgs, [step], [walltime], [dataformats="NCHW"]): a batch as one grid image.
function SummaryWriter:add_images(tag, imgs, step, walltime, dataformats)
  check_open(self, "add_images")
  local wt, fmt = image_args(walltime, dataformats, "NCHW")
  invoke(self.file_writer, "add_image", tag, imgs, step, wt, fmt)
end

--- w:add_audio(tag, samples, [step], [sample_rate=44100], [walltime]): mono, values in [-1, 1].
function SummaryWriter:add_audio(tag, samples, step, sample_rate, walltime)
  check_open(self, "add_audio")
  invoke(self.file_writer, "add_audio", tag, samples, step, walltime, sample_rate or 44100)
end

--- w:add_text(tag, text, [step], [walltime]): markdown text (tag "<tag>/text_summary").
function SummaryWriter:add_text(tag, text, step, walltime)
  check_open(self, "add_text")
  invoke(self.file_writer, "add_text", tag, tostring(text), step, walltime)
end

local function is_graph(x)
  local mt = getmetatable(x)
  return mt ~= nil and mt == debug.getregistry()["torsh.Graph"]
end

--- w:add_graph(model, [input_to_model]): model is a graph (torsh._graph / torsh.jit.trace),
--- a torsh.model Model, or a torsh.nn module, which is traced on input_to_model.
function SummaryWriter:add_graph(model, input_to_model)
  check_open(self, "add_graph")
  local g
  if is_graph(model) then
    g = model
  elseif type(model) == "table" and is_graph(model.graph) then
    g = model.graph
  elseif type(model) == "table" and model.forward then
    if input_to_model == nil then
      error("add_graph: a torsh.nn module is traced to get its graph: pass an example input (input_to_model)", 2)
    end
    g = require("torsh.jit").trace(model, input_to_model)
  else
    error("add_graph: expected a graph, a torsh.model Model or a torsh.nn module, got " .. type(model), 2)
  end
  invoke(self.file_writer, "add_graph", g)
end

--- w:add_hparams(hparam_dict, metric_dict, [hparam_domain_discrete], [run_name])
--- Like PyTorch: a run of its own, <logdir>/<run_name> (default: the current time),
--- holding the hparams plugin's experiment/session records and each metric as a
--- scalar. Values: numbers, strings, booleans or 1-element tensors.
function SummaryWriter:add_hparams(hparam_dict, metric_dict, hparam_domain_discrete, run_name)
  check_open(self, "add_hparams")
  if type(hparam_dict) ~= "table" or type(metric_dict) ~= "table" then
    error("add_hparams: hparam_dict and metric_dict must be tables", 2)
  end
  hparam_domain_discrete = hparam_domain_discrete or {}
  local hps = {}
  for _, k in ipairs(sorted_keys(hparam_dict)) do
    local domain = hparam_domain_discrete[k]
    if domain ~= nil then
      if type(domain) ~= "table" then error(("add_hparams: the domain of '%s' must be a list"):format(k), 2) end
      for _, d in ipairs(domain) do
        if type(d) ~= type(hparam_dict[k]) then
          error(("add_hparams: the domain of '%s' must hold values of the same type as the value (%s)"):format(
            k, type(hparam_dict[k])), 2)
        end
      end
    end
    hps[#hps + 1] = { name = tostring(k), value = hparam_dict[k], domain = domain }
  end
  for k in pairs(hparam_domain_discrete) do
    if hparam_dict[k] == nil then error(("add_hparams: domain given for '%s', which is not a hyper-parameter"):format(k), 2) end
  end
  local metrics = {}
  for _, k in ipairs(sorted_keys(metric_dict)) do metrics[#metrics + 1] = { tostring(k), metric_dict[k] } end
  run_name = run_name or string.format("%.6f", core.now())
  local opened, w = pcall(core.open, self.log_dir .. "/" .. run_name, writer_options(self))
  if not opened then error(w, 2) end
  local ok, err = pcall(w.add_hparams, w, hps, metrics)
  local ok2, err2 = pcall(w.close, w)
  w:release()
  if not ok then error(err, 2) end
  if not ok2 then error(err2, 2) end
end

--- w:add_embedding(mat, [metadata], [label_img], [step=0], [tag="default"], [metadata_header])
--- Writes the projector's files (tensors.tsv, metadata.tsv, sprite.png) under
--- <logdir>/<%05d step>/<tag>/ and updates <logdir>/projector_config.pbtxt.
--- metadata: a list of labels, or with metadata_header a list of rows (lists).
function SummaryWriter:add_embedding(mat, metadata, label_img, step, tag, metadata_header)
  check_open(self, "add_embedding")
  local labels, header = nil, nil
  if metadata ~= nil then
    if torsh.is_tensor(metadata) then metadata = metadata:reshape(-1):totable() end
    if type(metadata) ~= "table" then error("add_embedding: metadata must be a list", 2) end
    labels = {}
    for i, m in ipairs(metadata) do
      if metadata_header then
        if type(m) ~= "table" or #m ~= #metadata_header then
          error(("add_embedding: metadata row %d must have %d columns (as the header)"):format(i, #metadata_header), 2)
        end
        local cols = {}
        for j, c in ipairs(m) do cols[j] = tostring(c) end
        labels[i] = table.concat(cols, "\t")
      else
        labels[i] = tostring(m)
      end
    end
    if metadata_header then
      local cols = {}
      for j, c in ipairs(metadata_header) do cols[j] = tostring(c) end
      header = table.concat(cols, "\t")
    end
  end
  invoke(self.file_writer, "add_embedding", mat, labels, header, label_img, step or 0, tag or "default")
end

--- w:add_pr_curve(tag, labels, predictions, [step], [num_thresholds=127], [weights], [walltime])
function SummaryWriter:add_pr_curve(tag, labels, predictions, step, num_thresholds, weights, walltime)
  check_open(self, "add_pr_curve")
  invoke(self.file_writer, "add_pr_curve", tag, labels, predictions, step, walltime, num_thresholds or 127, weights)
end

--- w:add_custom_scalars(layout): layout = {Category = {ChartTitle = {"Multiline", {tag regexps}}
--- | {"Margin", {value, lower, upper}}}}; categories and charts are written in name order.
function SummaryWriter:add_custom_scalars(layout)
  check_open(self, "add_custom_scalars")
  if type(layout) ~= "table" then error("add_custom_scalars: layout must be a table", 2) end
  local cats = {}
  for _, cname in ipairs(sorted_keys(layout)) do
    local charts = {}
    if type(layout[cname]) ~= "table" then error(("add_custom_scalars: category '%s' must be a table"):format(cname), 2) end
    for _, title in ipairs(sorted_keys(layout[cname])) do
      local spec = layout[cname][title]
      if type(spec) ~= "table" or type(spec[2]) ~= "table" then
        error(("add_custom_scalars: chart '%s' must be {\"Multiline\"|\"Margin\", {tags}}"):format(title), 2)
      end
      local kind = spec[1]
      if kind ~= "Multiline" and kind ~= "Margin" then
        error(("add_custom_scalars: chart '%s' has kind '%s' (Multiline or Margin)"):format(title, tostring(kind)), 2)
      end
      charts[#charts + 1] = { title = tostring(title), margin = kind == "Margin", tags = spec[2] }
    end
    cats[#cats + 1] = { title = tostring(cname), charts = charts }
  end
  invoke(self.file_writer, "add_custom_scalars", cats)
end

--- w:add_custom_scalars_multilinechart(tags, [category="default"], [title="untitled"])
function SummaryWriter:add_custom_scalars_multilinechart(tags, category, title)
  self:add_custom_scalars { [category or "default"] = { [title or "untitled"] = { "Multiline", tags } } }
end

--- w:add_custom_scalars_marginchart({value, lower, upper}, [category="default"], [title="untitled"])
function SummaryWriter:add_custom_scalars_marginchart(tags, category, title)
  self:add_custom_scalars { [category or "default"] = { [title or "untitled"] = { "Margin", tags } } }
end

--- w:flush(): writes pending events of every run this writer has opened.
function SummaryWriter:flush()
  if self.closed then return end
  for _, dir in ipairs(self.writer_order) do invoke(self.all_writers[dir], "flush") end
end

--- w:close(): flushes and closes every event file (idempotent); raises the
--- first error (a full disk, say) after closing them all.
function SummaryWriter:close()
  if self.closed then return end
  self.closed = true
  local first_err
  for _, dir in ipairs(self.writer_order) do
    local fw = self.all_writers[dir]
    local ok, err = pcall(fw.close, fw)
    if not ok and not first_err then first_err = err end
  end
  if first_err then error(first_err, 2) end
end

SummaryWriter.__close = function(self) self:close() end
SummaryWriter.__tostring = function(self)
  return ("torsh.tb.SummaryWriter(%s%s)"):format(self.log_dir, self.closed and ", closed" or "")
end

--- torsh.tb.hostname() -> the host name event files are named with
M.hostname = core.hostname

return M
