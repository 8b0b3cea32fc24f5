# frozen_string_literal: true

# Fix: torch.rb 0.12, Torch::Optim::SGD (lib/torch/optim/sgd.rb)
# Bug: it keeps the momentum buffers in @state with no reader, where PyTorch's optimizer.state is
#   public (the parity suite compares the buffers)
# Reproduction:
#   Torch::Optim::SGD.new([Torch.zeros(1, requires_grad: true)], lr: 0.1).respond_to?(:state)
# Upstream gives: false
# Python gives: True
# In Python: hasattr(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), "state")

module Hymenoptera
  # torch.optim.SGD with its `state` readable, as PyTorch's optimizer.state is: torch.rb 0.12 keeps
  # the momentum buffers in @state with no reader, and the parity suite compares them.
  class SGD < Torch::Optim::SGD
    attr_reader :state
  end
end
