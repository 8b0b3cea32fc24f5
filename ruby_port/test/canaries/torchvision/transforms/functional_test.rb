# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  # The canary of torchvision/transforms/functional.rb (its header states what torchvision-ruby does, and how to show it).
  class FunctionalCanaryTest < Minitest::Test
    include TestSupport
    include Canary

    FIX = "torchvision/transforms/functional.rb"

    def test_upstream_still_differs
      assert_upstream_still_differs(FIX, "resize with PIL's bilinear filter")
    end

    def test_the_fix_gives_what_python_gives
      assert_fix_gives_what_python_gives(FIX, reproduce_with_the_fix)
    end

    private

    # The reproduction, with the fix.
    def reproduce_with_the_fix
      columns = Torch.arange(0, 300, 60).to(:uint8).view(1, 5, 1).expand(5, 5, 1)
      Transforms::F.resize(columns, [3, 3])[0].flatten.to_a
    end
  end
end
