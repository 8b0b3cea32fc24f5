# frozen_string_literal: true

# Part of: torch/tensor_memory.rb

require "torchvision"
require_relative "../../torch/tensor_memory"

module PytorchParity
  # transforms.Compose that also frees each intermediate result once the next transform has made its
  # own (TensorMemory.free_intermediate), as Python frees it when its last reference goes: left to Ruby's GC,
  # the four intermediates of a train image (about 1.5 MB) stayed allocated, and every image was made
  # in fresh memory (bench/README.md). The first input is the caller's and stays.
  module ComposeFreesIntermediates
    def forward(img)
      @transforms.reduce(img) { |input, transform| TensorMemory.free_intermediate(input, transform.call(input), img) }
    end
  end
end

TorchVision::Transforms::Compose.prepend(PytorchParity::ComposeFreesIntermediates)
