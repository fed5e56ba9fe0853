-- torsh/nn/loss.lua — loss modules wrapping torsh.nn.functional's losses
-- (CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, SmoothL1Loss, BCEWithLogitsLoss).
local Module = require "torsh.nn.module"
local F = require "torsh.nn.functional"
local M = {}

local function loss_module(name, fn)
  local C = Module:extend(name)
  function C:init(opts) self.opts = opts or {} end
  function C:forward(a, b) return fn(a, b, self.opts) end
  return C
end

M.CrossEntropyLoss = loss_module("CrossEntropyLoss", F.cross_entropy)
M.NLLLoss = loss_module("NLLLoss", function(a, b, o) return F.nll_loss(a, b, o) end)
M.MSELoss = loss_module("MSELoss", F.mse_loss)
M.L1Loss = loss_module("L1Loss", F.l1_loss)
M.SmoothL1Loss = loss_module("SmoothL1Loss", F.smooth_l1_loss)
M.BCEWithLogitsLoss = loss_module("BCEWithLogitsLoss", F.binary_cross_entropy_with_logits)
return M
