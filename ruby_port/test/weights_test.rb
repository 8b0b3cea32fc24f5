# frozen_string_literal: true

require_relative "test_helper"

# What load_weights trusts of a checkpoint (the twin: reference_py/tests/test_weights.py): a dtype conversion is
# said in one line, NaN or infinite weights are refused, "imagenet" needs the sha256 of torchvision's file.
class WeightsTest < Minitest::Test
  include Hymenoptera::TestSupport
  Weights = Hymenoptera::Weights

  def state
    Torch.manual_seed(3)
    Hymenoptera::Model.resnet18.state_dict.transform_values(&:detach)
  end

  # A checkpoint as given, with a net.pth.json that matches it (the checks below are of its content).
  def saved_with_provenance(name, state_dict, provenance: "user-supplied", source_sha256: nil)
    path = File.join(tmpdir, name)
    Torch.save(state_dict, path)
    File.write(Weights.provenance_path(path), JSON.generate({provenance: provenance, source: "a test", source_sha256: source_sha256,
                                                             sha256: Hymenoptera::Checksums.file_sha256(path)}))
    path
  end

  # The same weights make the same bytes, as Python's save_state_dict makes them: an archive named
  # "archive", tensors that do not require grad.
  def test_save_state_dict_writes_the_same_bytes_each_time
    model = Hymenoptera::Model.resnet18
    paths = %w[a b].map { |name| File.join(tmpdir, name, "best.pth") }
    paths.each do |path|
      FileUtils.mkdir_p(File.dirname(path))
      Weights.save_state_dict(path, model.state_dict)
    end
    assert_equal File.binread(paths[0]), File.binread(paths[1])
    assert_equal "archive/data.pkl", File.binread(paths[0], 16, 30)
    refute Torch.load(paths[0]).values.any?(&:requires_grad)
  end

  def test_the_written_out_urls_are_torchvision_rubys
    assert_equal({"resnet18" => TorchVision::Models::ResNet::MODEL_URLS.fetch("resnet18"),
                  "vgg16" => TorchVision::Models::VGG::MODEL_URLS.fetch("vgg16")}, Weights::IMAGENET_URLS)
  end

  def test_a_dtype_conversion_is_said_in_one_line
    %i[float16 float64].each do |dtype|
      floats = state.select { |_, tensor| tensor.floating_point? }.keys
      path = saved_with_provenance("#{dtype}.pth", state.to_h { |k, v| [k, floats.include?(k) ? v.to(dtype) : v] })
      said = StringIO.new
      $stderr = said
      weights = Weights.load_weights(path)
      $stderr = STDERR
      assert_equal ["weights: #{path}: entries converted to the model's dtype as they load: " \
                    "#{floats.size} #{dtype} to float32 (first: #{floats.first})"], said.string.lines.map(&:chomp)
      model = Hymenoptera::Model.resnet18
      model.load_state_dict(weights.state_dict)
      assert_equal :float32, model.conv1.weight.dtype
    ensure
      $stderr = STDERR
    end
  end

  def test_weights_that_are_not_finite_are_refused
    weights = state
    weights["fc.bias"][3] = Float::INFINITY
    weights["layer1.0.conv1.weight"][0, 0, 0, 0] = Float::NAN
    path = saved_with_provenance("net.pth", weights)
    error = assert_raises(Hymenoptera::UserError) { Weights.load_weights(path) }
    assert error.message.start_with?("#{path}: 2 of its #{weights.size} entries hold NaN or infinite values " \
                                     "(first: layer1.0.conv1.weight, fc.bias); these weights cannot train: make a new file"), error.message
  end

  # expected_entries builds the model uninitialised: the same names, shapes and dtypes, the generator untouched,
  # and Torch::NN::Init's fills back once it is built (a model built then draws from the generator).
  def test_the_expected_entries_are_the_models_and_draw_nothing_from_the_generator
    {"resnet18" => -> { Hymenoptera::Model.resnet18 }, "vgg16" => -> { TorchVision::Models::VGG16.new }}.each do |arch, build|
      Weights.instance_variable_set(:@expected_entries, nil)
      Torch.manual_seed(7)
      entries = Weights.expected_entries(arch)
      drawn = Torch.rand(1).item
      Torch.manual_seed(7)
      assert_equal drawn, Torch.rand(1).item, "#{arch}: expected_entries drew from the generator"
      Torch.manual_seed(7)
      model = build.call
      refute_equal drawn, Torch.rand(1).item, "#{arch}: a model built afterwards drew nothing"
      assert_equal model.state_dict.map { |name, tensor| [name, [tensor.shape, tensor.dtype]] }, entries.to_a
    end
  end

  # Finiteness is checked FINITE_CHUNK values at a time: every chunk of a tensor, to its last value.
  def test_a_value_that_is_not_finite_is_found_in_the_last_chunk_of_a_tensor
    weights = state
    name = "layer4.1.conv2.weight"
    assert_operator weights[name].numel, :>, 2 * Weights::FINITE_CHUNK
    weights[name].view(-1)[-1] = Float::NAN
    path = saved_with_provenance("net.pth", weights)
    error = assert_raises(Hymenoptera::UserError) { Weights.load_weights(path) }
    assert error.message.start_with?("#{path}: 1 of its #{weights.size} entries hold NaN or infinite values (first: #{name})"),
           error.message
  end

  def test_imagenet_only_for_a_source_whose_sha256_is_torchvisions
    claimed = saved_with_provenance("claimed.pth", state, provenance: "imagenet")
    error = assert_raises(Hymenoptera::UserError) { Weights.load_weights(claimed) }
    assert error.message.start_with?("#{claimed}.json says imagenet, but the sha256 of its source (null) does not start " \
                                     "with f37072fd, as torchvision's resnet18-f37072fd.pth does; make a new file"), error.message
    made = saved_with_provenance("made.pth", state, provenance: "imagenet", source_sha256: "f37072fd#{"0" * 56}")
    assert_equal "imagenet", Weights.load_weights(made).provenance
  end
end
