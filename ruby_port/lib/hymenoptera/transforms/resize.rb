# frozen_string_literal: true

module Hymenoptera
  module Transforms
    # transforms.Resize(int): the shorter side to size, the longer to int(size * long / short), as
    # torchvision computes it. torchvision-ruby 0.3.0's Resize asks libvips' thumbnail to fit the image
    # inside that box, which comes out one pixel short (255 instead of 256) for many aspect ratios;
    # here the exact output size is passed to torchvision-ruby's own F.resize (same libvips filter).
    class Resize < Torch::NN::Module
      def self.output_size(width, height, size)
        short, long = [width, height].minmax
        new_long = size * long / short
        width <= height ? [size, new_long] : [new_long, size]
      end

      def initialize(size)
        super()
        @size = size
      end

      def forward(img)
        width, height = img.size
        return img if [width, height].min == @size

        TorchVision::Transforms::F.resize(img, Resize.output_size(width, height, @size))
      end
    end
  end
end
