# frozen_string_literal: true

# Images per second through the tutorial's train and val transforms and DataLoader (batch 4), in Ruby.
#
#   bundle exec ruby bench/data_loading.rb --data-dir DIR [--passes 3]
#
# The twin of bench/data_loading.py. Uses the port's own data code (ruby_port/lib/hymenoptera/data.rb:
# its transforms, RGB loader, ImageFolder and DataLoader), or torchvision-ruby's ImageFolder and
# transforms with Torch::Utils::Data::DataLoader if that cannot be loaded. One untimed pass per split
# warms the file cache, then every timed pass decodes, transforms and batches every image once.
# Prints one JSON object.

require_relative "torch_setup"

SPLITS = %w[train val].freeze
BATCH_SIZE = 4
PORT = File.expand_path("../ruby_port/lib/hymenoptera", __dir__)
PORT_FILES = %w[errors python_reference fixes data].freeze

# [source, {split => data loader}] from the port's data code, or torchvision-ruby's as a fallback.
def loaders(data_dir)
  PORT_FILES.each { |name| require File.join(PORT, name) }
  data = Hymenoptera::Data
  transforms = data.data_transforms
  ["ruby_port/lib/hymenoptera/data.rb", SPLITS.each_with_index.to_h do |split, k|
    dataset = Hymenoptera::ImageFolder.new(File.join(data_dir, split), transform: transforms[split],
                                                                       loader: data.method(:rgb_loader))
    [split, data.make_dataloader(dataset, BATCH_SIZE, k)]
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
    [split, Torch::Utils::Data::DataLoader.new(dataset, batch_size: BATCH_SIZE, shuffle: true)]
  end]
end

# Done with a batch: Python frees it here, when the loop's next batch replaces the last reference;
# torch.rb leaves it to Ruby's GC, which does not count its memory (the port's training loop frees
# it with a minor GC after each batch: fixes/torch/tensor_memory.rb).
def drop(*tensors)
  Hymenoptera::TensorMemory.free(*tensors) if defined?(Hymenoptera::TensorMemory)
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

options = {passes: 3}
OptionParser.new do |parser|
  parser.banner = "usage: bundle exec ruby bench/data_loading.rb --data-dir DIR [--passes N]"
  parser.on("--data-dir DIR", "a folder with train/ and val/ class folders") { |dir| options[:data_dir] = dir }
  parser.on("--passes N", Integer, "timed passes over each split (default 3)") { |n| options[:passes] = n }
end.parse!
abort "data_loading.rb: --data-dir is required" unless options[:data_dir]

source, dataloaders = loaders(options[:data_dir])
splits = SPLITS.to_h { |split| [split, images_per_second(dataloaders[split], options[:passes])] }
puts JSON.generate(side: "ruby", source: source, runtime: Hymenoptera::RuntimeInfo.describe, splits: splits)
