# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class TensorMarshalCanaryTest < CanaryTest
    canary "torch/tensor/marshal.rb", now_does: "copy tensors with Marshal, Ruby's deep copy"
  end
end
