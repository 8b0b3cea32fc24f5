# frozen_string_literal: true

require_relative "lib/pytorch_parity/version"

Gem::Specification.new do |spec|
  spec.name = "pytorch_parity"
  spec.version = PytorchParity::VERSION
  spec.summary = "torch.rb 0.12 and torchvision-ruby 0.3 computing what PyTorch 1.13 and torchvision 0.14 compute"
  spec.description = "One require changes the gems' classes in place: PyTorch's sampling and shuffling, " \
                     "DataLoader worker processes, PIL's image loading and resampling, chainable StepLR, " \
                     "BatchNorm batch counts, optimizer state, deep copies of state dicts."
  spec.authors = ["hymenoptera-parity"]
  spec.required_ruby_version = ">= 3.1"
  spec.files = Dir["lib/pytorch_parity.rb", "lib/pytorch_parity/**/*.rb"]
  spec.require_paths = ["lib"]

  spec.add_dependency "torch-rb", "~> 0.12.2"
  spec.add_dependency "torchvision", "0.3.0"
  spec.add_dependency "ruby-vips", "~> 2.1"
  spec.add_dependency "ffi", ">= 1.15"
end
