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

require_relative "functional"

module PytorchParity
  # transforms.Normalize(mean, std): (tensor - mean) / std per channel, in the tensor's dtype, with
  # mean and std made tensors once per dtype.
  module NormalizeOnce
    def forward(tensor)
      return super if @inplace || !Torch.tensor?(tensor)

      @normalization_tensors ||= {}
      mean, std = @normalization_tensors[tensor.dtype] ||= Functional.normalization_tensors(@mean, @std, tensor.dtype)
      Functional.normalize(tensor, mean, std)
    end
  end
end

TorchVision::Transforms::Normalize.prepend(PytorchParity::NormalizeOnce)
