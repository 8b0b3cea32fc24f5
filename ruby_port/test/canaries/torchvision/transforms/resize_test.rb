# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class ResizeCanaryTest < CanaryTest
    canary "torchvision/transforms/resize.rb", now_does: "make the short side the size, as torchvision" do
      Transforms::Resize.new(256).call(Torch.zeros(300, 257, 3, dtype: :uint8)).shape[1]
    end
  end
end
