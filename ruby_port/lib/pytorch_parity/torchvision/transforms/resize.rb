# frozen_string_literal: true

# Fix: torchvision-ruby 0.3.0, TorchVision::Transforms::Resize (lib/torchvision/transforms/resize.rb)
# Bug: it fits the image inside a box with libvips' thumbnail, which makes the short side 255
#   instead of 256 for many aspect ratios (torchvision: the short side is size, the long one
#   int(size * long / short))
# Reproduction:
#   TorchVision::Transforms::Resize.new(256).call(Vips::Image.black(257, 300)).width
# Upstream gives: 255
# Python gives: 256
# In Python: transforms.Resize(256)(Image.new("L", (257, 300))).size[0]

require_relative "functional"

module PytorchParity
  # transforms.Resize(size) with bilinear interpolation, as torchvision 0.14 does it to a PIL image:
  # an Integer size is the shorter side, the longer becomes int(size * long / short), and Pillow's
  # bilinear filter resamples (Image::Resample, bit for bit).
  module ResizeAsTorchvision
    def forward(img)
      return super unless Functional.image?(img)

      Functional.on_pixels(img) { |pixels| Functional.resize(pixels, @size) }
    end
  end
end

TorchVision::Transforms::Resize.prepend(PytorchParity::ResizeAsTorchvision)
