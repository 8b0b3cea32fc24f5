# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class ImageFileCanaryTest < CanaryTest
    canary "torchvision/utils/image_file.rb", now_does: "save non-square images the right way round", tidy: :folder do
      path = File.join(tmpdir, "grid.png")
      ImageFile.write_png(Torch.zeros(3, 2, 5), path)
      Vips::Image.new_from_file(path).width
    end
  end
end
