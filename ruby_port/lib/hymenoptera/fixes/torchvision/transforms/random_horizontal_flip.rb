# frozen_string_literal: true

module Hymenoptera
  module Transforms
    # transforms.RandomHorizontalFlip(p): flips when torch.rand(1) < p, compared by LibTorch in float32
    # as in Python (torch.rb's Tensor#< and torchvision-ruby compare the draw's item with p in double
    # precision, which differs for a p that float32 rounds down).
    class RandomHorizontalFlip < Torch::NN::Module
      def initialize(p: 0.5)
        super()
        @p = p
      end

      def forward(img)
        Torch.rand(1).lt(@p).item ? F.hflip(img) : img
      end
    end
  end
end
