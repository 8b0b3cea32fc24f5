# frozen_string_literal: true

require_relative "../canary"

module Hymenoptera
  class TensorMemoryCanaryTest < CanaryTest
    canary "torch/tensor_memory.rb", now_does: "tell Ruby's GC of a tensor's memory (the allocator in ruby_port/ext/pytorch_parity may go)"

    # What the fix does: tensors nobody holds are collected in a loop that calls no GC, 200 MiB of
    # them made one MiB at a time, with no more than a few GCs' worth alive at once.
    def test_a_loop_of_tensor_operations_frees_what_it_drops
      accounting = PytorchParity::TensorMemoryAccounting
      tensor = Torch.zeros(1 << 18)
      before = accounting.counted_bytes
      most = 0
      200.times do
        tensor = tensor.add(1)
        most = [most, accounting.counted_bytes - before].max
      end
      assert_equal 200.0, tensor[0].item
      assert_operator most, :<, 80 << 20, "tensors dropped in the loop were not collected"
    end
  end
end
