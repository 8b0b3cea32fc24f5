# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class ToTensorCanaryTest < CanaryTest
    canary "torchvision/transforms/to_tensor.rb", now_does: "take uint8 tensors [H, W, C]"
  end
end
