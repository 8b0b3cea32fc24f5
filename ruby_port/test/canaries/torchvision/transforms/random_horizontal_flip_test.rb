# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class RandomHorizontalFlipCanaryTest < CanaryTest
    canary "torchvision/transforms/random_horizontal_flip.rb", now_does: "compare the draw with p in float32"
  end
end
