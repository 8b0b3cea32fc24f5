# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class ImageFolderCanaryTest < CanaryTest
    canary "torchvision/datasets/image_folder.rb", now_does: "take a loader: and load RGB as PIL", tidy: :root do
      root = write_gray_png_folder
      ImageFolder.new(root)[0][0].shape[2]
    end

    private

    # A class folder holding one 2x2 grayscale PNG.
    def write_gray_png_folder
      Dir.mkdir(File.join(tmpdir, "ants"))
      Vips::Image.black(2, 2).write_to_file(File.join(tmpdir, "ants", "gray.png"))
      tmpdir
    end
  end
end
