# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class TensorMarshalCanaryTest < CanaryTest
    canary "torch/tensor/marshal.rb", now_does: "copy tensors with Marshal, Ruby's deep copy"

    # Every dtype a state dict holds, a scalar, an empty tensor, a transposed view and a Parameter come
    # back with their dtype, shape, values, requires_grad and class.
    def test_a_deep_copy_is_equal_and_apart
      state = {"weight" => Torch::NN::Parameter.new(Torch.randn(3, 2)), "count" => Torch.tensor(7),
               "double" => Torch.randn(4, dtype: :float64), "mask" => Torch.tensor([true, false]),
               "empty" => Torch.empty(0, 3), "view" => Torch.arange(6, dtype: :int32).reshape(2, 3).t}
      copy = Marshal.load(Marshal.dump(state))
      state.each do |key, tensor|
        assert_equal [tensor.class, tensor.dtype, tensor.shape, tensor.requires_grad],
                     [copy[key].class, copy[key].dtype, copy[key].shape, copy[key].requires_grad], key
        assert Torch.equal(tensor.detach, copy[key].detach), key
      end
      Torch.no_grad { state["weight"].add!(1) }
      refute Torch.equal(state["weight"].detach, copy["weight"].detach), "the copy shares the tensor's memory"
    end

    # Each step copies a tensor's bytes once: _dump into its String, _load from that String into the
    # tensor (Ruby's malloc count, which pytorch_parity's allocator feeds with tensor memory too).
    def test_dump_and_load_copy_the_bytes_once_each
      tensor = Torch.ones(1 << 22)
      size = tensor.numel * tensor.element_size
      dump, dumped = counted { tensor._dump(0) }
      _, loaded = counted { Torch::Tensor._load(dump) }
      assert_operator dumped, :<, size * 1.5, "_dump allocated #{dumped.fdiv(size).round(2)} times the tensor's bytes"
      assert_operator loaded, :<, size * 1.5, "_load allocated #{loaded.fdiv(size).round(2)} times the tensor's bytes"
    end

    private

    def counted
      GC.disable
      before = GC.stat(:malloc_increase_bytes)
      result = yield
      [result, GC.stat(:malloc_increase_bytes) - before]
    ensure
      GC.enable
    end
  end
end
