# frozen_string_literal: true

module Hymenoptera
  # The ways to train: which model, which parameters learn, at which learning rate (mirrors
  # reference_py/strategies.py).
  #   finetune                 ResNet-18, all parameters, SGD(lr, momentum)               (the tutorial's model_ft)
  #   feature_extractor        ResNet-18, only fc; the backbone has requires_grad = false (the tutorial's model_conv)
  #   backbone_lr              ResNet-18, all parameters in two groups: backbone at backbone_lr, fc at head_lr
  #   scratch                  ResNet-18, no pretrained weights; all parameters, SGD(lr, momentum)
  #   vgg16_feature_extractor  VGG-16, features frozen, classifier replaced by Linear(25088, 2): only it learns
  # The first four are RESNET18_STRATEGIES, what the replay and the fixtures cover by default.
  module Strategies
    RESNET18_STRATEGIES = %w[finetune feature_extractor backbone_lr scratch].freeze
    STRATEGIES = [*RESNET18_STRATEGIES, "vgg16_feature_extractor"].freeze
    FROZEN_BACKBONE = %w[feature_extractor vgg16_feature_extractor].freeze

    module_function

    # The torchvision architecture a strategy trains: resnet18 or vgg16.
    def architecture(strategy)
      strategy == "vgg16_feature_extractor" ? "vgg16" : "resnet18"
    end

    # The name of the module a strategy replaces with a new head.
    def head(strategy)
      architecture(strategy) == "vgg16" ? Model::VGG16_HEAD : Model::HEAD
    end

    def head?(name, strategy)
      name.start_with?("#{head(strategy)}.")
    end

    def uses_pretrained?(strategy)
      strategy != "scratch"
    end

    # The model of strategy: pretrained backbone (unless scratch), new head, frozen backbone if
    # FROZEN_BACKBONE.
    def build_model(strategy, backbone_state, num_classes: 2)
      with_head = architecture(strategy) == "vgg16" ? :vgg16_with_head : :resnet18_with_head
      model = Model.public_send(with_head, uses_pretrained?(strategy) ? backbone_state : nil, num_classes: num_classes)
      prepare(strategy, model)
    end

    def prepare(strategy, model)
      if FROZEN_BACKBONE.include?(strategy)
        model.named_parameters.each { |name, param| param.requires_grad!(head?(name, strategy)) }
      end
      model
    end

    # Parameters that train, in named_parameters order: one group, or backbone then head for backbone_lr.
    def param_groups(strategy, model, lr:, backbone_lr:, head_lr:)
      trainable = model.named_parameters.select { |_, param| param.requires_grad }
      if strategy == "backbone_lr"
        head, backbone = trainable.partition { |name, _| head?(name, strategy) }
        return [{params: backbone.map(&:last), lr: backbone_lr}, {params: head.map(&:last), lr: head_lr}]
      end
      [{params: trainable.values, lr: lr}]
    end

    def make_optimizer(strategy, model, lr: 0.001, momentum: 0.9, backbone_lr: 1e-4, head_lr: 1e-3)
      groups = param_groups(strategy, model, lr: lr, backbone_lr: backbone_lr, head_lr: head_lr)
      Torch::Optim::SGD.new(groups, lr: lr, momentum: momentum)
    end

    # Decay LR by a factor of gamma every step_size epochs.
    def make_scheduler(optimizer, step_size: 7, gamma: 0.1)
      Torch::Optim::LRScheduler::StepLR.new(optimizer, step_size: step_size, gamma: gamma)
    end
  end
end
