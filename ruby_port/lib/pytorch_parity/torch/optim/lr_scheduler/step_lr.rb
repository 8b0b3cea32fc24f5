# frozen_string_literal: true

# Fix: torch.rb 0.12, Torch::Optim::LRScheduler::StepLR (lib/torch/optim/lr_scheduler/step_lr.rb)
# Bug: it computes base_lr * gamma ** (epoch / step_size) in closed form, where PyTorch 1.13
#   multiplies the current rate by gamma every step_size epochs: one ulp apart from epoch 14
# Reproduction:
#   optimizer = Torch::Optim::SGD.new([Torch.zeros(1, requires_grad: true)], lr: 0.001)
#   scheduler = Torch::Optim::LRScheduler::StepLR.new(optimizer, step_size: 7)
#   14.times { scheduler.step }
#   optimizer.param_groups[0][:lr]
# Upstream gives: 1.0000000000000003e-05
# Python gives: 1e-05
# In Python: optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.001); scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=7); [scheduler.step() for _ in range(14)]; optimizer.param_groups[0]["lr"]

require "torch"

module PytorchParity
  # StepLR as PyTorch 1.13: `step` multiplies each group's current lr by gamma every step_size
  # epochs (the chainable form); `step(epoch)` keeps the closed form, as PyTorch's does.
  module ChainableStepLR
    def step(epoch = nil)
      @chainable = epoch.nil?
      super
    end

    def get_lr
      return super unless @chainable

      decays = @last_epoch.positive? && (@last_epoch % @step_size).zero?
      @optimizer.param_groups.map { |group| decays ? group[:lr] * @gamma : group[:lr] }
    end

    attr_reader :last_epoch
  end
end

Torch::Optim::LRScheduler::StepLR.prepend(PytorchParity::ChainableStepLR)
