# frozen_string_literal: true

# Fix: torchvision-ruby 0.3.0, TorchVision::Models::VGG (lib/torchvision/models/vgg.rb)
# Bug: its make_layers builds torch.rb's BatchNorm2d, which never counts batches
#   (torch/nn/batch_norm2d.rb), and VGG, unlike its ResNet, takes no norm_layer to build another
# Reproduction:
#   features = TorchVision::Models::VGG.make_layers([4], true)
#   features.call(Torch.ones(2, 3, 2, 2))
#   features.modules.grep(Torch::NN::BatchNorm2d).first.num_batches_tracked.item
# Upstream gives: 0
# Python gives: 1
# In Python: features = torchvision.models.vgg.make_layers([4], batch_norm=True); features(torch.ones(2, 3, 2, 2)); features[1].num_batches_tracked.item()

module Hymenoptera
  # torchvision-ruby's VGG, with BatchNorm counting batches as PyTorch's does: torchvision-ruby's
  # make_layers builds Torch::NN::BatchNorm2d, which never increments num_batches_tracked
  # (fixes/torch/nn/batch_norm2d.rb), and VGG, unlike its ResNet, takes no norm_layer. Everything else is upstream's.
  module VGG
    CONFIGS = {"vgg11" => "A", "vgg13" => "B", "vgg16" => "D", "vgg19" => "E"}.freeze

    module_function

    # VGG.new("vgg16_bn"): what TorchVision::Models::VGG16BN.new builds, initialised alike.
    def new(arch, **kwargs)
      config = TorchVision::Models::VGG::CFGS.fetch(CONFIGS.fetch(arch.delete_suffix("_bn")))
      features = TorchVision::Models::VGG.make_layers(config, arch.end_with?("_bn"))
      counting_batches!(features)
      TorchVision::Models::VGG.new(features, **kwargs)
    end

    # Each Torch::NN::BatchNorm2d of a Sequential replaced by ours, of the same width (made before the
    # model initialises its weights: BatchNorm draws nothing, so the random stream is unchanged).
    def counting_batches!(sequential)
      sequential.named_children.each do |name, mod|
        sequential.add_module(name, BatchNorm2d.new(mod.weight.size(0))) if mod.instance_of?(Torch::NN::BatchNorm2d)
      end
      sequential
    end
  end
end
