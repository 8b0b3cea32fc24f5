# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class ResizeCanaryTest < CanaryTest
    canary "torchvision/transforms/resize.rb", now_does: "make the short side the size, as torchvision"
  end
end
