# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class VGGCanaryTest < CanaryTest
    canary "torchvision/models/vgg.rb", now_does: "count BatchNorm batches in VGG" do
      features = VGG.counting_batches!(TorchVision::Models::VGG.make_layers([4], true))
      features.call(Torch.ones(2, 3, 2, 2))
      features.modules.grep(Torch::NN::BatchNorm2d).first.num_batches_tracked.item
    end

    # Building upstream's layers and swapping in the counting BatchNorm2d before the model initialises
    # leaves the weights upstream's: BatchNorm draws nothing.
    def test_the_ports_vgg_is_upstreams_from_the_same_seed
      Torch.manual_seed(0)
      upstream = TorchVision::Models::VGG11BN.new.state_dict
      Torch.manual_seed(0)
      ours = VGG.new("vgg11_bn").state_dict
      assert_equal upstream.keys, ours.keys
      upstream.each { |name, tensor| assert Torch.equal(tensor, ours[name]), name }
    end
  end
end
