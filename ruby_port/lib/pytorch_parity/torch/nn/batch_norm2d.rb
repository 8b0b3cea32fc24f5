# frozen_string_literal: true

# Fix: torch.rb 0.12, Torch::NN::BatchNorm2d (lib/torch/nn/batch_norm2d.rb)
# Bug: in training mode it never increments num_batches_tracked (it counts only when the buffer is
#   nil, which it never is), so its state dicts carry 0 where PyTorch's count the batches
# Reproduction:
#   bn = Torch::NN::BatchNorm2d.new(1)
#   bn.call(Torch.ones(2, 1, 1, 1))
#   bn.num_batches_tracked.item
# Upstream gives: 0
# Python gives: 1
# In Python: bn = torch.nn.BatchNorm2d(1); bn(torch.ones(2, 1, 1, 1)); bn.num_batches_tracked.item()

require "torch"

module PytorchParity
  # Torch::NN::BatchNorm2d as PyTorch has it: in training mode each forward adds 1 to
  # num_batches_tracked. Every model the gems build with BatchNorm2d (ResNets, VGGs with _bn) counts.
  module BatchNorm2dCountsBatches
    def forward(input)
      @num_batches_tracked.add!(1) if @training && @track_running_stats && @num_batches_tracked
      super
    end
  end
end

Torch::NN::BatchNorm2d.prepend(PytorchParity::BatchNorm2dCountsBatches)
