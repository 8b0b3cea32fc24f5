# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  # The canary of torchvision/transforms/resize.rb (its header states what torchvision-ruby does, and how to show it).
  class ResizeCanaryTest < Minitest::Test
    include TestSupport
    include Canary

    FIX = "torchvision/transforms/resize.rb"

    def test_upstream_still_differs
      assert_upstream_still_differs(FIX, "make the short side the size, as torchvision")
    end

    def test_the_fix_gives_what_python_gives
      assert_fix_gives_what_python_gives(FIX, reproduce_with_the_fix)
    end

    private

    # The reproduction, with the fix.
    def reproduce_with_the_fix
      Transforms::Resize.new(256).call(Torch.zeros(300, 257, 3, dtype: :uint8)).shape[1]
    end
  end
end
