# frozen_string_literal: true

# Part of: torch/tensor_memory.rb

module Hymenoptera
  module Transforms
    # transforms.Compose: the transforms in turn, each on the one before's result. torchvision-ruby's
    # calls them the same way; this one also frees each intermediate result once the next transform
    # has made its own (TensorMemory.free_input), as Python frees it when its last reference goes:
    # left to Ruby's GC, the four intermediates of a train image (about 1.5 MB) stayed allocated, and
    # every image was made in fresh memory (bench/README.md). The first input is the caller's and stays.
    class Compose < Torch::NN::Module
      attr_reader :transforms

      def initialize(transforms)
        super()
        @transforms = transforms
      end

      def forward(img)
        @transforms.reduce(img) do |input, transform|
          transform.call(input).tap { |output| TensorMemory.free_input(input, output) unless input.equal?(img) }
        end
      end
    end
  end
end
