# frozen_string_literal: true

# Fix: torch.rb 0.12, Torch::Tensor (lib/torch/tensor.rb)
# Bug: Ruby's deep copy, Marshal, refuses tensors, so the tutorial's copy.deepcopy(model.state_dict())
#   has no Ruby twin: a state dict's tensors are the live parameters, which the next step changes
# Reproduction:
#   model = Torch::NN::Linear.new(1, 1)
#   best = Marshal.load(Marshal.dump(model.state_dict))
#   Torch.no_grad { model.weight.add!(1) }
#   (model.weight - best["weight"]).sum.item
# Upstream gives: raises TypeError
# Python gives: 1.0
# In Python: model = torch.nn.Linear(1, 1); best = copy.deepcopy(model.state_dict()); model.weight.data.add_(1); (model.weight - best["weight"]).sum().item()

require "ffi"
require "torch"

require_relative "../tensor_memory"

module PytorchParity
  # Marshal for CPU tensors, as copy.deepcopy and pickle copy them: dtype, shape, bytes and
  # requires_grad; a Parameter comes back a Parameter. _dump gives one String: the tensor's bytes as
  # they are, then the rest, then that part's length. Each step copies the bytes once: the tensor's
  # memory into that String, the String into Marshal's stream on dump; the stream's String into the new
  # tensor on load (through _data_str and an inner Marshal.dump, they were copied twice more on dump
  # and once more on load).
  module TensorMarshal
    module LibC
      extend FFI::Library
      ffi_lib FFI::Library::LIBC
      attach_function :memcpy, %i[pointer pointer size_t], :pointer # a String for the first: its own bytes
    end

    def _dump(_level)
      raise TypeError, "can't dump a #{device} tensor; move it to the CPU first" unless device.to_s == "cpu"

      tensor = contiguous
      size = tensor.numel * tensor.element_size
      rest = Marshal.dump([dtype, shape, requires_grad])
      dump = "\0".b * (size + rest.bytesize + 4)
      LibC.memcpy(dump, FFI::Pointer.new(:uint8, tensor._data_ptr), size) unless size.zero?
      dump[size..] = rest + [rest.bytesize].pack("N")
      dump
    end

    module Load
      def _load(data)
        rest_size = data.byteslice(-4, 4).unpack1("N")
        dtype, shape, requires_grad = Marshal.load(data.byteslice(-4 - rest_size, rest_size))
        # Marshal.load(Marshal.dump(...)) is torch.rb's deep copy, made to be kept (the tutorial's best weights)
        tensor = TensorMemory.in_own_mappings { Torch.empty(shape, dtype: dtype) }
        size = tensor.numel * tensor.element_size
        raise ArgumentError, "marshal data of a tensor: #{data.bytesize} bytes where #{size + rest_size + 4} were expected" \
          unless data.bytesize == size + rest_size + 4

        FFI::Pointer.new(:uint8, tensor._data_ptr).put_bytes(0, data, 0, size) unless size.zero?
        self <= Torch::NN::Parameter ? new(tensor, requires_grad: requires_grad) : tensor.requires_grad!(requires_grad)
      end
    end
  end
end

Torch::Tensor.prepend(PytorchParity::TensorMarshal)
Torch::Tensor.singleton_class.prepend(PytorchParity::TensorMarshal::Load)
