# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class FunctionalCanaryTest < CanaryTest
    canary "torch/nn/functional.rb", now_does: "let the input of its splat functions go when the call returns"

    # Each function the fix takes over still computes what upstream's computes.
    def test_every_function_taken_over_computes_what_upstream_computes
      f = Torch::NN::Functional
      Torch.manual_seed(0)
      x1, x2, x3 = Torch.randn(2, 3, 9), Torch.randn(2, 3, 9, 9), Torch.randn(2, 3, 5, 9, 9)
      checks = {
        conv1d: [f.conv1d(x1, Torch.ones(4, 3, 3), nil, 2, 1), Torch.conv1d(x1, Torch.ones(4, 3, 3), nil, 2, 1)],
        conv2d: [f.conv2d(x2, Torch.ones(4, 3, 3, 3), Torch.ones(4), 1, 1, 1, 1), Torch.conv2d(x2, Torch.ones(4, 3, 3, 3), Torch.ones(4), 1, 1, 1, 1)],
        conv3d: [f.conv3d(x3, Torch.ones(4, 3, 1, 3, 3)), Torch.conv3d(x3, Torch.ones(4, 3, 1, 3, 3))],
        avg_pool1d: [f.avg_pool1d(x1, 3), Torch.avg_pool1d(x1, 3)],
        avg_pool2d: [f.avg_pool2d(x2, 3, 2, 1), Torch::NN.avg_pool2d(x2, 3, 2, 1)],
        avg_pool3d: [f.avg_pool3d(x3, 3), Torch::NN.avg_pool3d(x3, 3)],
        adaptive_max_pool1d: [f.adaptive_max_pool1d(x1, 2)[0], Torch.adaptive_max_pool1d(x1, 2)[0]],
        adaptive_avg_pool1d: [f.adaptive_avg_pool1d(x1, 2), Torch.adaptive_avg_pool1d(x1, 2)],
        softshrink: [f.softshrink(x1, 0.5), Torch::NN.softshrink(x1, 0.5)],
        max_pool1d: [f.max_pool1d(x1, 3, 2, 1, 1, false, true)[1], Torch.max_pool1d_with_indices(x1, 3, 2, 1, 1, false)[1]],
        max_pool2d: [f.max_pool2d(x2, 3, 2, 1, 1, false, false), Torch.max_pool2d(x2, 3, 2, 1, 1, false)],
        max_pool2d_with_indices: [f.max_pool2d(x2, 3, 2, 1, 1, false, true)[1], Torch::NN.max_pool2d_with_indices(x2, 3, 2, 1, 1, false)[1]],
        max_pool3d: [f.max_pool3d(x3, 3, 2, 1, 1, false, false), Torch.max_pool3d(x3, 3, 2, 1, 1, false)]
      }
      checks.each do |name, (fixed, direct)|
        assert_equal direct.shape, fixed.shape, name
        assert Torch.equal(direct, fixed), "#{name} differs from the function upstream calls"
      end
    end
  end
end
