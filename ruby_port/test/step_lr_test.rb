# frozen_string_literal: true

require_relative "test_helper"

class StepLRTest < Minitest::Test
  def optimizer
    params = [Torch::NN::Parameter.new(Torch.zeros(1)), Torch::NN::Parameter.new(Torch.zeros(1))]
    Torch::Optim::SGD.new([{params: [params[0]], lr: 1e-4}, {params: [params[1]], lr: 1e-3}], lr: 1e-3, momentum: 0.9)
  end

  def lrs_per_epoch(scheduler_class, epochs: 25)
    opt = optimizer
    scheduler = scheduler_class.new(opt, step_size: 7, gamma: 0.1)
    Array.new(epochs) do
      lrs = opt.param_groups.map { |g| g[:lr] }
      scheduler.step
      lrs
    end
  end

  # What PyTorch 1.13's StepLR gives the tutorial's optimizer groups, epoch by epoch (printed by Python).
  def test_the_learning_rates_are_pythons_to_the_last_bit
    expected = [[0.0001, 0.001]] * 7 + [[1e-05, 0.0001]] * 7 + [[1.0000000000000002e-06, 1e-05]] * 7 +
               [[1.0000000000000002e-07, 1.0000000000000002e-06]] * 4
    assert_equal expected, lrs_per_epoch(Torch::Optim::LRScheduler::StepLR)
  end
end
