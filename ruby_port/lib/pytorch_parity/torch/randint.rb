# frozen_string_literal: true

# Fix: torch.rb 0.12, Torch.randint (lib/torch.rb)
# Bug: without a dtype it makes float32 tensors, where PyTorch's torch.randint makes int64 (a port's
#   labels or indices drawn with it are then floats, which CrossEntropyLoss and indexing refuse)
# Reproduction:
#   Torch.randint(0, 10, [3]).dtype.to_s
# Upstream gives: "float32"
# Python gives: "int64"
# In Python: str(torch.randint(0, 10, (3,)).dtype).split(".")[1]

require_relative "../bundle"
require "torch"

module PytorchParity
  # Torch.randint with PyTorch's default dtype, int64; a dtype given (or an out: tensor) is kept.
  module RandintInt64
    def randint(*args, **options)
      options = {dtype: :int64}.merge(options) unless options.key?(:dtype) || options.key?(:out)
      super(*args, **options)
    end
  end
end

Torch.singleton_class.prepend(PytorchParity::RandintInt64)
