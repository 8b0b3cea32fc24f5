# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  # The canary of torch/nn/batch_norm2d.rb (its header states what torch.rb does, and how to show it).
  class BatchNorm2dCanaryTest < Minitest::Test
    include TestSupport
    include Canary

    FIX = "torch/nn/batch_norm2d.rb"

    def test_upstream_still_differs
      assert_upstream_still_differs(FIX, "count num_batches_tracked in training mode")
    end

    def test_the_fix_gives_what_python_gives
      assert_fix_gives_what_python_gives(FIX, reproduce_with_the_fix)
    end

    private

    # The reproduction, with the fix.
    def reproduce_with_the_fix
      bn = BatchNorm2d.new(1)
      bn.call(Torch.ones(2, 1, 1, 1))
      bn.num_batches_tracked.item
    end
  end
end
