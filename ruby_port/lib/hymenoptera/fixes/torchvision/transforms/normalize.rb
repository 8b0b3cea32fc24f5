# frozen_string_literal: true

module Hymenoptera
  module Transforms
    # transforms.Normalize(mean, std): (tensor - mean) / std per channel, in float32 as torchvision.
    # torchvision-ruby's makes the same two operations, after a clone and with mean and std made
    # tensors again on every call (a third of its time on a 224x224 image).
    class Normalize < Torch::NN::Module
      def initialize(mean, std)
        super()
        @mean = mean
        @std = std
        @tensors = {}
      end

      def forward(tensor)
        mean, std = @tensors[tensor.dtype] ||= F.normalization_tensors(@mean, @std, tensor.dtype)
        F.normalize(tensor, mean, std)
      end
    end
  end
end
