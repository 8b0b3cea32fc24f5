# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class SGDCanaryTest < CanaryTest
    canary "torch/optim/sgd.rb", now_does: "read an optimizer's state" do
      SGD.new([Torch.zeros(1, requires_grad: true)], lr: 0.1).respond_to?(:state)
    end
  end
end
