# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  # The canary of torchvision/transforms/center_crop.rb (its header states what torchvision-ruby does, and how to show it).
  class CenterCropCanaryTest < Minitest::Test
    include TestSupport
    include Canary

    FIX = "torchvision/transforms/center_crop.rb"

    def test_upstream_still_differs
      assert_upstream_still_differs(FIX, "round the crop's offset half to even")
    end

    def test_the_fix_gives_what_python_gives
      assert_fix_gives_what_python_gives(FIX, reproduce_with_the_fix)
    end

    private

    # The reproduction, with the fix.
    def reproduce_with_the_fix
      columns = Torch.arange(341).view(1, 341, 1).expand(224, 341, 1)
      Transforms::CenterCrop.new(224).call(columns)[0, 0, 0].item
    end
  end
end
