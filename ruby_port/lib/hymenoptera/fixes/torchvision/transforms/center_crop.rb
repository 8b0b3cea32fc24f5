# frozen_string_literal: true

module Hymenoptera
  module Transforms
    # transforms.CenterCrop(size) as torchvision 0.14 does it: offsets int(round((H - h) / 2.0)), which
    # Python rounds half to even (torchvision-ruby 0.3.0 rounds halves up: a 341-pixel-wide image
    # cropped to 224 starts at 58 in Python, 59 there), and an image smaller than the crop padded with
    # black (torchvision-ruby calls a pad it does not have).
    class CenterCrop < Torch::NN::Module
      def initialize(size)
        super()
        @size = size.is_a?(Integer) ? [size, size] : size
      end

      def forward(img)
        F.center_crop(img, @size)
      end
    end
  end
end
