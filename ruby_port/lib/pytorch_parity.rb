# frozen_string_literal: true

# pytorch_parity: torch.rb 0.12 and torchvision-ruby 0.3 made to compute what PyTorch 1.13 and
# torchvision 0.14 (on PIL) compute, for code written against the gems' own classes:
#
#   require "pytorch_parity"      # or: bundle exec ruby -rpytorch_parity port.rb
#
# Each file under pytorch_parity/torch/ and pytorch_parity/torchvision/ changes one upstream class in
# place (Module#prepend, calling super where upstream is right) and sits at the path of what it fixes
# (pytorch_parity/torch/nn/batch_norm2d.rb for torch.rb's lib/torch/nn/batch_norm2d.rb). Its header says
# what upstream does and how to show it; its canary (ruby_port/test/canaries/) fails, naming the file to
# delete, the day the gem no longer does it. pytorch_parity/image/ is the library's own image stack
# (decoding, PIL's conversions, resampling), which the fixes of torchvision-ruby work on: it changes no
# upstream class. Loading this file twice, or before or after torch and torchvision, changes nothing more.
require_relative "pytorch_parity/bundle"
require "ffi"
require "torch"
require "torchvision"

require_relative "pytorch_parity/version"
require_relative "pytorch_parity/image/vips_tensor"
require_relative "pytorch_parity/image/turbo_jpeg"
require_relative "pytorch_parity/image/rgb_loader"
require_relative "pytorch_parity/image/resample"
require_relative "pytorch_parity/torch/num_threads"
require_relative "pytorch_parity/torch/randint"
require_relative "pytorch_parity/torch/tensor_memory"
require_relative "pytorch_parity/torch/tensor_item"
require_relative "pytorch_parity/torch/tensor/marshal"
require_relative "pytorch_parity/torch/save"
require_relative "pytorch_parity/torch/save/pickler"
require_relative "pytorch_parity/torch/save/zip_stream"
require_relative "pytorch_parity/torch/load"
require_relative "pytorch_parity/torch/load/zip_reader"
require_relative "pytorch_parity/torch/load/unpickler"
require_relative "pytorch_parity/torch/nn/batch_norm2d"
require_relative "pytorch_parity/torch/nn/functional"
require_relative "pytorch_parity/torch/nn/intermediates"
require_relative "pytorch_parity/torch/nn/sequential"
require_relative "pytorch_parity/torch/optim/optimizer"
require_relative "pytorch_parity/torch/optim/lr_scheduler/step_lr"
require_relative "pytorch_parity/torch/utils/data/random_sampler"
require_relative "pytorch_parity/torch/utils/data/sequential_sampler"
require_relative "pytorch_parity/torch/utils/data/batch_sampler"
require_relative "pytorch_parity/torch/utils/data/collate"
require_relative "pytorch_parity/torch/utils/data/data_loader"
require_relative "pytorch_parity/torch/utils/data/worker_channel"
require_relative "pytorch_parity/torch/utils/data/worker"
require_relative "pytorch_parity/torch/utils/data/multi_processing_data_loader_iter"
require_relative "pytorch_parity/torch/utils/data/data_loader_workers"
require_relative "pytorch_parity/torchvision/datasets/image_folder"
require_relative "pytorch_parity/torchvision/models/resnet"
require_relative "pytorch_parity/torchvision/models/basic_block"
require_relative "pytorch_parity/torchvision/models/bottleneck"
require_relative "pytorch_parity/torchvision/transforms/functional"
require_relative "pytorch_parity/torchvision/transforms/compose"
require_relative "pytorch_parity/torchvision/transforms/resize"
require_relative "pytorch_parity/torchvision/transforms/center_crop"
require_relative "pytorch_parity/torchvision/transforms/random_resized_crop"
require_relative "pytorch_parity/torchvision/transforms/random_horizontal_flip"
require_relative "pytorch_parity/torchvision/transforms/to_tensor"
require_relative "pytorch_parity/torchvision/transforms/normalize"
