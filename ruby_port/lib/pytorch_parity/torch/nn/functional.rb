# frozen_string_literal: true

# Fix: torch.rb 0.12, Torch::NN::Functional (lib/torch/nn/functional.rb)
# Bug: conv2d, max_pool2d, avg_pool2d and their kin take every argument in one splat (`*args, **options`)
#   and pass it on to LibTorch the same way; the input tensor then outlives the call, held past minor GCs
#   (a dump of Ruby's heap in an eval loop shows it in an old Array with the call's other arguments), so
#   only a major GC frees it, where Python frees it as soon as the caller lets it go
# Reproduction:
#   held = ObjectSpace::WeakMap.new
#   pool = ->(x) { held[x] = true; Torch::NN::Functional.max_pool2d(x, 3, 2, 1, 1, false, false); nil }
#   10.times { pool.call(Torch.ones(1, 1, 8, 8)); GC.start(full_mark: false, immediate_sweep: true) }
#   held.size
# Upstream gives: 1
# Python gives: 0
# In Python: import weakref; x = torch.ones(1, 1, 8, 8); held = weakref.ref(x); torch.nn.functional.max_pool2d(x, 3, 2, 1, 1); del x; int(held() is not None)

require "torch"

module PytorchParity
  # Torch::NN::Functional's splat methods with the input taken by name: only the other arguments (the
  # weights, sizes and flags, which outlive the call anyway) travel through a splat. Each calls what
  # upstream calls, not upstream's method, which would gather the input into its splat again. In
  # ResNet-18's eval forward the input so held was max_pool2d's, 12.8 MiB for a batch of 4, one more each
  # step until a major GC; the memory count started a major GC (a full mark of Ruby's heap, about 15 ms)
  # nearly every step to free it (bench/README.md).
  module FunctionalInputByName
    CALLS = {
      conv1d: [Torch, :conv1d], conv2d: [Torch, :conv2d], conv3d: [Torch, :conv3d],
      avg_pool1d: [Torch, :avg_pool1d], avg_pool2d: [Torch::NN, :avg_pool2d], avg_pool3d: [Torch::NN, :avg_pool3d],
      adaptive_max_pool1d: [Torch, :adaptive_max_pool1d], adaptive_avg_pool1d: [Torch, :adaptive_avg_pool1d],
      softshrink: [Torch::NN, :softshrink]
    }.freeze
    # Upstream pops return_indices when all seven arguments are given and calls the first function with
    # the other six when it is true, the second otherwise.
    MAX_POOLS = {
      max_pool1d: [[Torch, :max_pool1d_with_indices], [Torch, :max_pool1d]],
      max_pool2d: [[Torch::NN, :max_pool2d_with_indices], [Torch, :max_pool2d]],
      max_pool3d: [[Torch::NN, :max_pool3d_with_indices], [Torch, :max_pool3d]]
    }.freeze

    CALLS.each do |name, (receiver, function)|
      define_method(name) { |input, *rest, **options| receiver.public_send(function, input, *rest, **options) }
    end

    MAX_POOLS.each do |name, (with_indices, without)|
      define_method(name) do |input, *rest, **options|
        return_indices = rest.pop if rest.size == 6
        receiver, function = return_indices ? with_indices : without
        receiver.public_send(function, input, *rest, **options)
      end
    end
  end
end

Torch::NN::Functional.singleton_class.prepend(PytorchParity::FunctionalInputByName)
