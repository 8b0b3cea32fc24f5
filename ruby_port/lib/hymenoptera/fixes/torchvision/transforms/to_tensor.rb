# frozen_string_literal: true

module Hymenoptera
  module Transforms
    # transforms.ToTensor for the port's images (uint8 [H, W, C]): float32 [C, H, W] in [0, 1].
    # torchvision-ruby's takes libvips images.
    class ToTensor < Torch::NN::Module
      def forward(pic)
        F.to_tensor(pic)
      end
    end
  end
end
