# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  # The canary of torchvision/transforms/random_resized_crop.rb (its header states what torchvision-ruby does, and how to show it).
  class RandomResizedCropCanaryTest < Minitest::Test
    include TestSupport
    include Canary

    FIX = "torchvision/transforms/random_resized_crop.rb"

    def test_upstream_still_differs
      assert_upstream_still_differs(FIX, "round the crop's sides half to even")
    end

    def test_the_fix_gives_what_python_gives
      assert_fix_gives_what_python_gives(FIX, reproduce_with_the_fix)
    end

    private

    # The reproduction, with the fix.
    def reproduce_with_the_fix
      Transforms::RandomResizedCrop.get_params(Torch.zeros(10, 2, 3, dtype: :uint8), [2.0, 2.0], [0.8, 1.25])
    end
  end
end
