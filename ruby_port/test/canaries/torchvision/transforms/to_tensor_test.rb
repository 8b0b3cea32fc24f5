# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class ToTensorCanaryTest < CanaryTest
    canary "torchvision/transforms/to_tensor.rb", now_does: "take uint8 tensors [H, W, C]" do
      Transforms::ToTensor.new.call(Torch.zeros(2, 3, 3, dtype: :uint8)).shape
    end
  end
end
