# frozen_string_literal: true

# Part of: torch/utils/data/data_loader.rb

require_relative "../../../bundle"
require "torch"

module PytorchParity
  # torch.utils.data.default_collate and default_convert (PyTorch 1.13's _utils/collate.py), in Ruby's
  # types: Tensor, Numo::NArray (numpy's arrays), Float, Integer, true and false (Python's int and bool),
  # String and Symbol (str), Hash (Mapping), Struct (namedtuple), Array (Sequence and tuple).
  module Collate
    ERROR = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found %s"

    module_function

    # The samples of a batch into one: tensors stacked along a new first dimension, numbers into a
    # tensor (Floats as float64, as Python's), strings left as they are, containers element by element.
    def default_collate(batch)
      elem = batch[0]
      case elem
      when Torch::Tensor then Torch.stack(batch, 0)
      when Float then Torch.tensor(batch, dtype: :float64)
      when Integer, true, false then Torch.tensor(batch)
      when String, Symbol then batch
      when Hash then elem.keys.to_h { |key| [key, default_collate(batch.map { |sample| sample[key] })] }
      when Struct then elem.class.new(*transpose(batch).map { |samples| default_collate(samples) })
      when Array then transpose(batch).map { |samples| default_collate(samples) }
      else
        return default_collate(batch.map { |array| numo_to_tensor(array) }) if numo?(elem)

        raise TypeError, format(ERROR, elem.class)
      end
    end

    # A sample as it is (no batching), Numo arrays made tensors, containers element by element.
    def default_convert(data)
      case data
      when Torch::Tensor then data
      when Hash then data.transform_values { |value| default_convert(value) }
      when Struct then data.class.new(*data.to_a.map { |value| default_convert(value) })
      when Array then data.map { |value| default_convert(value) }
      else numo?(data) ? numo_to_tensor(data) : data
      end
    end

    def transpose(batch)
      size = batch[0].size
      raise "each element in list of batch should be of equal size" unless batch.all? { |sample| sample.size == size }

      batch.map(&:to_a).transpose
    end

    def numo?(data)
      defined?(Numo::NArray) && data.is_a?(Numo::NArray)
    end

    def numo_to_tensor(array)
      raise TypeError, format(ERROR, array.class) if array.is_a?(Numo::RObject)

      Torch.from_numo(array)
    end
  end
end

module Torch
  module Utils
    module Data
      def self.default_collate(batch)
        PytorchParity::Collate.default_collate(batch)
      end

      def self.default_convert(data)
        PytorchParity::Collate.default_convert(data)
      end
    end
  end
end
