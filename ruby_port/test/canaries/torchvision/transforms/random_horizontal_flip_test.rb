# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class RandomHorizontalFlipCanaryTest < CanaryTest
    canary "torchvision/transforms/random_horizontal_flip.rb", now_does: "compare the draw with p in float32" do
      Torch.manual_seed(0)
      p = Torch.rand(1).item + 1e-12
      Torch.manual_seed(0)
      Transforms::RandomHorizontalFlip.new(p: p).call(Torch.tensor([[[0], [1]]], dtype: :uint8))[0, 0, 0].item
    end
  end
end
