# frozen_string_literal: true

# Fix: torchvision-ruby 0.3.0, TorchVision::Transforms::Normalize (lib/torchvision/transforms/normalize.rb)
# Bug: the same values, but it makes mean and std tensors again on every call and reads std back to
#   look for zeros: a third of its time on a 224x224 image (torchvision's as_tensor costs little)
# Reproduction:
#   normalize = TorchVision::Transforms::Normalize.new([0.5] * 3, [0.5] * 3)
#   made = 0
#   counter = TracePoint.new(:call) { |call| made += 1 if call.method_id == :tensor && call.defined_class == Torch.singleton_class }
#   counter.enable { 3.times { normalize.call(Torch.zeros(3, 2, 2)) } }
#   made
# Upstream gives: 6

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
