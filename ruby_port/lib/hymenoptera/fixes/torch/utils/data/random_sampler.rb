# frozen_string_literal: true

# Part of: torch/utils/data/data_loader.rb

module Hymenoptera
  # torch.utils.data.RandomSampler (PyTorch 1.13), which torch.rb lacks. Its random numbers are
  # PyTorch's: the order is
  # torch.randperm(n, generator: generator), and then a second permutation is drawn and cut to
  # n % n = 0 elements (RandomSampler yields `randperm(n)[:num_samples % n]` after the whole ones),
  # so every pass advances the generator by two permutations. Without a generator both come from a
  # fresh generator seeded by one draw of the global one.
  class RandomSampler
    include Enumerable

    def initialize(size, generator: nil)
      @size = size
      @generator = generator
    end

    def each(&block)
      generator = @generator || Torch::Generator.new.manual_seed(RandomSampler.draw_int64)
      order = Torch.randperm(@size, generator: generator).to_a
      Torch.randperm(@size, generator: generator) # the empty tail: [:num_samples % n]
      order.each(&block)
    end

    # torch.empty((), dtype=torch.int64).random_(generator=generator).item()
    def self.draw_int64(generator = nil)
      tensor = Torch.empty([], dtype: :int64)
      (generator ? tensor._random!(generator: generator) : tensor._random!).item
    end
  end
end
