# frozen_string_literal: true

module Hymenoptera
  # torch.utils.data.RandomSampler (PyTorch 1.13) that remembers each pass's order, as
  # reference_py/data.py's RecordingSampler does: torch.randperm(n, generator: generator), or without
  # a generator, a fresh generator seeded from one draw of the global one.
  class RandomSampler
    include Enumerable

    attr_reader :orders

    def initialize(size, generator: nil)
      @size = size
      @generator = generator
      @orders = []
    end

    def each(&block)
      generator = @generator || Torch::Generator.new.manual_seed(RandomSampler.draw_int64)
      order = Torch.randperm(@size, generator: generator).to_a
      @orders << order
      order.each(&block)
    end

    # torch.empty((), dtype=torch.int64).random_(generator=generator).item()
    def self.draw_int64(generator = nil)
      tensor = Torch.empty([], dtype: :int64)
      (generator ? tensor._random!(generator: generator) : tensor._random!).item
    end
  end
end
