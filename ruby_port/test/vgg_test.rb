# frozen_string_literal: true

require_relative "test_helper"

class VGGTest < Minitest::Test
  def train_step(features)
    features.train
    features.call(Torch.randn(2, 3, 4, 4))
    features.named_modules.values.grep(Torch::NN::BatchNorm2d).map { |norm| norm.num_batches_tracked.item }
  end

  # Why the port builds VGG itself (hymenoptera/vgg.rb): torchvision-ruby's make_layers takes torch.rb's
  # BatchNorm2d, which never counts batches. The day this fails, delete vgg.rb and use the gem's VGG*BN.
  def test_torchvision_rubys_vgg_batch_norm_does_not_count_batches
    assert_equal [0], train_step(TorchVision::Models::VGG.make_layers([8, "M"], true))
  end

  def test_the_ports_vgg_batch_norm_counts_batches_as_pytorch
    assert_equal [1], train_step(Hymenoptera::VGG.counting_batches!(TorchVision::Models::VGG.make_layers([8, "M"], true)))
  end

  def test_the_ports_vgg_is_upstreams_from_the_same_seed
    Torch.manual_seed(0)
    upstream = TorchVision::Models::VGG11BN.new.state_dict
    Torch.manual_seed(0)
    ours = Hymenoptera::VGG.new("vgg11_bn").state_dict
    assert_equal upstream.keys, ours.keys
    upstream.each { |name, tensor| assert Torch.equal(tensor, ours[name]), name }
  end
end
