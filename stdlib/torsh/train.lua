-- torsh/train.lua — the training loop: epochs, metrics, evaluation, progress,
-- checkpoints that resume bit for bit, best-model tracking, metrics file,
-- clean stop on Ctrl-C.
--
--   local train = require "torsh.train"
--   local history = train.fit {
--     model = model, optimizer = opt, train_loader = tl, test_loader = vl,
--     epochs = 2, checkpoint = "run/ckpt.torsh", resume = "run/ckpt.torsh",
--     metrics = "run/metrics.jsonl",
--   }
--
-- A checkpoint holds the model and optimizer state dicts, the scheduler, the
-- random generator, the data loader's position, the step counters and the
-- history so far; it is written atomically (torsh.save: temp file, fsync,
-- rename). Resuming from it continues exactly where the run stopped: the
-- same batches, the same random draws, the same updates. Saved every
-- `checkpoint_every` steps, at each epoch end, and when Ctrl-C stops the run.
local torsh = require "torsh"
local F = require "torsh.nn.functional"
local cli = require "torsh.cli"

local M = {}

-- ---- progress ---------------------------------------------------------------------
local Progress = {}
Progress.__index = Progress

local function fmt_time(s)
  s = math.max(0, math.floor(s + 0.5))
  if s >= 3600 then return string.format("%d:%02d:%02d", s // 3600, s % 3600 // 60, s % 60) end
  return string.format("%d:%02d", s // 60, s % 60)
end

function Progress.new(enabled, total, label)
  return setmetatable({ tty = enabled, total = total, label = label, t0 = torsh.clock(), last = 0 }, Progress)
end

function Progress:update(done, text)
  if not self.tty then return end
  local now = torsh.clock()
  if now - self.last < 0.1 and done < self.total then return end
  self.last = now
  local width = 24
  local frac = self.total > 0 and done / self.total or 1
  local bar = string.rep("=", math.floor(frac * width))
  if #bar < width then bar = bar .. ">" .. string.rep(" ", width - #bar - 1) end
  local elapsed = now - self.t0
  local eta = done > 0 and elapsed / done * (self.total - done) or 0
  io.stderr:write(string.format("\r%s [%s] %d/%d %s ETA %s ", self.label, bar, done, self.total, text, fmt_time(eta)))
  io.stderr:flush()
end

function Progress:finish()
  if self.tty then io.stderr:write("\r\27[K") io.stderr:flush() end
end

-- ---- evaluation ------------------------------------------------------------------------

--- evaluate(model, loader, loss_fn) -> {loss=, accuracy=, samples=}
function M.evaluate(model, loader, loss_fn)
  loss_fn = loss_fn or F.cross_entropy
  local was_training = model:is_training()
  model:eval()
  local loss_sum, correct, count = 0, 0, 0
  torsh.no_grad(function()
    for _, x, y in loader:iter() do
      local out = model(x)
      local n = x:size(1)
      loss_sum = loss_sum + loss_fn(out, y):item() * n
      correct = correct + out:argmax(2):eq(y):sum():item()
      count = count + n
    end
  end)
  model:train(was_training)
  return { loss = loss_sum / math.max(count, 1), accuracy = correct / math.max(count, 1), samples = count }
end

-- ---- checkpoints ---------------------------------------------------------------------

local function capture(run)
  local seed, offset = torsh.get_rng_state()
  return {
    format = "torsh-train-checkpoint", version = 1,
    model = run.model:state_dict(),
    optimizer = run.optimizer:state_dict(),
    scheduler = run.scheduler and run.scheduler:state_dict() or nil,
    rng = { seed = seed, offset = offset },
    loader = run.train_loader:state(),
    epoch = run.epoch, epoch_step = run.epoch_step, step = run.step,
    epoch_sums = run.sums,
    history = run.history,
    best = run.best,
    threads = torsh.get_num_threads(),
  }
end

local function restore(run, ck, path)
  if type(ck) ~= "table" or ck.format ~= "torsh-train-checkpoint" then
    error(string.format("resume: %s is not a torsh training checkpoint", path), 0)
  end
  run.model:load_state_dict(ck.model)
  run.optimizer:load_state_dict(ck.optimizer)
  if run.scheduler and ck.scheduler then run.scheduler:load_state_dict(ck.scheduler) end
  torsh.set_rng_state(ck.rng.seed, ck.rng.offset)
  run.train_loader:load_state(ck.loader)
  run.epoch, run.epoch_step, run.step = ck.epoch, ck.epoch_step, ck.step
  run.sums = ck.epoch_sums
  run.history = ck.history or {}
  run.best = ck.best
  if ck.threads and ck.threads ~= torsh.get_num_threads() then
    io.stderr:write(string.format("resume: the checkpoint was made with %d threads, this run uses %d; "
      .. "results stay correct but will not be bit-identical\n", ck.threads, torsh.get_num_threads()))
  end
end

local function save_checkpoint(run, path)
  if not path then return end
  local dir = path:match("^(.*)/[^/]*$")
  if dir then os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'") end
  torsh.save(capture(run), path, { metadata = { kind = "checkpoint", epoch = tostring(run.epoch), step = tostring(run.step) } })
end

local function write_metrics(path, history)
  if not path then return end
  local lines = {}
  for _, h in ipairs(history) do lines[#lines + 1] = cli.json(h) end
  local tmp = path .. ".tmp"
  local f = assert(io.open(tmp, "w"))
  f:write(table.concat(lines, "\n"), #lines > 0 and "\n" or "")
  f:close()
  assert(os.rename(tmp, path))
end

-- ---- the loop ----------------------------------------------------------------------------

--- fit(opts) -> history (one table per epoch). Options:
---   model, optimizer, train_loader (required); test_loader; loss_fn (default cross-entropy);
---   epochs (1); scheduler (+ scheduler_interval "epoch"|"step", default "epoch");
---   checkpoint (path), checkpoint_every (steps), resume (path or true = checkpoint);
---   best_metric ("test_accuracy"), best_mode ("max"), best_path (default checkpoint .. ".best");
---   metrics (path: JSON lines), progress (default: stderr is a terminal), log (function(line)),
---   grad_clip (max norm), accumulate (batches per optimizer step, default 1),
---   autocast ("bf16": mixed precision for linear/conv with f32 master weights; see nn.functional.autocast),
---   tensorboard (a log dir, or a torsh.tb.SummaryWriter the caller closes): scalars train/loss and
---   train/lr every `tensorboard_every` (10) steps, epoch/<metric> (train_loss, train_accuracy,
---   test_loss, test_accuracy, samples_per_second) at each epoch end with the epoch as step
function M.fit(o)
  assert(o.model and o.optimizer and o.train_loader, "fit: model, optimizer and train_loader are required")
  local run = {
    model = o.model, optimizer = o.optimizer, scheduler = o.scheduler, train_loader = o.train_loader,
    epoch = 1, epoch_step = 0, step = 0, sums = { loss = 0, correct = 0, count = 0, seconds = 0 },
    history = {}, best = nil,
  }
  local loss_fn = o.loss_fn or F.cross_entropy
  local epochs = o.epochs or 1
  local log = o.log or function(line) io.stderr:write(line, "\n") end
  local show_progress = o.progress
  if show_progress == nil then show_progress = torsh.isatty(2) end
  local accumulate = o.accumulate or 1
  local best_metric, best_mode = o.best_metric or "test_accuracy", o.best_mode or "max"
  local best_path = o.best_path or (o.checkpoint and (o.checkpoint:gsub("%.torsh$", "") .. ".best.torsh"))
  local tbw, tb_own = o.tensorboard, type(o.tensorboard) == "string"
  if tb_own then tbw = require("torsh.tb").SummaryWriter(o.tensorboard) end
  local tb_every = o.tensorboard_every or 10

  local resume = o.resume == true and o.checkpoint or o.resume
  if resume then
    restore(run, torsh.load(resume), resume)
    log(string.format("resumed from %s at epoch %d, step %d", resume, run.epoch, run.step))
  end

  torsh.trap_interrupt(true)
  local ok, err = pcall(function()
    while run.epoch <= epochs do
      local model = run.model
      model:train()
      run.train_loader:set_epoch(run.epoch)
      local nbatches = run.train_loader:len()
      local bar = Progress.new(show_progress, nbatches, string.format("epoch %d/%d", run.epoch, epochs))
      local t_epoch = torsh.clock()
      local sums = run.sums
      for batch, x, y in run.train_loader:iter() do
        local out = o.autocast and F.autocast(o.autocast, model, x) or model(x)
        local loss = loss_fn(out, y)
        local lv = loss:item()
        if accumulate > 1 then loss = loss / accumulate end
        loss:backward()
        run.epoch_step = batch
        if run.epoch_step % accumulate == 0 or batch == nbatches then
          if o.grad_clip then require("torsh.optim").clip_grad_norm_(model:parameters(), o.grad_clip) end
          run.optimizer:step()
          run.optimizer:zero_grad()
          if run.scheduler and o.scheduler_interval == "step" then run.scheduler:step() end
        end
        run.step = run.step + 1
        if tbw and run.step % tb_every == 0 then
          tbw:add_scalar("train/loss", lv, run.step)
          local groups = run.optimizer.param_groups
          if groups and groups[1].lr then tbw:add_scalar("train/lr", groups[1].lr, run.step) end
        end
        local n = x:size(1)
        sums.loss = sums.loss + lv * n
        sums.correct = sums.correct + out:detach():argmax(2):eq(y):sum():item()
        sums.count = sums.count + n
        local elapsed = sums.seconds + (torsh.clock() - t_epoch)
        bar:update(batch, string.format("loss %.4f acc %.4f %5.0f img/s", sums.loss / sums.count,
          sums.correct / sums.count, sums.count / math.max(elapsed, 1e-9)))
        if o.checkpoint_every and run.step % o.checkpoint_every == 0 and batch < nbatches then
          sums.seconds = sums.seconds + (torsh.clock() - t_epoch)
          t_epoch = torsh.clock()
          save_checkpoint(run, o.checkpoint)
        end
        if torsh.interrupted() then
          sums.seconds = sums.seconds + (torsh.clock() - t_epoch)
          bar:finish()
          save_checkpoint(run, o.checkpoint)
          error({ interrupted = true }, 0)
        end
      end
      bar:finish()
      local seconds = sums.seconds + (torsh.clock() - t_epoch)
      local rec = {
        epoch = run.epoch, train_loss = sums.loss / math.max(sums.count, 1),
        train_accuracy = sums.correct / math.max(sums.count, 1), seconds = seconds,
        samples_per_second = sums.count / math.max(seconds, 1e-9), steps = run.step,
        lr = run.optimizer.param_groups and run.optimizer.param_groups[1].lr or nil,
      }
      if o.test_loader then
        local ev = M.evaluate(model, o.test_loader, loss_fn)
        rec.test_loss, rec.test_accuracy = ev.loss, ev.accuracy
      end
      run.history[#run.history + 1] = rec
      if tbw then
        for _, k in ipairs { "train_loss", "train_accuracy", "test_loss", "test_accuracy", "samples_per_second" } do
          if rec[k] then tbw:add_scalar("epoch/" .. k, rec[k], run.epoch) end
        end
        tbw:flush()
      end
      log(string.format("epoch %d/%d: train loss %.4f acc %.4f%s, %.1f s (%.0f img/s)", run.epoch, epochs,
        rec.train_loss, rec.train_accuracy,
        rec.test_loss and string.format(", test loss %.4f acc %.4f", rec.test_loss, rec.test_accuracy) or "",
        seconds, rec.samples_per_second))
      if run.scheduler and o.scheduler_interval ~= "step" then
        if run.scheduler.step_metric then run.scheduler:step(rec[o.plateau_metric or "test_loss"] or rec.train_loss)
        else run.scheduler:step() end
      end
      -- next epoch starts from a clean slate
      run.epoch = run.epoch + 1
      run.epoch_step = 0
      run.sums = { loss = 0, correct = 0, count = 0, seconds = 0 }
      local v = rec[best_metric]
      local better = v and (run.best == nil or (best_mode == "max" and v > run.best) or (best_mode == "min" and v < run.best))
      if better then run.best = v end
      write_metrics(o.metrics, run.history)
      save_checkpoint(run, o.checkpoint)
      if better and best_path then torsh.save(capture(run), best_path, { metadata = { kind = "best", metric = best_metric } }) end
    end
  end)
  torsh.trap_interrupt(false)
  if tb_own then
    local closed, cerr = pcall(tbw.close, tbw)
    if ok and not closed then ok, err = false, cerr end
  end
  -- a run resumed after its last epoch still leaves its metrics file behind
  if ok then write_metrics(o.metrics, run.history) end
  if not ok then
    if type(err) == "table" and err.interrupted then
      log(string.format("interrupted at epoch %d step %d%s", run.epoch, run.step,
        o.checkpoint and ("; checkpoint saved to " .. o.checkpoint .. " (resume with --resume)") or ""))
      os.exit(130)
    end
    error(err, 0)
  end
  return run.history
end

return M
