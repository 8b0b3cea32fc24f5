# frozen_string_literal: true

require_relative "../canary"

module Hymenoptera
  # The canary of torch/tensor_memory.rb (its header states what torch.rb does, and how to show it).
  class TensorMemoryCanaryTest < Minitest::Test
    include TestSupport
    include Canary

    FIX = "torch/tensor_memory.rb"

    def test_upstream_still_differs
      assert_upstream_still_differs(FIX, "tell Ruby's GC of a tensor's memory (the minor GC after each batch may go)")
    end

    # What the fix does instead: a minor GC after each batch frees the batch's tensors.
    def test_release_frees_what_nobody_holds
      freed = false
      ObjectSpace.define_finalizer(Torch.empty(1 << 10), proc { freed = true })
      TensorMemory.release
      assert freed, "TensorMemory.release did not collect a tensor nobody holds"
    end
  end
end
