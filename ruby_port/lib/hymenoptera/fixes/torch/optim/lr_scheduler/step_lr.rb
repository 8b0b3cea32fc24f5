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

module Hymenoptera
  # torch.optim.lr_scheduler.StepLR as PyTorch 1.13 computes it: every step_size epochs each group's
  # *current* lr is multiplied by gamma (the chainable form). torch.rb's StepLR recomputes
  # base_lr * gamma ** (epoch / step_size), which can differ from Python in the last bit of a double.
  class StepLR
    attr_reader :last_epoch

    def initialize(optimizer, step_size:, gamma: 0.1)
      @optimizer = optimizer
      @step_size = step_size
      @gamma = gamma
      optimizer.param_groups.each { |group| group[:initial_lr] ||= group[:lr] }
      @last_epoch = -1
      step
    end

    def step
      @last_epoch += 1
      return if @last_epoch.zero? || (@last_epoch % @step_size) != 0

      @optimizer.param_groups.each { |group| group[:lr] *= @gamma }
    end

    def lrs
      @optimizer.param_groups.map { |group| group[:lr] }
    end
  end
end
