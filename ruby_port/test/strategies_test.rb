# frozen_string_literal: true

require_relative "test_helper"

class StrategiesTest < Minitest::Test
  Strategies = Hymenoptera::Strategies
  Model = Hymenoptera::Model
  # ResNet-18's parameters: 11,176,512 in the backbone, and Linear(512, 2) = 1026 in the head.
  BACKBONE = 11_176_512
  HEAD = 1026

  def build(strategy)
    Strategies.build_model(strategy, Model.resnet18.state_dict)
  end

  def test_state_dict_keys_are_pythons
    keys = Model.resnet18_with_head.state_dict.keys
    assert_equal 122, keys.size
    assert_equal %w[conv1.weight bn1.weight bn1.bias bn1.running_mean bn1.running_var bn1.num_batches_tracked
                    layer1.0.conv1.weight], keys.first(7)
    assert_includes keys, "layer2.0.downsample.0.weight"
    assert_includes keys, "layer4.1.bn2.num_batches_tracked"
    assert_equal %w[fc.weight fc.bias], keys.last(2)
  end

  def test_finetune_and_scratch_train_every_parameter_in_one_group
    %w[finetune scratch].each do |strategy|
      model = build(strategy)
      assert_equal({trainable: BACKBONE + HEAD, frozen: 0, total: BACKBONE + HEAD}, Model.param_counts(model))
      groups = Strategies.make_optimizer(strategy, model, lr: 0.01, momentum: 0.5).param_groups
      assert_equal 1, groups.size
      assert_equal 62, groups[0][:params].size
      assert_equal [0.01, 0.5], groups[0].values_at(:lr, :momentum)
    end
  end

  def test_feature_extractor_trains_only_fc
    model = build("feature_extractor")
    trainable = model.named_parameters.select { |_, p| p.requires_grad }.keys
    assert_equal %w[fc.weight fc.bias], trainable
    assert_equal({trainable: HEAD, frozen: BACKBONE, total: BACKBONE + HEAD}, Model.param_counts(model))
    groups = Strategies.make_optimizer("feature_extractor", model).param_groups
    assert_equal [model.fc.weight, model.fc.bias].map(&:object_id), groups[0][:params].map(&:object_id)
  end

  def test_vgg16_feature_extractor_trains_only_its_new_classifier
    model = Strategies.build_model("vgg16_feature_extractor", nil)
    assert_equal %w[classifier.weight classifier.bias], model.named_parameters.select { |_, p| p.requires_grad }.keys
    assert_equal [25_088, 2], [model.classifier.in_features, model.classifier.out_features]
    assert_equal %w[Sequential AdaptiveAvgPool2d Linear], model.children.map { |m| m.class.name.split("::").last }
    groups = Strategies.make_optimizer("vgg16_feature_extractor", model).param_groups
    assert_equal [model.classifier.weight, model.classifier.bias].map(&:object_id), groups[0][:params].map(&:object_id)
  end

  def test_backbone_lr_has_the_backbone_then_the_head
    model = build("backbone_lr")
    groups = Strategies.make_optimizer("backbone_lr", model, lr: 0.5, backbone_lr: 1e-4, head_lr: 1e-3).param_groups
    assert_equal [1e-4, 1e-3], groups.map { |g| g[:lr] }
    assert_equal [60, 2], groups.map { |g| g[:params].size }
    names = model.named_parameters.to_a
    assert_equal names.first(60).map { |_, p| p.object_id }, groups[0][:params].map(&:object_id)
    assert_equal [model.fc.weight, model.fc.bias].map(&:object_id), groups[1][:params].map(&:object_id)
  end

  def test_pretrained_strategies_load_the_backbone_and_scratch_does_not
    state = Model.resnet18.state_dict
    assert Torch.equal(state["conv1.weight"], Strategies.build_model("finetune", state).conv1.weight.detach)
    refute Torch.equal(state["conv1.weight"], Strategies.build_model("scratch", state).conv1.weight.detach)
  end

  def test_batch_norm_counts_training_batches_as_pytorch_does
    model = Model.resnet18_with_head
    model.train
    Torch.no_grad { 2.times { model.call(Torch.randn(2, 3, 32, 32)) } }
    model.eval
    Torch.no_grad { model.call(Torch.randn(2, 3, 32, 32)) }
    assert_equal 2, model.state_dict["bn1.num_batches_tracked"].item
    assert_equal 2, model.state_dict["layer3.1.bn2.num_batches_tracked"].item
  end

  def test_forward_trace_ends_in_the_models_output
    model = Model.resnet18_with_head.eval
    input = Torch.randn(2, 3, 64, 64)
    trace = Torch.no_grad { Model.forward_trace(model, input) }
    assert_equal Model::FORWARD_ORDER, trace.keys
    assert_equal [2, 512], trace["flatten"].shape
    assert Torch.equal(Torch.no_grad { model.call(input) }, trace["fc"])
    assert trace["bn1"].lt(0).any.item, "bn1's traced output keeps its negative values (ReLU runs in place)"
    assert Torch.equal(trace["bn1"].clamp(min: 0), trace["relu"])
  end
end
