# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class BatchNorm2dCanaryTest < CanaryTest
    canary "torch/nn/batch_norm2d.rb", now_does: "count num_batches_tracked in training mode" do
      bn = BatchNorm2d.new(1)
      bn.call(Torch.ones(2, 1, 1, 1))
      bn.num_batches_tracked.item
    end
  end
end
