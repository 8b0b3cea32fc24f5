# frozen_string_literal: true

# Fix: torchvision-ruby 0.3.0, TorchVision::Transforms::ToTensor (lib/torchvision/transforms/to_tensor.rb)
# Bug: it takes libvips images and Numo arrays, not the port's images: uint8 tensors [H, W, C], the
#   layout of np.asarray(pil_image), which torchvision's takes
# Reproduction:
#   TorchVision::Transforms::ToTensor.new.call(Torch.zeros(2, 3, 3, dtype: :uint8)).shape
# Upstream gives: raises ArgumentError
# Python gives: [3, 2, 3]
# In Python: list(transforms.ToTensor()(np.zeros((2, 3, 3), dtype=np.uint8)).shape)

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
