# frozen_string_literal: true

# Fix: torchvision-ruby 0.3.0, TorchVision::Models::ResNet (lib/torchvision/models/resnet.rb)
# Bug: its forward, its blocks' and the Sequential layers' between them leave every intermediate
#   activation to Ruby's GC, where Python frees each as soon as the forward has used it, and a block adds
#   its shortcut into a new tensor where torchvision adds it in place: each layer writes its output into
#   memory no step has touched lately
# Reproduction:
#   model = TorchVision::Models::ResNet18.new.eval
#   live = -> { ObjectSpace.each_object(Torch::Tensor).reject { |t| t.numel.zero? }.map(&:_data_ptr).uniq.size }
#   GC.disable
#   before = live.call
#   input = Torch.zeros(1, 3, 32, 32)
#   output = Torch.no_grad { model.call(input) }
#   kept = live.call - before
#   GC.enable
#   kept
# Upstream gives: 52
# Python gives: 2
# In Python: import gc; model = torchvision.models.resnet18().eval(); live = lambda: len({t.data_ptr() for t in gc.get_objects() if torch.is_tensor(t) and t.numel()}); before = live(); input = torch.zeros(1, 3, 32, 32); output = model.requires_grad_(False)(input); live() - before

require "torchvision"
require_relative "../../torch/nn/intermediates"

module PytorchParity
  # TorchVision::Models::ResNet's forward freeing what it no longer needs (Intermediates says when it
  # may), as the same code in Python frees it by dropping the last reference: in a forward that records
  # no graph (evaluation, a frozen backbone) each output then goes into the still-warm memory of one just
  # freed. One BatchNorm2d of ResNet-18's first layer took 142 us in Ruby against Python's 94 writing into
  # memory the GC had not yet given back, 63 us once each output was freed (bench/README.md). Where
  # autograd records, the graph keeps what it needs and nothing is freed.
  module ResNetFreesIntermediates
    def modules_called
      [@conv1, @bn1, @relu, @maxpool, @layer1, @layer2, @layer3, @layer4, @avgpool, @fc]
    end

    def _forward_impl(x)
      Intermediates.freeing(self, x) do |free|
        out = @conv1.call(x)
        out = free.(out, @bn1.call(out))
        out = @relu.call(out)
        out = free.(out, @maxpool.call(out))

        out = free.(out, @layer1.call(out))
        out = free.(out, @layer2.call(out))
        out = free.(out, @layer3.call(out))
        out = free.(out, @layer4.call(out))

        pooled = free.(out, @avgpool.call(out))
        flat = Torch.flatten(pooled, 1)
        free.(pooled, free.(flat, @fc.call(flat)))
      end
    end
  end
end

TorchVision::Models::ResNet.prepend(PytorchParity::ResNetFreesIntermediates)
