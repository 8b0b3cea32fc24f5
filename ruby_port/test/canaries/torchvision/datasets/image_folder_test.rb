# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  # The canary of torchvision/datasets/image_folder.rb (its header states what torchvision-ruby does, and how to show it).
  class ImageFolderCanaryTest < Minitest::Test
    include TestSupport
    include Canary

    FIX = "torchvision/datasets/image_folder.rb"

    def test_upstream_still_differs
      assert_upstream_still_differs(FIX, "take a loader: and load RGB as PIL") { |scope| FileUtils.rm_rf(scope.local_variable_get(:root)) }
    end

    def test_the_fix_gives_what_python_gives
      assert_fix_gives_what_python_gives(FIX, reproduce_with_the_fix)
    end

    private

    # The reproduction, with the fix.
    def reproduce_with_the_fix
      root = write_gray_png_folder
      ImageFolder.new(root)[0][0].shape[2]
    end

    # A class folder holding one 2x2 grayscale PNG.
    def write_gray_png_folder
      Dir.mkdir(File.join(tmpdir, "ants"))
      Vips::Image.black(2, 2).write_to_file(File.join(tmpdir, "ants", "gray.png"))
      tmpdir
    end
  end
end
