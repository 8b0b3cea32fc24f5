# frozen_string_literal: true

require_relative "../canary"

module Hymenoptera
  class RandintCanaryTest < CanaryTest
    canary "torch/randint.rb", now_does: "make int64 tensors by default"

    # The same draws as with an explicit int64: only the default dtype changes.
    def test_the_values_are_those_of_an_explicit_int64
      Torch.manual_seed(0)
      explicit = Torch.randint(0, 10, [5], dtype: :int64).to_a
      Torch.manual_seed(0)
      assert_equal explicit, Torch.randint(0, 10, [5]).to_a
      assert_equal :float32, Torch.randint(0, 10, [2], dtype: :float32).dtype
    end
  end
end
