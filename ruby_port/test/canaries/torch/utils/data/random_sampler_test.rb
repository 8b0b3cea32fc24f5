# frozen_string_literal: true

require_relative "../../../canary"

module Hymenoptera
  class RandomSamplerCanaryTest < CanaryTest
    canary "torch/utils/data/random_sampler.rb", now_does: "have a RandomSampler"
  end
end
