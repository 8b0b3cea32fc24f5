# frozen_string_literal: true

# Images per second through the tutorial's train and val transforms and DataLoader (batch 4), in Ruby.
#
#   bundle exec ruby bench/data_loading.rb --data-dir DIR [--passes 3] [--workers 0]
#
# The twin of bench/data_loading.py. Uses the port's own data code (ruby_port/lib/hymenoptera/data.rb:
# its transforms, RGB loader, torchvision-ruby's ImageFolder and Torch::Utils::Data::DataLoader with
# num_workers: --workers, all made exact by pytorch_parity), or torchvision-ruby's ImageFolder and
# transforms with pytorch_parity's DataLoader if that cannot be loaded. One untimed pass per split
# warms the file cache, then every timed pass decodes, transforms and batches every image once (with
# workers, a pass includes starting them, as in Python). Prints one JSON object.

require_relative "torch_setup"

SPLITS = %w[train val].freeze
BATCH_SIZE = 4
LIBRARY = File.expand_path("../ruby_port/lib", __dir__)
PORT_FILES = %w[errors python_reference data].freeze

# [source, {split => data loader}] from the port's data code, or torchvision-ruby's as a fallback.
def loaders(data_dir, workers)
  require File.join(LIBRARY, "pytorch_parity")
  PORT_FILES.each { |name| require File.join(LIBRARY, "hymenoptera", name) }
  data = Hymenoptera::Data
  transforms = data.data_transforms
  ["ruby_port/lib/hymenoptera/data.rb", SPLITS.each_with_index.to_h do |split, k|
    dataset = TorchVision::Datasets::ImageFolder.new(File.join(data_dir, split), transform: transforms[split],
                                                                               loader: data.method(:rgb_loader))
    [split, data.make_dataloader(dataset, BATCH_SIZE, k, workers)]
  end]
rescue LoadError, NameError, ArgumentError => e
  t = TorchVision::Transforms
  normalize = t::Normalize.new([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
  transforms = {
    "train" => t::Compose.new([t::RandomResizedCrop.new(224), t::RandomHorizontalFlip.new, t::ToTensor.new, normalize]),
    "val" => t::Compose.new([t::Resize.new(256), t::CenterCrop.new(224), t::ToTensor.new, normalize])
  }
  ["torchvision-ruby transforms + ImageFolder + Torch::Utils::Data::DataLoader " \
   "(the port's data.rb not loadable: #{e.message.lines.first.strip})", SPLITS.to_h do |split|
    dataset = TorchVision::Datasets::ImageFolder.new(File.join(data_dir, split), transform: transforms[split])
    [split, Torch::Utils::Data::DataLoader.new(dataset, batch_size: BATCH_SIZE, shuffle: true, num_workers: workers)]
  end]
end

# Done with a batch: Python frees it here, when the loop's next batch replaces the last reference;
# torch.rb leaves it to Ruby's GC (which pytorch_parity/torch/tensor_memory.rb makes count its memory).
def drop(*tensors)
  PytorchParity::TensorMemory.free(*tensors) if defined?(PytorchParity::TensorMemory)
end

def images_per_second(loader, passes)
  rates = []
  count = 0
  ([false] + [true] * passes).each do |timed|
    start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    count = 0
    loader.each do |inputs, labels|
      count += inputs.shape[0]
      drop(inputs, labels)
    end
    rates << count / (Process.clock_gettime(Process::CLOCK_MONOTONIC) - start) if timed
  end
  {images: count, images_per_s: rates}
end

options = {passes: 3, workers: 0}
OptionParser.new do |parser|
  parser.banner = "usage: bundle exec ruby bench/data_loading.rb --data-dir DIR [--passes N] [--workers N]"
  parser.on("--data-dir DIR", "a folder with train/ and val/ class folders") { |dir| options[:data_dir] = dir }
  parser.on("--passes N", Integer, "timed passes over each split (default 3)") { |n| options[:passes] = n }
  parser.on("--workers N", Integer, "DataLoader worker processes (num_workers; default 0: load in this process)") do |n|
    options[:workers] = n
  end
end.parse!
abort "data_loading.rb: --data-dir is required" unless options[:data_dir]
abort "data_loading.rb: --workers: expected 0 or more worker processes" if options[:workers].negative?

source, dataloaders = loaders(options[:data_dir], options[:workers])
splits = SPLITS.to_h { |split| [split, images_per_second(dataloaders[split], options[:passes])] }
puts JSON.generate(side: "ruby", source: source, runtime: Hymenoptera::RuntimeInfo.describe, workers: options[:workers],
                   splits: splits)
