# frozen_string_literal: true

module Hymenoptera
  module Transforms
    # transforms.Resize(size) with bilinear interpolation, as torchvision 0.14 does it to a PIL image:
    # an Integer size is the shorter side, the longer becomes int(size * long / short), and Pillow's
    # bilinear filter resamples (Resample, bit for bit). torchvision-ruby 0.3.0's Resize asks libvips'
    # thumbnail to fit the image inside that box (one pixel short for many aspect ratios) with
    # libvips' own filter.
    class Resize < Torch::NN::Module
      def initialize(size)
        super()
        @size = size
      end

      def forward(img)
        F.resize(img, @size)
      end
    end
  end
end
