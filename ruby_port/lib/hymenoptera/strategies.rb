# frozen_string_literal: true

module Hymenoptera
  # The ways to train, as Recipe::STRATEGY_TABLE says: which model, which parameters learn, at which
  # learning rate (mirrors reference_py/strategies.py). Nothing here names a strategy: a row of the
  # table is all a new one needs. RESNET18_STRATEGIES (every ResNet-18 row) is what the replay and the
  # fixtures cover by default.
  module Strategies
    STRATEGIES = Recipe::STRATEGY_TABLE.keys.freeze
    RESNET18_STRATEGIES = STRATEGIES.select { |s| Recipe::STRATEGY_TABLE.fetch(s).architecture == "resnet18" }.freeze
    FROZEN_BACKBONE = STRATEGIES.select { |s| Recipe::STRATEGY_TABLE.fetch(s).trains == "head" }.freeze
    HEADS = {"resnet18" => Model::HEAD, "vgg16" => Model::VGG16_HEAD}.freeze
    WITH_HEAD = {"resnet18" => :resnet18_with_head, "vgg16" => :vgg16_with_head}.freeze

    module_function

    # The torchvision architecture a strategy trains: resnet18 or vgg16.
    def architecture(strategy)
      Recipe::STRATEGY_TABLE.fetch(strategy).architecture
    end

    # The name of the module a strategy replaces with a new head.
    def head(strategy)
      HEADS.fetch(architecture(strategy))
    end

    def head?(name, strategy)
      name.start_with?("#{head(strategy)}.")
    end

    def uses_pretrained?(strategy)
      Recipe::STRATEGY_TABLE.fetch(strategy).pretrained
    end

    # The model of strategy: pretrained backbone (if the table says so), new head, frozen backbone if
    # FROZEN_BACKBONE.
    def build_model(strategy, backbone_state, num_classes: 2)
      model = Model.public_send(WITH_HEAD.fetch(architecture(strategy)), uses_pretrained?(strategy) ? backbone_state : nil, num_classes: num_classes)
      prepare(strategy, model)
    end

    def prepare(strategy, model)
      if FROZEN_BACKBONE.include?(strategy)
        model.named_parameters.each { |name, param| param.requires_grad!(head?(name, strategy)) }
      end
      model
    end

    # The table's groups, each of the parameters that train in named_parameters order, at its rate.
    def param_groups(strategy, model, lr:, backbone_lr:, head_lr:)
      rates = {"lr" => lr, "backbone_lr" => backbone_lr, "head_lr" => head_lr}
      parts = {"trainable" => ->(_name) { true },
               "backbone" => ->(name) { !head?(name, strategy) },
               "head" => ->(name) { head?(name, strategy) }}
      trainable = model.named_parameters.select { |_, param| param.requires_grad }
      Recipe::STRATEGY_TABLE.fetch(strategy).groups.map do |part, rate|
        {params: trainable.select { |name, _| parts.fetch(part).call(name) }.values, lr: rates.fetch(rate)}
      end
    end

    def make_optimizer(strategy, model, lr: Recipe.default("lr"), momentum: Recipe.default("momentum"),
                       backbone_lr: Recipe.default("backbone_lr"), head_lr: Recipe.default("head_lr"))
      groups = param_groups(strategy, model, lr: lr, backbone_lr: backbone_lr, head_lr: head_lr)
      Torch::Optim::SGD.new(groups, lr: lr, momentum: momentum)
    end

    # Decay LR by a factor of gamma every step_size epochs.
    def make_scheduler(optimizer, step_size: Recipe.default("step_size"), gamma: Recipe.default("gamma"))
      Torch::Optim::LRScheduler::StepLR.new(optimizer, step_size: step_size, gamma: gamma)
    end
  end
end
