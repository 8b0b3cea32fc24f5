# frozen_string_literal: true

# Fix: torch.rb 0.12, Torch::Utils::Data::RandomSampler (lib/torch/utils/data.rb)
# Bug: it has no RandomSampler, so a port cannot shuffle as PyTorch's does: with a generator of its
#   own seeded from one draw of the global one (or with a given generator), two permutations a pass
# Reproduction:
#   Torch.manual_seed(0)
#   Torch::Utils::Data::RandomSampler.new((0...6).to_a).to_a
# Upstream gives: raises NameError
# Python gives: [0, 1, 2, 3, 5, 4]
# In Python: torch.manual_seed(0); list(torch.utils.data.RandomSampler(range(6)))

require_relative "../../../bundle"
require "torch"

module Torch
  module Utils
    module Data
      # torch.utils.data.RandomSampler (PyTorch 1.13), its random numbers included. Each pass draws,
      # when its first index is asked for: without a generator, a seed from the global generator
      # (torch.empty((), dtype=torch.int64).random_()) for a fresh generator; then from that
      # generator (or the given one), without replacement, num_samples / n permutations of n and one
      # more cut to num_samples % n (so an ordinary pass draws two, the second cut to nothing);
      # with replacement, randint in blocks of 32 and one block of num_samples % 32.
      class RandomSampler
        include Enumerable

        attr_reader :data_source, :replacement, :generator

        def initialize(data_source, replacement: false, num_samples: nil, generator: nil)
          @data_source = data_source
          @replacement = replacement
          @num_samples = num_samples
          @generator = generator
          unless [true, false].include?(replacement)
            raise TypeError, "replacement should be a boolean value, but got replacement=#{replacement.inspect}"
          end
          unless self.num_samples.is_a?(Integer) && self.num_samples.positive?
            raise ArgumentError, "num_samples should be a positive integer value, but got num_samples=#{self.num_samples.inspect}"
          end
        end

        def num_samples
          @num_samples.nil? ? @data_source.size : @num_samples
        end

        def each(&block)
          return to_enum(:each) { size } unless block

          n = @data_source.size
          generator = @generator || Torch::Generator.new.manual_seed(PytorchParity.random_int64)
          if @replacement
            (num_samples / 32).times { Torch.randint(n, [32], dtype: :int64, generator: generator).to_a.each(&block) }
            Torch.randint(n, [num_samples % 32], dtype: :int64, generator: generator).to_a.each(&block)
          else
            (num_samples / n).times { Torch.randperm(n, generator: generator).to_a.each(&block) }
            Torch.randperm(n, generator: generator).to_a.first(num_samples % n).each(&block)
          end
          self
        end

        def size
          num_samples
        end
        alias_method :length, :size
      end
    end
  end
end

module PytorchParity
  # torch.empty((), dtype=torch.int64).random_(generator=generator).item(): one draw of the generator
  # (the global one when nil), as PyTorch seeds a RandomSampler and a DataLoader's workers.
  def self.random_int64(generator = nil)
    tensor = Torch.empty([], dtype: :int64)
    (generator ? tensor._random!(generator: generator) : tensor._random!).item
  end
end
