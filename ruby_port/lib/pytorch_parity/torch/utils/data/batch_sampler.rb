# frozen_string_literal: true

# Part of: torch/utils/data/data_loader.rb

require_relative "../../../bundle"
require "torch"

module Torch
  module Utils
    module Data
      # torch.utils.data.BatchSampler (PyTorch 1.13), which torch.rb lacks: the sampler's indices in
      # arrays of batch_size, the last one shorter unless drop_last. Like PyTorch's generator, it asks
      # the sampler for one index more than the last batch holds before it knows that it has ended
      # (a RandomSampler draws its trimmed permutation then).
      class BatchSampler
        include Enumerable

        attr_reader :sampler, :batch_size, :drop_last

        def initialize(sampler, batch_size, drop_last)
          unless batch_size.is_a?(Integer) && batch_size.positive?
            raise ArgumentError, "batch_size should be a positive integer value, but got batch_size=#{batch_size.inspect}"
          end
          unless [true, false].include?(drop_last)
            raise ArgumentError, "drop_last should be a boolean value, but got drop_last=#{drop_last.inspect}"
          end

          @sampler = sampler
          @batch_size = batch_size
          @drop_last = drop_last
        end

        def each
          return to_enum(:each) { size } unless block_given?

          batch = []
          @sampler.each do |index|
            batch << index
            next if batch.size < @batch_size

            yield batch
            batch = []
          end
          yield batch unless batch.empty? || @drop_last
          self
        end

        def size
          if @drop_last
            @sampler.size / @batch_size
          else
            (@sampler.size + @batch_size - 1) / @batch_size
          end
        end
        alias_method :length, :size
      end
    end
  end
end
