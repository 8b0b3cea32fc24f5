# frozen_string_literal: true

module Hymenoptera
  # TorchVision::Datasets::ImageFolder with torchvision's `loader:` argument, which torchvision-ruby
  # 0.3.0 lacks (it always hands Vips::Image.new_from_file's bands, whatever they are, to the
  # transforms). The tutorial's data goes through Data.rgb_loader: 8-bit RGB, as PIL's loader gives.
  class ImageFolder < TorchVision::Datasets::ImageFolder
    def initialize(root, transform: nil, loader: RGBLoader.method(:load))
      super(root, transform: transform)
      @loader = loader
    end
  end
end
