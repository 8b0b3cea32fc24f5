# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  # The canary of torchvision/transforms/random_horizontal_flip.rb (its header states what torchvision-ruby does, and how to show it).
  class RandomHorizontalFlipCanaryTest < Minitest::Test
    include TestSupport
    include Canary

    FIX = "torchvision/transforms/random_horizontal_flip.rb"

    def test_upstream_still_differs
      assert_upstream_still_differs(FIX, "compare the draw with p in float32")
    end

    def test_the_fix_gives_what_python_gives
      assert_fix_gives_what_python_gives(FIX, reproduce_with_the_fix)
    end

    private

    # The reproduction, with the fix.
    def reproduce_with_the_fix
      Torch.manual_seed(0)
      p = Torch.rand(1).item + 1e-12
      Torch.manual_seed(0)
      Transforms::RandomHorizontalFlip.new(p: p).call(Torch.tensor([[[0], [1]]], dtype: :uint8))[0, 0, 0].item
    end
  end
end
