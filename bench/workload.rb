# frozen_string_literal: true

# The benchmarked workload in Ruby: the tutorial's ResNet-18, a random batch, one step by phases.
#
# The twin of bench/workload.py. The model and optimizer come from the port's own code
# (ruby_port/lib/hymenoptera/model.rb and strategies.rb); if that cannot be loaded, from
# torchvision-ruby directly (SOURCE says which). Load torch (after Hymenoptera::Threads.configure) first.
# Both run on pytorch_parity, as the port does (its LibTorch memory accounting included).
module Workload
  MODES = %w[finetune feature_extractor eval].freeze
  TRAIN_PHASES = %w[zero_grad forward loss backward step].freeze
  EVAL_PHASES = %w[forward].freeze
  CHANNELS, SIZE, NUM_CLASSES = 3, 224, 2
  PORT = File.expand_path("../ruby_port/lib/hymenoptera", __dir__)
  # The tutorial's settings, from the port's one table of them (no torch in it, so read even when strategies.rb is not).
  require File.join(PORT, "recipe")
  BATCH_SIZE, LR, MOMENTUM = %w[batch_size lr momentum].map { |name| Hymenoptera::Recipe.default(name) }

  SOURCE =
    begin
      require_relative "../ruby_port/lib/pytorch_parity"
      %w[errors model recipe strategies].each { |name| require File.join(PORT, name) }
      unless Hymenoptera::Strategies.respond_to?(:build_model) && Hymenoptera::Strategies.respond_to?(:make_optimizer)
        raise NameError, "Hymenoptera::Strategies has no build_model/make_optimizer"
      end

      "ruby_port/lib/hymenoptera/strategies.rb"
    rescue LoadError, NameError => e
      "TorchVision::Models::ResNet18 (the port's model.rb/strategies.rb not loadable: #{e.message.lines.first.strip})"
    end

  module_function

  def port?
    SOURCE.start_with?("ruby_port/")
  end

  def phases(mode)
    mode == "eval" ? EVAL_PHASES : TRAIN_PHASES
  end

  # 4 random 3x224x224 images and their labels, the same values in both languages.
  def batch
    Torch.manual_seed(0)
    [Torch.randn(BATCH_SIZE, CHANNELS, SIZE, SIZE), Torch.tensor([0, 1, 0, 1])]
  end

  # [model, optimizer] for mode: random weights, fc 512->2; eval mode and no optimizer for "eval".
  def build(mode)
    strategy = mode == "eval" ? "finetune" : mode
    if port?
      model = Hymenoptera::Strategies.build_model(strategy, nil, num_classes: NUM_CLASSES)
      optimizer = Hymenoptera::Strategies.make_optimizer(strategy, model, lr: LR, momentum: MOMENTUM)
    else
      model = TorchVision::Models::ResNet18.new
      model.fc = Torch::NN::Linear.new(model.fc.in_features, NUM_CLASSES)
      if Hymenoptera::Recipe::STRATEGY_TABLE.fetch(strategy).trains == "head"
        model.named_parameters.each { |name, param| param.requires_grad!(false) unless name.start_with?("fc.") }
      end
      optimizer = Torch::Optim::SGD.new(model.parameters.select(&:requires_grad), lr: LR, momentum: MOMENTUM)
    end
    return [model.eval, nil] if mode == "eval"

    model.train
    [model, optimizer]
  end

  # step.call(mark): one step of mode on a fresh model and the fixed batch, mark.call(phase) as each phase ends.
  def step_fn(mode)
    inputs, labels = batch
    model, optimizer = build(mode)
    criterion = Torch::NN::CrossEntropyLoss.new
    ->(mark) { run(mode, model, optimizer, criterion, inputs, labels, mark) }
  end

  # One training step (or eval forward); mark.call(phase) as each phase ends.
  def run(mode, model, optimizer, criterion, inputs, labels, mark)
    if mode == "eval"
      Torch.no_grad { model.call(inputs) }
      mark.call("forward")
      return
    end
    optimizer.zero_grad
    mark.call("zero_grad")
    outputs = model.call(inputs)
    mark.call("forward")
    loss = criterion.call(outputs, labels)
    mark.call("loss")
    loss.backward
    mark.call("backward")
    optimizer.step
    mark.call("step")
  end
end
