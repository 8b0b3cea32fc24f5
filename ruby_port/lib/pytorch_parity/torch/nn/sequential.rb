# frozen_string_literal: true

# Part of: torchvision/models/resnet.rb

require "torch"
require_relative "intermediates"

module PytorchParity
  # Torch::NN::Sequential's forward freeing what passes between its modules once the next has used it
  # (Intermediates says when it may): a ResNet's layers, a VGG's features.
  module SequentialFreesIntermediates
    def modules_called
      @modules.values.compact
    end

    def forward(input)
      Intermediates.freeing(self, input) do |free|
        @modules.values.reduce(input) { |x, mod| free.(x, mod.call(x)) }
      end
    end
  end
end

Torch::NN::Sequential.prepend(PytorchParity::SequentialFreesIntermediates)
