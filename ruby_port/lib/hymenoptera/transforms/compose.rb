# frozen_string_literal: true

module Hymenoptera
  module Transforms
    # transforms.Compose: torchvision-ruby's, which chains any callables, as torchvision's does.
    Compose = TorchVision::Transforms::Compose
  end
end
