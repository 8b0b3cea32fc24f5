# frozen_string_literal: true

# Fix: torchvision-ruby 0.3.0, TorchVision::Transforms::Resize (lib/torchvision/transforms/resize.rb)
# Bug: it fits the image inside a box with libvips' thumbnail, which makes the short side 255
#   instead of 256 for many aspect ratios (torchvision: the short side is size, the long one
#   int(size * long / short))
# Reproduction:
#   TorchVision::Transforms::Resize.new(256).call(Vips::Image.black(257, 300)).width
# Upstream gives: 255
# Python gives: 256
# In Python: transforms.Resize(256)(Image.new("RGB", (257, 300))).size[0]

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
