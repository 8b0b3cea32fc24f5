# frozen_string_literal: true

require_relative "../../../canary"

module Hymenoptera
  class StepLRCanaryTest < CanaryTest
    canary "torch/optim/lr_scheduler/step_lr.rb", now_does: "multiply the current rate by gamma every step_size epochs, as PyTorch 1.13"
  end
end
