# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  # The canary of torchvision/utils/image_file.rb (its header states what torchvision-ruby does, and how to show it).
  class ImageFileCanaryTest < Minitest::Test
    include TestSupport
    include Canary

    FIX = "torchvision/utils/image_file.rb"

    def test_upstream_still_differs
      assert_upstream_still_differs(FIX, "save non-square images the right way round") { |scope| FileUtils.rm_rf(File.dirname(scope.local_variable_get(:path))) }
    end

    def test_the_fix_gives_what_python_gives
      assert_fix_gives_what_python_gives(FIX, reproduce_with_the_fix)
    end

    private

    # The reproduction, with the fix.
    def reproduce_with_the_fix
      path = File.join(tmpdir, "grid.png")
      ImageFile.write_png(Torch.zeros(3, 2, 5), path)
      Vips::Image.new_from_file(path).width
    end
  end
end
