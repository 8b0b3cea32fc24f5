# frozen_string_literal: true

# Fix: torchvision-ruby 0.3.0, TorchVision::Transforms::RandomHorizontalFlip (lib/torchvision/transforms/random_horizontal_flip.rb)
# Bug: it compares the float32 draw with p in double precision, where PyTorch compares in float32:
#   they disagree for a p that float32 rounds down onto the draw
# Reproduction:
#   Torch.manual_seed(0)
#   p = Torch.rand(1).item + 1e-12
#   Torch.manual_seed(0)
#   TorchVision::Transforms::RandomHorizontalFlip.new(p: p).call(Vips::Image.new_from_array([[0, 1]])).getpoint(0, 0)[0].to_i
# Upstream gives: 1
# Python gives: 0
# In Python: torch.manual_seed(0); p = torch.rand(1).item() + 1e-12; torch.manual_seed(0); np.asarray(transforms.RandomHorizontalFlip(p=p)(Image.fromarray(np.array([[0, 1]], dtype=np.uint8))))[0, 0]

require_relative "../../torch/tensor_item"
require_relative "functional"

module PytorchParity
  # transforms.RandomHorizontalFlip(p): flips when torch.rand(1) < p, compared by LibTorch in float32
  # as in Python (the draw read from memory: torch.rb's item costs about 10 us, torch/tensor_item.rb).
  module RandomHorizontalFlipInFloat32
    def forward(img)
      TensorItem.item(Torch.rand(1).lt(@p)) ? TorchVision::Transforms::F.hflip(img) : img
    end
  end
end

TorchVision::Transforms::RandomHorizontalFlip.prepend(PytorchParity::RandomHorizontalFlipInFloat32)
