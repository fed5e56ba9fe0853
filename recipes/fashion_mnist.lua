-- fashion_mnist.lua — train the two-conv CNN on Fashion-MNIST.
--   torsh recipes/fashion_mnist.lua --epochs 2 --metrics m.jsonl
--   torsh train recipes/fashion_mnist.lua --epochs 10 --augment --checkpoint run/ckpt.torsh
-- Model: conv(1->32,3x3,pad1)-BN-ReLU-maxpool2, conv(32->64,3x3,pad1)-BN-ReLU-maxpool2,
-- linear(3136->128)-ReLU, linear(128->10); Adam lr 1e-3 annealed to 0 by a cosine
-- schedule over the run (--schedule none keeps it constant), batch 128, inputs normalised.
-- Data: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
local cli = require "torsh.cli"
local nn = require "torsh.nn"
local optim = require "torsh.optim"
local data = require "torsh.data"
local train = require "torsh.train"

local opts = cli.parse(arg, {
  name = "recipes/fashion_mnist.lua",
  summary = "Trains a two-conv CNN (or, with --model mlp, a 784-256-128-10 MLP) on Fashion-MNIST.",
  options = {
    { "epochs", "N", default = "2", help = "epochs to train" },
    { "lr", "RATE", default = "0.001", help = "Adam learning rate (the start of the schedule)" },
    { "schedule", "cosine|none", default = "cosine", choices = { "cosine", "none" },
      help = "learning-rate schedule: cosine annealing to 0 over the whole run, stepped every batch" },
    { "batch", "N", default = "128", help = "batch size" },
    { "augment", flag = true, help = "random crop (padding 1) and horizontal flip" },
    { "model", "cnn|mlp", default = "cnn", choices = { "cnn", "mlp" }, help = "architecture" },
    { "checkpoint", "PATH", help = "checkpoint file, saved each epoch (and every --checkpoint-every steps)" },
    { "checkpoint-every", "STEPS", help = "also checkpoint every STEPS steps" },
    { "resume", "PATH", help = "continue from a checkpoint (bit-identical to an uninterrupted run)" },
    { "metrics", "PATH", help = "write one JSON object per epoch (JSON lines)" },
    { "tensorboard", "DIR", help = "log loss, learning rate and epoch metrics for TensorBoard to DIR" },
    { "save", "PATH", help = "save the trained model's state dict (.torsh, or .pt/.pth for PyTorch)" },
    { "seed", "N", default = "0", help = "random seed (init, shuffling, augmentation)" },
    { "amp", "bf16", choices = { "bf16" }, help = "mixed precision: linear/conv in bf16, f32 master weights" },
    { "threads", "N", help = "compute threads (default: all cores)" },
    { "limit", "N", help = "use only the first N training images (quick runs)" },
    { "data", "DIR", default = "/usr/share/datasets/fashion-mnist", help = "Fashion-MNIST folder" },
  },
  examples = { "torsh recipes/fashion_mnist.lua --epochs 2 --metrics m.jsonl",
               "torsh recipes/fashion_mnist.lua --epochs 10 --augment --checkpoint run/ckpt.torsh",
               "torsh recipes/fashion_mnist.lua --epochs 2 --tensorboard runs/cnn   # then: tensorboard --logdir runs",
               "torsh recipes/fashion_mnist.lua --epochs 10 --augment --checkpoint run/ckpt.torsh --resume run/ckpt.torsh" },
})

if opts.threads then torsh.set_num_threads(tonumber(opts.threads)) end
local seed = tonumber(opts.seed)
torsh.manual_seed(seed)

local T = data.transforms
local norm = T.Normalize({ 0.2860 }, { 0.3530 })
local train_tf = opts.augment and T.Compose { T.ToFloat(), T.RandomCrop(28, { padding = 1 }), T.RandomHorizontalFlip(0.5), norm }
  or T.Compose { T.ToFloat(), norm }
local train_set = data.FashionMNIST { root = opts.data, train = true, transform = train_tf, limit = opts.limit and tonumber(opts.limit) }
local test_set = data.FashionMNIST { root = opts.data, train = false, transform = T.Compose { T.ToFloat(), norm } }
local batch = tonumber(opts.batch)
local train_loader = data.DataLoader(train_set, { batch_size = batch, shuffle = true, seed = seed })
local test_loader = data.DataLoader(test_set, { batch_size = 1000 })

local model = opts.model == "mlp" and nn.zoo.mlp { sizes = { 784, 256, 128, 10 } } or nn.zoo.fashion_cnn()
local opt = optim.Adam(model:parameters(), { lr = tonumber(opts.lr) })
local epochs = tonumber(opts.epochs)
local scheduler = opts.schedule == "cosine"
  and optim.lr_scheduler.CosineAnnealingLR(opt, { T_max = epochs * train_loader:len() }) or nil

io.stderr:write(string.format("fashion-mnist %s: %d params, %d train / %d test images, batch %d, %d threads\n",
  opts.model, model:num_parameters(), train_set:len(), test_set:len(), batch, torsh.get_num_threads()))

local history = train.fit {
  model = model, optimizer = opt, train_loader = train_loader, test_loader = test_loader,
  epochs = epochs, checkpoint = opts.checkpoint, scheduler = scheduler, scheduler_interval = "step",
  checkpoint_every = opts["checkpoint-every"] and tonumber(opts["checkpoint-every"]),
  resume = opts.resume, metrics = opts.metrics, autocast = opts.amp, tensorboard = opts.tensorboard,
}

if opts.save then
  -- .pt files load in PyTorch: torch.load(path, weights_only=True), keys in PyTorch's order
  torsh.save(model:state_dict(), opts.save, { metadata = { model = "fashion_" .. opts.model }, keys = model:state_dict_keys() })
  io.stderr:write("saved model to ", opts.save, "\n")
end
local last = history[#history]
if last then
  print(string.format("test accuracy %.4f after %d epochs", last.test_accuracy or 0, last.epoch))
end
