# frozen_string_literal: true

module Hymenoptera
  # ResNet-18 (and VGG-16) with a new two-class head, and ResNet-18's forward pass written out module
  # by module (mirrors reference_py/model.py).
  module Model
    FORWARD_ORDER = %w[
      conv1 bn1 relu maxpool
      layer1.0 layer1.1 layer2.0 layer2.1 layer3.0 layer3.1 layer4.0 layer4.1
      avgpool flatten fc
    ].freeze
    HEAD = "fc"
    VGG16_HEAD = "classifier"
    VGG16_FEATURES = 512 * 7 * 7 # what VGG-16's features and avgpool give the classifier: 25,088
    VGG16_FORWARD_ORDER = [*Array.new(31) { |index| "features.#{index}" }, "avgpool", "flatten", "classifier"].freeze
    FORWARD_ORDERS = {"resnet18" => FORWARD_ORDER, "vgg16" => VGG16_FORWARD_ORDER}.freeze
    HEAD_FEATURES = {"resnet18" => 512, "vgg16" => VGG16_FEATURES}.freeze # the new head's in_features

    module_function

    # torchvision-ruby's ResNet-18 (1000 classes).
    def resnet18
      TorchVision::Models::ResNet18.new
    end

    # ResNet-18, loaded with backbone_state (1000-class) if given, fc replaced by Linear(512, n).
    def resnet18_with_head(backbone_state = nil, num_classes: 2)
      model = resnet18
      model.load_state_dict(backbone_state) if backbone_state
      num_ftrs = model.fc.in_features
      model.fc = Torch::NN::Linear.new(num_ftrs, num_classes)
      model
    end

    # torchvision-ruby's VGG-16, loaded with backbone_state (1000-class) if given, its whole classifier
    # replaced by Linear(25088, n).
    def vgg16_with_head(backbone_state = nil, num_classes: 2)
      model = TorchVision::Models::VGG16.new
      model.load_state_dict(backbone_state) if backbone_state
      model.classifier = Torch::NN::Linear.new(VGG16_FEATURES, num_classes)
      model
    end

    # The new fc layer, initialised from seed (what the fixtures' `initial` holds).
    def seeded_head(seed, in_features: 512, num_classes: 2)
      Torch.manual_seed(seed)
      Torch::NN::Linear.new(in_features, num_classes)
    end

    # The output of every module in FORWARD_ORDER, computing ResNet#forward step by step. As in
    # Python, outputs are not copied: the in-place ReLU also overwrites the tensor recorded for bn1.
    def forward_trace(model, x, order = FORWARD_ORDER)
      order.to_h do |name|
        x = name == "flatten" ? Torch.flatten(x, 1) : submodule(model, name).call(x)
        [name, x.clone] # a copy: the in-place ReLU would overwrite bn1's output
      end
    end

    # model.layer1[0] for "layer1.0".
    def submodule(model, path)
      path.split(".").reduce(model) { |mod, name| mod.named_children.fetch(name) }
    end

    # Scalar parameters that train, that are frozen, and in all.
    def param_counts(model)
      trainable = model.parameters.select(&:requires_grad).sum(&:numel)
      total = model.parameters.sum(&:numel)
      {trainable: trainable, frozen: total - trainable, total: total}
    end
  end
end
