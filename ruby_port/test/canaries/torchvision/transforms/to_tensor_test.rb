# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  # The canary of torchvision/transforms/to_tensor.rb (its header states what torchvision-ruby does, and how to show it).
  class ToTensorCanaryTest < Minitest::Test
    include TestSupport
    include Canary

    FIX = "torchvision/transforms/to_tensor.rb"

    def test_upstream_still_differs
      assert_upstream_still_differs(FIX, "take uint8 tensors [H, W, C]")
    end

    def test_the_fix_gives_what_python_gives
      assert_fix_gives_what_python_gives(FIX, reproduce_with_the_fix)
    end

    private

    # The reproduction, with the fix.
    def reproduce_with_the_fix
      Transforms::ToTensor.new.call(Torch.zeros(2, 3, 3, dtype: :uint8)).shape
    end
  end
end
