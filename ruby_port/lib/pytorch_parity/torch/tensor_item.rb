# frozen_string_literal: true

# Part of: torchvision/transforms/functional.rb

require "ffi"
require "torch"

module PytorchParity
  # Tensor#item of a one-element CPU tensor, read straight from its memory. torch.rb's item goes
  # through to_a (a reshape, then an index and an item per element: about 10 us), and the train
  # transforms read about ten such numbers an image (RandomResizedCrop's draws, the flip's coin,
  # the resampling's tap count).
  module TensorItem
    READERS = {float32: :read_float, float64: :read_double, int64: :read_int64, int32: :read_int32,
               uint8: :read_uint8, bool: :read_uint8}.freeze

    module_function

    def item(tensor)
      reader = READERS[tensor.dtype]
      return tensor.item unless reader && tensor.numel == 1

      value = FFI::Pointer.new(:uint8, tensor._data_ptr).public_send(reader)
      tensor.dtype == :bool ? !value.zero? : value
    end
  end
end
