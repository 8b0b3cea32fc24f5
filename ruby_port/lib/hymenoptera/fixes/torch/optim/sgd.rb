# frozen_string_literal: true

module Hymenoptera
  # torch.optim.SGD with its `state` readable, as PyTorch's optimizer.state is: torch.rb 0.12 keeps
  # the momentum buffers in @state with no reader, and the parity suite compares them.
  class SGD < Torch::Optim::SGD
    attr_reader :state
  end
end
