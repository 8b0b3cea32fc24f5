# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class BatchNorm2dCanaryTest < CanaryTest
    canary "torch/nn/batch_norm2d.rb", now_does: "count num_batches_tracked in training mode"
  end
end
