# frozen_string_literal: true

# What the port adds to torch.rb 0.12 and torchvision-ruby 0.3.0 to compute what PyTorch 1.13 and
# torchvision 0.14 compute: each file sits where upstream's would (fixes/torch/nn/batch_norm2d.rb for
# torch.rb's lib/torch/nn/batch_norm2d.rb), says in its header what upstream does and how to show it,
# and has a canary in ruby_port/test/canaries/ that fails, naming the file to delete, the day the
# installed gem no longer does it. No installed gem is patched: the port's classes stand beside
# upstream's, under Hymenoptera.
require_relative "fixes/torch/tensor_memory"
require_relative "fixes/torch/tensor_item"
require_relative "fixes/torch/nn/batch_norm2d"
require_relative "fixes/torch/nn/state_dict"
require_relative "fixes/torch/optim/sgd"
require_relative "fixes/torch/optim/lr_scheduler/step_lr"
require_relative "fixes/torch/utils/data/random_sampler"
require_relative "fixes/torch/utils/data/data_loader"
require_relative "fixes/torchvision/datasets/vips_tensor"
require_relative "fixes/torchvision/datasets/turbo_jpeg"
require_relative "fixes/torchvision/datasets/rgb_loader"
require_relative "fixes/torchvision/datasets/image_folder"
require_relative "fixes/torchvision/transforms/resample"
require_relative "fixes/torchvision/transforms/functional"
require_relative "fixes/torchvision/transforms/compose"
require_relative "fixes/torchvision/transforms/resize"
require_relative "fixes/torchvision/transforms/center_crop"
require_relative "fixes/torchvision/transforms/random_resized_crop"
require_relative "fixes/torchvision/transforms/random_horizontal_flip"
require_relative "fixes/torchvision/transforms/to_tensor"
require_relative "fixes/torchvision/transforms/normalize"
require_relative "fixes/torchvision/models/vgg"
