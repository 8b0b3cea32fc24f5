# frozen_string_literal: true

module Hymenoptera
  # torch.rb frees a tensor's LibTorch memory only when Ruby's GC collects the Ruby object holding
  # it, and Ruby's GC does not count that memory, so left alone it seldom runs: every batch's
  # activations stay allocated and the next batch pays page faults for fresh memory (bench/README.md
  # measures it). A minor GC after each batch costs 1 to 3 ms and keeps memory flat.
  module TensorMemory
    module_function

    def release
      GC.start(full_mark: false, immediate_sweep: true)
    end
  end
end
