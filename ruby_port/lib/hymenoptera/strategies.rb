# frozen_string_literal: true

module Hymenoptera
  # The four ways to train: which parameters learn, at which learning rate (mirrors
  # reference_py/strategies.py).
  #   finetune           all parameters, SGD(lr, momentum)                     (the tutorial's model_ft)
  #   feature_extractor  only fc; the backbone has requires_grad = false       (the tutorial's model_conv)
  #   backbone_lr        all parameters in two groups: backbone at backbone_lr, fc at head_lr
  #   scratch            no pretrained weights; all parameters, SGD(lr, momentum)
  module Strategies
    STRATEGIES = %w[finetune feature_extractor backbone_lr scratch].freeze

    module_function

    def head?(name)
      name.start_with?("#{Model::HEAD}.")
    end

    def uses_pretrained?(strategy)
      strategy != "scratch"
    end

    # ResNet-18 for strategy: pretrained backbone (unless scratch), new fc, frozen backbone if
    # feature_extractor.
    def build_model(strategy, backbone_state, num_classes: 2)
      model = Model.resnet18_with_head(uses_pretrained?(strategy) ? backbone_state : nil, num_classes: num_classes)
      prepare(strategy, model)
    end

    def prepare(strategy, model)
      if strategy == "feature_extractor"
        model.named_parameters.each { |name, param| param.requires_grad!(head?(name)) }
      end
      model
    end

    # Parameters that train, in named_parameters order: one group, or backbone then head for backbone_lr.
    def param_groups(strategy, model, lr:, backbone_lr:, head_lr:)
      trainable = model.named_parameters.select { |_, param| param.requires_grad }
      if strategy == "backbone_lr"
        head, backbone = trainable.partition { |name, _| head?(name) }
        return [{params: backbone.map(&:last), lr: backbone_lr}, {params: head.map(&:last), lr: head_lr}]
      end
      [{params: trainable.values, lr: lr}]
    end

    def make_optimizer(strategy, model, lr: 0.001, momentum: 0.9, backbone_lr: 1e-4, head_lr: 1e-3)
      groups = param_groups(strategy, model, lr: lr, backbone_lr: backbone_lr, head_lr: head_lr)
      SGD.new(groups, lr: lr, momentum: momentum)
    end

    # Decay LR by a factor of gamma every step_size epochs.
    def make_scheduler(optimizer, step_size: 7, gamma: 0.1)
      StepLR.new(optimizer, step_size: step_size, gamma: gamma)
    end
  end
end
