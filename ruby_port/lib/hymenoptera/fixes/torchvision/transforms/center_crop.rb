# frozen_string_literal: true

# Fix: torchvision-ruby 0.3.0, TorchVision::Transforms::CenterCrop (lib/torchvision/transforms/center_crop.rb)
# Bug: it rounds the offset (W - w) / 2.0 half up, where Python's round() goes to even, and calls a
#   pad it does not have for an image smaller than the crop
# Reproduction:
#   TorchVision::Transforms::CenterCrop.new(224).call(Vips::Image.xyz(341, 224)[0]).getpoint(0, 0)[0].to_i
# Upstream gives: 59
# Python gives: 58
# In Python: np.asarray(transforms.CenterCrop(224)(Image.fromarray(np.tile(np.arange(341, dtype=np.int32), (224, 1)), mode="I")))[0, 0]

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
