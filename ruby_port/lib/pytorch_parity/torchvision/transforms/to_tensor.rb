# frozen_string_literal: true

# Fix: torchvision-ruby 0.3.0, TorchVision::Transforms::ToTensor (lib/torchvision/transforms/to_tensor.rb)
# Bug: it takes libvips images and Numo arrays, not images as uint8 tensors [H, W, C] (the layout of
#   np.asarray(pil_image), which torchvision's ToTensor takes, and what ImageFolder's loader gives here)
# Reproduction:
#   TorchVision::Transforms::ToTensor.new.call(Torch.zeros(2, 3, 3, dtype: :uint8)).shape
# Upstream gives: raises ArgumentError
# Python gives: [3, 2, 3]
# In Python: list(transforms.ToTensor()(np.zeros((2, 3, 3), dtype=np.uint8)).shape)

require_relative "functional"

module PytorchParity
  # transforms.ToTensor for an 8-bit image: float32 [C, H, W] in [0, 1], as torchvision computes it.
  module ToTensorAsTorchvision
    def forward(pic)
      return super unless Functional.image?(pic)

      Functional.to_tensor(pic.is_a?(Torch::Tensor) ? pic : Image::VipsTensor.pixels(pic))
    end
  end
end

TorchVision::Transforms::ToTensor.prepend(PytorchParity::ToTensorAsTorchvision)
