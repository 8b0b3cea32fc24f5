# frozen_string_literal: true

require_relative "../../../canary"

module Hymenoptera
  class DataLoaderCanaryTest < CanaryTest
    canary "torch/utils/data/data_loader.rb", now_does: "shuffle as PyTorch 1.13's DataLoader, with its samplers and generator"
  end
end
