# frozen_string_literal: true

require_relative "../../../canary"

module Hymenoptera
  class DataLoaderWorkersCanaryTest < CanaryTest
    canary "torch/utils/data/data_loader_workers.rb", now_does: "load batches in worker processes (num_workers) seeded as PyTorch's"
  end
end
