# frozen_string_literal: true

require_relative "../../../canary"

module Hymenoptera
  class StepLRCanaryTest < CanaryTest
    canary "torch/optim/lr_scheduler/step_lr.rb", now_does: "multiply the current rate by gamma every step_size epochs, as PyTorch 1.13" do
      optimizer = Torch::Optim::SGD.new([Torch.zeros(1, requires_grad: true)], lr: 0.001)
      scheduler = StepLR.new(optimizer, step_size: 7)
      14.times { scheduler.step }
      optimizer.param_groups[0][:lr]
    end
  end
end
