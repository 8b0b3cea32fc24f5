# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class OptimizerCanaryTest < CanaryTest
    canary "torch/optim/optimizer.rb", now_does: "read an optimizer's state"
  end
end
