# frozen_string_literal: true

module Hymenoptera
  # Torch::NN::BatchNorm2d as PyTorch has it: in training mode each forward adds 1 to
  # num_batches_tracked. torch.rb 0.12 only counts when the buffer is nil (never), so its state dicts
  # would carry num_batches_tracked = 0 where Python's carry the number of training batches.
  class BatchNorm2d < Torch::NN::BatchNorm2d
    def forward(input)
      @num_batches_tracked.add!(1) if @training && @track_running_stats && @num_batches_tracked
      super
    end
  end
end
