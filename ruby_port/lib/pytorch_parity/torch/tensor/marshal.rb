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

module PytorchParity
  # Marshal for CPU tensors, as copy.deepcopy and pickle copy them: dtype, shape, bytes and
  # requires_grad; a Parameter comes back a Parameter.
  module TensorMarshal
    def _dump(_level)
      raise TypeError, "can't dump a #{device} tensor; move it to the CPU first" unless device.to_s == "cpu"

      Marshal.dump([dtype, shape, contiguous._data_str, requires_grad])
    end

    module Load
      def _load(data)
        dtype, shape, bytes, requires_grad = Marshal.load(data)
        tensor = Torch.empty(shape, dtype: dtype)
        FFI::Pointer.new(:uint8, tensor._data_ptr).put_bytes(0, bytes) unless bytes.empty?
        self <= Torch::NN::Parameter ? new(tensor, requires_grad: requires_grad) : tensor.requires_grad!(requires_grad)
      end
    end
  end
end

Torch::Tensor.prepend(PytorchParity::TensorMarshal)
Torch::Tensor.singleton_class.prepend(PytorchParity::TensorMarshal::Load)
