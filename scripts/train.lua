-- train a model: run a training recipe (torsh train RECIPE.lua [options])
local cli = require "torsh.cli"
if #arg == 0 or arg[1] == "--help" or arg[1] == "-h" then
  io.write([[
usage: torsh train RECIPE.lua [recipe options]

Runs a training recipe (a Lua script using torsh.train), passing it the
options that follow. Every recipe takes --help.

recipes shipped with torsh:
  recipes/fashion_mnist.lua       two-conv CNN on Fashion-MNIST
  recipes/fashion_mnist_mlp.lua   784-256-128-10 MLP on Fashion-MNIST

common options: --epochs N --lr RATE --batch N --augment --checkpoint PATH
                --resume PATH --metrics PATH --tensorboard DIR --save PATH
                --seed N --threads N

examples:
  torsh train recipes/fashion_mnist.lua --epochs 2 --metrics m.jsonl
  torsh train recipes/fashion_mnist.lua --resume run/ckpt.torsh --checkpoint run/ckpt.torsh --epochs 10
]])
  os.exit(#arg == 0 and 2 or 0)
end
local recipe = arg[1]
local f = io.open(recipe)
if not f then cli.usage_error(string.format("train: no recipe file '%s'", recipe)) end
f:close()
local chunk, err = loadfile(recipe)
if not chunk then error(err, 0) end
local args = {}
for i = 2, #arg do args[#args + 1] = arg[i] end
arg = setmetatable(args, { __index = function(_, k) if k == 0 then return recipe end end })
return chunk(table.unpack(args))
