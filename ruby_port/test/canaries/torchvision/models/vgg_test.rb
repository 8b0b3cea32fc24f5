# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  # The canary of torchvision/models/vgg.rb (its header states what torchvision-ruby does, and how to show it).
  class VGGCanaryTest < Minitest::Test
    include TestSupport
    include Canary

    FIX = "torchvision/models/vgg.rb"

    def test_upstream_still_differs
      assert_upstream_still_differs(FIX, "count BatchNorm batches in VGG")
    end

    def test_the_fix_gives_what_python_gives
      assert_fix_gives_what_python_gives(FIX, reproduce_with_the_fix)
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

    private

    # The reproduction, with the fix.
    def reproduce_with_the_fix
      features = VGG.counting_batches!(TorchVision::Models::VGG.make_layers([4], true))
      features.call(Torch.ones(2, 3, 2, 2))
      features.modules.grep(Torch::NN::BatchNorm2d).first.num_batches_tracked.item
    end
  end
end
