# frozen_string_literal: true

require_relative "../../../canary"

module Hymenoptera
  class DataLoaderCanaryTest < CanaryTest
    canary "torch/utils/data/data_loader.rb", now_does: "shuffle as PyTorch 1.13's RandomSampler, with a sampler and generator" do
      Torch.manual_seed(0)
      samples = (0...6).map { |i| [Torch.tensor(i), i] }
      DataLoader.new(samples, batch_size: 6, sampler: RandomSampler.new(samples.size)).first[1].to_a
    end
  end
end
