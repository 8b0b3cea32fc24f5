# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class ResNetCanaryTest < CanaryTest
    canary "torchvision/models/resnet.rb", now_does: "free a forward's intermediates as Python's refcount does"

    # A module whose code is the user's may keep what it is given (as a Python module may keep a
    # reference): a forward that calls one frees nothing, whether the module's class is the user's or the
    # user defined forward on one module of the gems'.
    def test_what_a_users_module_may_keep_is_not_freed
      keeper = Class.new(Torch::NN::Module) do
        attr_reader :kept

        def forward(input)
          @kept = input
          input * 2
        end
      end
      linear = Torch::NN::Linear.new(2, 2)
      def linear.forward(input)
        @kept = input
        super
      end

      [keeper.new, linear].each do |kept_by|
        model = Torch::NN::Sequential.new(Torch::NN::Linear.new(2, 2), kept_by, Torch::NN::ReLU.new)
        Torch.no_grad { model.call(Torch.ones(1, 2)) }
        assert_equal [1, 2], kept_by.instance_variable_get(:@kept).shape, "#{kept_by.class}: what it kept was freed"
      end
    end

    # The caller's input stays, also where a module gives it back as its output (Identity, Dropout in
    # eval mode) and the next makes a new tensor of it.
    def test_the_callers_input_stays
      linear = Torch::NN::Linear.new(2, 3)
      model = Torch::NN::Sequential.new(Torch::NN::Identity.new, Torch::NN::Dropout.new.eval, linear, Torch::NN::Tanh.new)
      input = Torch.ones(1, 2)
      output = Torch.no_grad { model.call(input) }
      assert Torch.equal(Torch.ones(1, 2), input)
      assert Torch.equal(Torch.no_grad { linear.call(input).tanh }, output)
    end

    # Where autograd records, its graph may have saved what passes between modules: nothing is freed and
    # backward runs. Without grad the forward frees, and gives the same output.
    def test_a_forward_that_autograd_records_frees_nothing
      Torch.manual_seed(0)
      model = TorchVision::Models::ResNet18.new.eval
      input = Torch.randn(2, 3, 32, 32)
      recorded = model.call(input)
      recorded.sum.backward
      assert model.conv1.weight.grad.abs.sum.item.positive?
      assert Torch.equal(recorded.detach, Torch.no_grad { model.call(input) })
    end
  end
end
