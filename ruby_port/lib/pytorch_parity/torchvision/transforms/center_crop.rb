# frozen_string_literal: true

# Fix: torchvision-ruby 0.3.0, TorchVision::Transforms::CenterCrop (lib/torchvision/transforms/center_crop.rb)
# Bug: it rounds the offset (W - w) / 2.0 half up, where Python's round() goes to even, and calls a
#   pad it does not have for an image smaller than the crop
# Reproduction:
#   columns = (Vips::Image.xyz(341, 224)[0] % 256).cast(:uchar)
#   TorchVision::Transforms::CenterCrop.new(224).call(columns).getpoint(0, 0)[0].to_i
# Upstream gives: 59
# Python gives: 58
# In Python: np.asarray(transforms.CenterCrop(224)(Image.fromarray((np.tile(np.arange(341), (224, 1)) % 256).astype(np.uint8))))[0, 0]

require_relative "functional"

module PytorchParity
  # transforms.CenterCrop(size) as torchvision 0.14 does it: offsets int(round((H - h) / 2.0)), which
  # Python rounds half to even (a 341-pixel-wide image cropped to 224 starts at 58), and an image
  # smaller than the crop padded with black.
  module CenterCropAsTorchvision
    def forward(img)
      return super unless Functional.image?(img)

      size = @size.is_a?(Integer) ? [@size, @size] : @size
      Functional.on_pixels(img) { |pixels| Functional.center_crop(pixels, size) }
    end
  end
end

TorchVision::Transforms::CenterCrop.prepend(PytorchParity::CenterCropAsTorchvision)
