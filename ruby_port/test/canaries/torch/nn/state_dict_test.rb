# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class StateDictCanaryTest < CanaryTest
    canary "torch/nn/state_dict.rb", now_does: "copy tensors with Marshal, Ruby's deep copy (use it for the best weights)" do
      model = Torch::NN::Linear.new(1, 1)
      best = StateDict.copy(model)
      Torch.no_grad { model.weight.add!(1) }
      (model.weight - best["weight"]).sum.item
    end
  end
end
