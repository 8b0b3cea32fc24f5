# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class CenterCropCanaryTest < CanaryTest
    canary "torchvision/transforms/center_crop.rb", now_does: "round the crop's offset half to even"
  end
end
