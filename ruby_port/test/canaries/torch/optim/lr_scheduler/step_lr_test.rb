# frozen_string_literal: true

require_relative "../../../canary"

module Hymenoptera
  # The canary of torch/optim/lr_scheduler/step_lr.rb (its header states what torch.rb does, and how to show it).
  class StepLRCanaryTest < Minitest::Test
    include TestSupport
    include Canary

    FIX = "torch/optim/lr_scheduler/step_lr.rb"

    def test_upstream_still_differs
      assert_upstream_still_differs(FIX, "multiply the current rate by gamma every step_size epochs, as PyTorch 1.13")
    end

    def test_the_fix_gives_what_python_gives
      assert_fix_gives_what_python_gives(FIX, reproduce_with_the_fix)
    end

    private

    # The reproduction, with the fix.
    def reproduce_with_the_fix
      optimizer = Torch::Optim::SGD.new([Torch.zeros(1, requires_grad: true)], lr: 0.001)
      scheduler = StepLR.new(optimizer, step_size: 7)
      14.times { scheduler.step }
      optimizer.param_groups[0][:lr]
    end
  end
end
