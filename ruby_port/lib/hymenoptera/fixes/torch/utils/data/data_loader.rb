# frozen_string_literal: true

# Fix: torch.rb 0.12, Torch::Utils::Data::DataLoader (lib/torch/utils/data/data_loader.rb)
# Bug: it takes no sampler or generator and shuffles with one permutation of the global generator,
#   where PyTorch 1.13's RandomSampler seeds a generator of its own from the global one (and draws
#   a second, trimmed permutation each pass)
# Reproduction:
#   Torch.manual_seed(0)
#   loader = Torch::Utils::Data::DataLoader.new((0...6).map { |i| [i, i] }, batch_size: 6, shuffle: true)
#   loader.first[0].to_a
# Upstream gives: [5, 1, 0, 3, 2, 4]
# Python gives: [0, 4, 3, 5, 2, 1]
# In Python: torch.manual_seed(0); next(iter(DataLoader(list(range(6)), batch_size=6, shuffle=True))).tolist()

module Hymenoptera
  # torch.utils.data.DataLoader(dataset, batch_size:, sampler:, num_workers: 0) as PyTorch 1.13
  # draws its random numbers, so that a seed gives Python's order and Python's crops: each pass first
  # draws a base seed from the loader's generator (the global one when nil), then takes the sampler's
  # order. torch.rb's DataLoader takes no sampler or generator and shuffles with the global generator.
  # Once stacked, the samples are freed if the dataset says they are fresh (fresh_samples?: only the
  # loader holds them), as Python drops them (torch/tensor_memory.rb).
  class DataLoader
    include Enumerable

    attr_reader :dataset, :batch_size, :sampler

    def initialize(dataset, batch_size: 1, sampler: nil, generator: nil)
      @dataset = dataset
      @batch_size = batch_size
      @sampler = sampler || (0...dataset.size)
      @generator = generator
    end

    # Yields [inputs, labels]: the samples' tensors stacked, the labels as int64.
    def each
      return to_enum(:each) unless block_given?

      _base_seed = RandomSampler.draw_int64(@generator)
      @sampler.each_slice(@batch_size) do |indices|
        samples = indices.map { |index| @dataset[index] }
        images = samples.map(&:first)
        inputs = Torch.stack(images, 0)
        TensorMemory.free(*images) if fresh_samples?
        yield inputs, Torch.tensor(samples.map(&:last), dtype: :int64)
      end
    end

    def fresh_samples?
      @dataset.respond_to?(:fresh_samples?) && @dataset.fresh_samples?
    end

    def size
      (@dataset.size / @batch_size.to_f).ceil
    end
    alias_method :length, :size
  end
end
