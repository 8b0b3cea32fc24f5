# frozen_string_literal: true

# examples/small_cnn.py ported to torch.rb and torchvision-ruby line by line, on the gems' public API
# alone: a small CNN on generated images, not the tutorial.
#
#   bundle exec ruby examples/small_cnn_port.rb [--epochs 3] [--seed 0]
#   bundle exec ruby -rpytorch_parity examples/small_cnn_port.rb ...   (behaves as PyTorch does)

require "optparse"
require "torch"
require "torchvision"

options = {epochs: 3, seed: 0}
OptionParser.new do |opts|
  opts.banner = "Usage: ruby examples/small_cnn_port.rb [options]"
  opts.on("--epochs N", Integer) { |v| options[:epochs] = v }
  opts.on("--seed N", Integer) { |v| options[:seed] = v }
end.parse!

Torch.manual_seed(options[:seed])

# count 3x16x16 images in [0, 1.5): uniform noise, plus 0.5 on a centred 8x8 square for class 1.
class Shapes
  def initialize(count, transform)
    @images = Torch.rand(count, 3, 16, 16)
    @labels = Torch.randint(0, 2, [count], dtype: :int64) # torch.rb's randint makes float32 unless told
    square = Torch.zeros(1, 1, 16, 16)
    square[0, 0, 4...12, 4...12] = 0.5
    @images = @images + @labels.view(-1, 1, 1, 1).float * square
    @transform = transform
  end

  def size
    @labels.size(0)
  end

  def [](index)
    [@transform.call(@images[index]), @labels[index].item]
  end
end

class SmallCNN < Torch::NN::Module
  def initialize
    super()
    @conv = Torch::NN::Conv2d.new(3, 8, 3, padding: 1)
    @bn = Torch::NN::BatchNorm2d.new(8)
    @relu = Torch::NN::ReLU.new
    @pool = Torch::NN::MaxPool2d.new(2)
    @fc = Torch::NN::Linear.new(8 * 8 * 8, 2)
  end

  def forward(x)
    x = @pool.call(@relu.call(@bn.call(@conv.call(x))))
    @fc.call(Torch.flatten(x, 1))
  end
end

normalize = TorchVision::Transforms::Normalize.new([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
train_set = Shapes.new(48, TorchVision::Transforms::Compose.new([TorchVision::Transforms::RandomHorizontalFlip.new, normalize]))
val_set = Shapes.new(16, TorchVision::Transforms::Compose.new([normalize]))
model = SmallCNN.new
train_loader = Torch::Utils::Data::DataLoader.new(train_set, batch_size: 8, shuffle: true)
val_loader = Torch::Utils::Data::DataLoader.new(val_set, batch_size: 8)
criterion = Torch::NN::CrossEntropyLoss.new
optimizer = Torch::Optim::SGD.new(model.parameters, lr: 0.01, momentum: 0.9)
scheduler = Torch::Optim::LRScheduler::StepLR.new(optimizer, step_size: 1, gamma: 0.1)

loss = nil
options[:epochs].times do |epoch|
  model.train
  train_loader.each do |images, labels|
    optimizer.zero_grad
    loss = criterion.call(model.call(images), labels)
    loss.backward
    optimizer.step
  end
  scheduler.step
  model.eval
  correct = 0
  Torch.no_grad do
    val_loader.each do |images, labels|
      correct += model.call(images).argmax(1).eq(labels).sum.item
    end
  end
  puts format("epoch %d: last loss %.4f, val accuracy %.3f", epoch, loss.item, correct.to_f / val_set.size)
end
