# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  # The canary of torch/nn/state_dict.rb (its header states what torch.rb does, and how to show it).
  class StateDictCanaryTest < Minitest::Test
    include TestSupport
    include Canary

    FIX = "torch/nn/state_dict.rb"

    def test_upstream_still_differs
      assert_upstream_still_differs(FIX, "copy tensors with Marshal, Ruby's deep copy (use it for the best weights)")
    end

    def test_the_fix_gives_what_python_gives
      assert_fix_gives_what_python_gives(FIX, reproduce_with_the_fix)
    end

    private

    # The reproduction, with the fix.
    def reproduce_with_the_fix
      model = Torch::NN::Linear.new(1, 1)
      best = StateDict.copy(model)
      Torch.no_grad { model.weight.add!(1) }
      (model.weight - best["weight"]).sum.item
    end
  end
end
