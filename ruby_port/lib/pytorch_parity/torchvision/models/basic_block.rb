# frozen_string_literal: true

# Part of: torchvision/models/resnet.rb

require "torchvision"
require_relative "../../torch/nn/intermediates"

module PytorchParity
  # TorchVision::Models::BasicBlock's forward freeing its intermediates (Intermediates) and adding the
  # shortcut in place, as torchvision's `out += identity` does (torchvision-ruby's rebinds out to a new
  # tensor).
  module BasicBlockFreesIntermediates
    def modules_called
      [@conv1, @bn1, @relu, @conv2, @bn2, @downsample].compact
    end

    def forward(x)
      Intermediates.freeing(self, x) do |free|
        out = @conv1.call(x)
        out = free.(out, @bn1.call(out))
        out = @relu.call(out)

        out = free.(out, @conv2.call(out))
        out = free.(out, @bn2.call(out))

        identity = @downsample ? @downsample.call(x) : x
        out.add!(identity)
        free.(identity, out) if @downsample
        @relu.call(out)
      end
    end
  end
end

TorchVision::Models::BasicBlock.prepend(PytorchParity::BasicBlockFreesIntermediates)
