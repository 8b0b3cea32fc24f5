# License: BSD
# Author: Sasank Chilamkurthy
#
# PyTorch's "Transfer Learning for Computer Vision" tutorial, the finetuning part
# (https://pytorch.org/tutorials/beginner/transfer_learning_tutorial.html), ported to torch.rb and
# torchvision-ruby line by line as a user would, with nothing but the gems' public API. Its twin is
# examples/tutorial.py, with the same options and outputs:
#
#   bundle exec ruby examples/tutorial_port.rb --data-dir data/hymenoptera_data --weights net.pth
#   bundle exec ruby -rpytorch_parity examples/tutorial_port.rb ...   (behaves as PyTorch does)
#
# What differs from the page, only what running it here needs: options for the data folder, the
# weights (a state dict such as the project's net.pth: nothing is downloaded), the epochs, the
# DataLoaders' workers, StepLR's step size, the seed (Torch.manual_seed first, nothing else) and an
# output folder, which gets each epoch's learning rate, losses and accuracies as curves.json and the
# best weights as best.pth. The page's figures and its second part (fixed feature extractor) are left out.

require "fileutils"
require "json"
require "optparse"
require "torch"
require "torchvision"

options = {
  data_dir: "data/hymenoptera_data", weights: "net.pth", epochs: 25, workers: 4, step_size: 7, seed: 0,
  out_dir: "runs/examples/ruby"
}
OptionParser.new do |opts|
  opts.banner = "Usage: ruby examples/tutorial_port.rb [options]"
  opts.on("--data-dir DIR", "train/ and val/, one folder per class") { |v| options[:data_dir] = v }
  opts.on("--weights FILE", "ResNet-18's ImageNet state dict") { |v| options[:weights] = v }
  opts.on("--epochs N", Integer) { |v| options[:epochs] = v }
  opts.on("--workers N", Integer, "the DataLoaders' num_workers") { |v| options[:workers] = v }
  opts.on("--step-size N", Integer, "StepLR: decay the learning rate every N epochs") { |v| options[:step_size] = v }
  opts.on("--seed N", Integer, "Torch.manual_seed, before anything else") { |v| options[:seed] = v }
  opts.on("--out-dir DIR", "where curves.json and best.pth go") { |v| options[:out_dir] = v }
end.parse!

Torch.manual_seed(options[:seed])

# Data augmentation and normalization for training
# Just normalization for validation
data_transforms = {
  "train" => TorchVision::Transforms::Compose.new([
    TorchVision::Transforms::RandomResizedCrop.new(224),
    TorchVision::Transforms::RandomHorizontalFlip.new,
    TorchVision::Transforms::ToTensor.new,
    TorchVision::Transforms::Normalize.new([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
  ]),
  "val" => TorchVision::Transforms::Compose.new([
    TorchVision::Transforms::Resize.new(256),
    TorchVision::Transforms::CenterCrop.new(224),
    TorchVision::Transforms::ToTensor.new,
    TorchVision::Transforms::Normalize.new([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
  ])
}

# torch.rb 0.12's DataLoader takes no num_workers keyword (an ArgumentError): with --workers 0, what it
# does anyway, none is passed, so that the port runs on it.
workers = options[:workers].zero? ? {} : {num_workers: options[:workers]}

data_dir = options[:data_dir]
image_datasets =
  ["train", "val"].to_h do |x|
    [x, TorchVision::Datasets::ImageFolder.new(File.join(data_dir, x), transform: data_transforms[x])]
  end
dataloaders =
  ["train", "val"].to_h do |x|
    [x, Torch::Utils::Data::DataLoader.new(image_datasets[x], batch_size: 4, shuffle: true, **workers)]
  end
dataset_sizes = ["train", "val"].to_h { |x| [x, image_datasets[x].size] }
class_names = image_datasets["train"].classes

device = Torch.device(Torch::CUDA.available? ? "cuda:0" : "cpu")

train_model = lambda do |model, criterion, optimizer, scheduler, num_epochs = 25|
  since = Time.now

  # copy.deepcopy in Ruby
  best_model_wts = Marshal.load(Marshal.dump(model.state_dict))
  best_acc = 0.0
  curves = [] # added: each epoch's learning rate, losses and accuracies

  num_epochs.times do |epoch|
    puts "Epoch #{epoch}/#{num_epochs - 1}"
    puts "-" * 10
    record = {"epoch" => epoch, "lr" => optimizer.param_groups[0][:lr]}

    # Each epoch has a training and validation phase
    ["train", "val"].each do |phase|
      if phase == "train"
        model.train # Set model to training mode
      else
        model.eval # Set model to evaluate mode
      end

      running_loss = 0.0
      running_corrects = 0

      # Iterate over data.
      dataloaders[phase].each do |inputs, labels|
        inputs = inputs.to(device)
        labels = labels.to(device)

        # zero the parameter gradients
        optimizer.zero_grad

        # forward
        # track history if only in train
        loss = nil
        preds = nil
        Torch.set_grad_enabled(phase == "train") do
          outputs = model.call(inputs)
          _, preds = Torch.max(outputs, 1)
          loss = criterion.call(outputs, labels)

          # backward + optimize only if in training phase
          if phase == "train"
            loss.backward
            optimizer.step
          end
        end

        # statistics
        running_loss += loss.item * inputs.size(0)
        running_corrects += Torch.sum(preds.eq(labels.data)).item
      end
      if phase == "train"
        scheduler.step
      end

      epoch_loss = running_loss / dataset_sizes[phase]
      epoch_acc = running_corrects.to_f / dataset_sizes[phase]

      puts "%s Loss: %.4f Acc: %.4f" % [phase, epoch_loss, epoch_acc]
      record["#{phase}_loss"] = epoch_loss
      record["#{phase}_acc"] = epoch_acc

      # deep copy the model
      if phase == "val" && epoch_acc > best_acc
        best_acc = epoch_acc
        best_model_wts = Marshal.load(Marshal.dump(model.state_dict))
      end
    end

    curves << record
    puts
  end

  time_elapsed = Time.now - since
  puts "Training complete in %.0fm %.0fs" % [time_elapsed.div(60), time_elapsed % 60]
  puts "Best val Acc: %4f" % best_acc

  # load best model weights
  model.load_state_dict(best_model_wts)
  [model, {"epochs" => curves, "best_acc" => best_acc}]
end

# Finetuning the convnet
model_ft = TorchVision::Models::ResNet18.new
model_ft.load_state_dict(Torch.load(options[:weights]))
num_ftrs = model_ft.fc.in_features
# Here the size of each output sample is set to 2.
# Alternatively, it can be generalized to Torch::NN::Linear.new(num_ftrs, class_names.size).
model_ft.fc = Torch::NN::Linear.new(num_ftrs, 2)

model_ft = model_ft.to(device)

criterion = Torch::NN::CrossEntropyLoss.new

# Observe that all parameters are being optimized
optimizer_ft = Torch::Optim::SGD.new(model_ft.parameters, lr: 0.001, momentum: 0.9)

# Decay LR by a factor of 0.1 every 7 epochs
exp_lr_scheduler = Torch::Optim::LRScheduler::StepLR.new(optimizer_ft, step_size: options[:step_size], gamma: 0.1)

# Train and evaluate
model_ft, history = train_model.call(model_ft, criterion, optimizer_ft, exp_lr_scheduler, options[:epochs])

FileUtils.mkdir_p(options[:out_dir])
File.write(File.join(options[:out_dir], "curves.json"), JSON.pretty_generate(history) + "\n")
Torch.save(model_ft.state_dict, File.join(options[:out_dir], "best.pth"))
