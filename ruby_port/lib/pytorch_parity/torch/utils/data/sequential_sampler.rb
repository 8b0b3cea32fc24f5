# frozen_string_literal: true

# Part of: torch/utils/data/data_loader.rb

require_relative "../../../bundle"
require "torch"

module Torch
  module Utils
    module Data
      # torch.utils.data.SequentialSampler (PyTorch 1.13), which torch.rb lacks: the indices 0 to
      # size - 1, the DataLoader's sampler when it does not shuffle.
      class SequentialSampler
        include Enumerable

        attr_reader :data_source

        def initialize(data_source)
          @data_source = data_source
        end

        def each(&block)
          return to_enum(:each) { size } unless block

          @data_source.size.times(&block)
          self
        end

        def size
          @data_source.size
        end
        alias_method :length, :size
      end
    end
  end
end
