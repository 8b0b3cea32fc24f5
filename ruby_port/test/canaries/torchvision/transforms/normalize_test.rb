# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class NormalizeCanaryTest < CanaryTest
    canary "torchvision/transforms/normalize.rb", now_does: "convert mean and std once"

    def test_the_fix_converts_mean_and_std_once_and_gives_upstreams_values
      image = Torch.rand(3, 4, 5)
      normalize = TorchVision::Transforms::Normalize.new(Data::MEAN, Data::STD)
      made = 0
      counter = TracePoint.new(:call) { |call| made += 1 if call.method_id == :tensor && call.defined_class == Torch.singleton_class }
      ours = counter.enable { Array.new(3) { normalize.call(image) } }
      assert_equal 2, made, "Normalize made mean and std #{made / 2} times in 3 calls"
      # in place, Normalize is torchvision-ruby's own
      upstream = TorchVision::Transforms::Normalize.new(Data::MEAN, Data::STD, inplace: true).call(image.clone)
      assert ours.all? { |tensor| tensor.eq(upstream).all.item }, "Normalize's values differ from torchvision-ruby's"
    end
  end
end
