# frozen_string_literal: true

require_relative "../canary"

module Hymenoptera
  class NumThreadsCanaryTest < CanaryTest
    canary "torch/num_threads.rb", now_does: "set and get LibTorch's thread count (Torch.set_num_threads, Torch.get_num_threads)"
  end
end
