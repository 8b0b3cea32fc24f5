# frozen_string_literal: true

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
