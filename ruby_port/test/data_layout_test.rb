# frozen_string_literal: true

require_relative "test_helper"

# The data dir's checks that run before LibTorch loads (DataLayout; the twin: reference_py/tests/test_data_layout.py).
class DataLayoutTest < Minitest::Test
  # What the trainer uses before LibTorch loads: requiring it must not require torch or torchvision.
  BEFORE_LIBTORCH = %w[cli data_layout weights train].freeze

  def test_the_image_extensions_are_torchvision_rubys
    assert_equal TorchVision::Datasets::ImageFolder::IMG_EXTENSIONS, Hymenoptera::DataLayout::IMG_EXTENSIONS
  end

  def test_what_the_trainer_checks_first_loads_without_torch
    lib = File.expand_path("../lib/hymenoptera", __dir__)
    code = BEFORE_LIBTORCH.map { |name| "require #{File.join(lib, name).dump}\n" }.join +
           'puts [defined?(Torch), defined?(TorchVision)].compact.inspect'
    stdout, stderr, status = Open3.capture3(RbConfig.ruby, "-e", code)
    assert status.success?, stderr
    assert_equal "[]", stdout.strip, "loaded with #{BEFORE_LIBTORCH.join(", ")}"
  end
end
