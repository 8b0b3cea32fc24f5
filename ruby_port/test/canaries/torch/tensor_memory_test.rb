# frozen_string_literal: true

require_relative "../canary"

module Hymenoptera
  class TensorMemoryCanaryTest < CanaryTest
    canary "torch/tensor_memory.rb", now_does: "tell Ruby's GC of a tensor's memory (the minor GC after each batch may go)"

    # What the fix does instead: a minor GC after each batch frees the batch's tensors.
    def test_release_frees_what_nobody_holds
      freed = false
      ObjectSpace.define_finalizer(Torch.empty(1 << 10), proc { freed = true })
      PytorchParity::TensorMemory.release
      assert freed, "TensorMemory.release did not collect a tensor nobody holds"
    end
  end
end
