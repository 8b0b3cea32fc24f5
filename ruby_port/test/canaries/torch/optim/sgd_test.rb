# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  # The canary of torch/optim/sgd.rb (its header states what torch.rb does, and how to show it).
  class SGDCanaryTest < Minitest::Test
    include TestSupport
    include Canary

    FIX = "torch/optim/sgd.rb"

    def test_upstream_still_differs
      assert_upstream_still_differs(FIX, "read an optimizer's state")
    end

    def test_the_fix_gives_what_python_gives
      assert_fix_gives_what_python_gives(FIX, reproduce_with_the_fix)
    end

    private

    # The reproduction, with the fix.
    def reproduce_with_the_fix
      SGD.new([Torch.zeros(1, requires_grad: true)], lr: 0.1).respond_to?(:state)
    end
  end
end
