# frozen_string_literal: true

# Fix: torch.rb 0.12, Torch::Optim::Optimizer (lib/torch/optim/optimizer.rb)
# Bug: it keeps each parameter's state (SGD's momentum buffers) in @state with no reader, where
#   PyTorch's optimizer.state is public
# Reproduction:
#   Torch::Optim::SGD.new([Torch.zeros(1, requires_grad: true)], lr: 0.1).respond_to?(:state)
# Upstream gives: false
# Python gives: True
# In Python: hasattr(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), "state")

require "torch"

module PytorchParity
  # optimizer.state: parameter => its state ({momentum_buffer: tensor} for SGD), as in PyTorch.
  module OptimizerState
    def state
      @state
    end
  end
end

Torch::Optim::Optimizer.prepend(PytorchParity::OptimizerState)
