# frozen_string_literal: true

require_relative "../../../canary"

module Hymenoptera
  # The canary of torch/utils/data/data_loader.rb (its header states what torch.rb does, and how to show it).
  class DataLoaderCanaryTest < Minitest::Test
    include TestSupport
    include Canary

    FIX = "torch/utils/data/data_loader.rb"

    def test_upstream_still_differs
      assert_upstream_still_differs(FIX, "shuffle as PyTorch 1.13's RandomSampler, with a sampler and generator")
    end

    def test_the_fix_gives_what_python_gives
      assert_fix_gives_what_python_gives(FIX, reproduce_with_the_fix)
    end

    private

    # The reproduction, with the fix.
    def reproduce_with_the_fix
      Torch.manual_seed(0)
      samples = (0...6).map { |i| [Torch.tensor(i), i] }
      DataLoader.new(samples, batch_size: 6, sampler: RandomSampler.new(samples.size)).first[1].to_a
    end
  end
end
