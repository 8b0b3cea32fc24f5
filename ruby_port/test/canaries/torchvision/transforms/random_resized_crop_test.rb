# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class RandomResizedCropCanaryTest < CanaryTest
    canary "torchvision/transforms/random_resized_crop.rb", now_does: "round the crop's sides half to even"
  end
end
