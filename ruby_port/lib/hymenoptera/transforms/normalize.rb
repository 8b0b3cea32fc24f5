# frozen_string_literal: true

module Hymenoptera
  module Transforms
    # transforms.Normalize(mean, std): (tensor - mean) / std per channel, in float32 as torchvision.
    class Normalize < Torch::NN::Module
      def initialize(mean, std)
        super()
        @mean = mean
        @std = std
      end

      def forward(tensor)
        F.normalize(tensor, @mean, @std)
      end
    end
  end
end
