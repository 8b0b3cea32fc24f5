# frozen_string_literal: true

# The Ruby port of PyTorch's "Transfer Learning for Computer Vision" tutorial (ResNet-18, ants vs
# bees) on torch.rb and torchvision-ruby. Entry points (hymenoptera/cli.rb) call Hymenoptera::Threads.configure
# before requiring this file: LibTorch reads its thread count when it loads.
unless defined?(Torch::Tensor) || ENV.key?("OMP_NUM_THREADS")
  raise "call Hymenoptera::Threads.configure before requiring hymenoptera (it loads LibTorch)"
end

require "digest"
require "json"
require "ruby-progressbar"
require_relative "pytorch_parity"

require_relative "hymenoptera/errors"
require_relative "hymenoptera/arguments"
require_relative "hymenoptera/checksums"
require_relative "hymenoptera/threads"
require_relative "hymenoptera/atomic"
require_relative "hymenoptera/output_claim"
require_relative "hymenoptera/tensor_io"
require_relative "hymenoptera/runtime_info"
require_relative "hymenoptera/python_reference"
require_relative "hymenoptera/model"
require_relative "hymenoptera/recipe"
require_relative "hymenoptera/strategies"
require_relative "hymenoptera/observer"
require_relative "hymenoptera/weights"
require_relative "hymenoptera/data_layout"
require_relative "hymenoptera/data"
require_relative "hymenoptera/visualize"
require_relative "hymenoptera/train"
require_relative "hymenoptera/fixtures_format"
require_relative "hymenoptera/replay"
require_relative "hymenoptera/preprocess"
require_relative "hymenoptera/zoo"
require_relative "hymenoptera/summary"
require_relative "hymenoptera/logits"
