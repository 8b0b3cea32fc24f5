# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class FunctionalCanaryTest < CanaryTest
    canary "torchvision/transforms/functional.rb", now_does: "resize with PIL's bilinear filter"
  end
end
