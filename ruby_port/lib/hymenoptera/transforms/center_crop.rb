# frozen_string_literal: true

module Hymenoptera
  module Transforms
    # transforms.CenterCrop(size) with torchvision's offsets: int(round((H - h) / 2.0)) rounds halves
    # to even in Python, while torchvision-ruby 0.3.0 rounds them up, one pixel off whenever the
    # difference is 1 mod 4 (a 341-pixel-wide image cropped to 224 starts at 58 in Python, 59 in
    # Ruby); and an image smaller than the crop is padded with black as torchvision does
    # (torchvision-ruby calls a pad it does not have). The crop itself is torchvision-ruby's F.crop.
    class CenterCrop < Torch::NN::Module
      def self.offsets(width, height, crop_height, crop_width)
        [((height - crop_height) / 2.0).round(half: :even), ((width - crop_width) / 2.0).round(half: :even)]
      end

      def initialize(size)
        super()
        @size = size.is_a?(Integer) ? [size, size] : size
      end

      def forward(img)
        crop_height, crop_width = @size
        img = pad(img, crop_width, crop_height) if crop_width > img.width || crop_height > img.height
        top, left = CenterCrop.offsets(img.width, img.height, crop_height, crop_width)
        TorchVision::Transforms::F.crop(img, top, left, crop_height, crop_width)
      end

      private

      # Black borders: (crop - size) / 2 before, the rest after, in each too-small direction.
      def pad(img, crop_width, crop_height)
        left = [crop_width - img.width, 0].max / 2
        top = [crop_height - img.height, 0].max / 2
        img.embed(left, top, [crop_width, img.width].max, [crop_height, img.height].max, extend: :black)
      end
    end
  end
end
