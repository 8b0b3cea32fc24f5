# frozen_string_literal: true

require_relative "test_helper"

class TransformsTest < Minitest::Test
  include Hymenoptera::TestSupport
  Data = Hymenoptera::Data
  F = TorchVision::Transforms::F

  def image(width, height)
    Vips::Image.new_from_file(write_image(File.join(tmpdir, "#{width}x#{height}.png"), width: width, height: height))
  end

  def test_train_and_val_pipelines_give_normalized_224_squares
    img = image(300, 200)
    Torch.manual_seed(0)
    %w[train val].each do |split|
      tensor = Data.data_transforms[split].call(img)
      assert_equal [3, 224, 224], tensor.shape, split
      assert_equal :float32, tensor.dtype
    end
  end

  def test_normalize_subtracts_imagenets_mean_and_divides_by_its_std
    gray = Vips::Image.black(8, 8, bands: 3).new_from_image([51, 102, 204]).cast(:uchar)
    tensor = F.normalize(F.to_tensor(gray), Data::MEAN, Data::STD)
    expected = [51, 102, 204].each_with_index.map { |v, c| ((v / 255.0) - Data::MEAN[c]) / Data::STD[c] }
    expected.each_with_index { |v, c| assert_in_delta v, tensor[c, 3, 3].item, 1e-6 }
  end

  def test_resize_gives_torchvisions_size_where_torchvision_ruby_is_a_pixel_short
    img = image(200, 257)
    assert_equal [256, 328], Hymenoptera::Transforms::Resize.new(256).call(img).size
    assert_equal [255, 328], TorchVision::Transforms::Resize.new(256).call(img).size
    assert_equal [341, 256], Hymenoptera::Transforms::Resize.new(256).call(image(500, 375)).size
  end

  def test_center_crop_rounds_half_to_even_like_python
    img = image(341, 256)
    cropped = Hymenoptera::Transforms::CenterCrop.new(224).call(img)
    assert_equal [224, 224], cropped.size
    # Python: int(round(58.5)) = 58; torchvision-ruby: 59
    assert Torch.equal(F.to_tensor(img)[0.., 16...240, 58...282], F.to_tensor(cropped))
    refute Torch.equal(F.to_tensor(TorchVision::Transforms::CenterCrop.new(224).call(img)), F.to_tensor(cropped))
    assert_equal [16, 58], Hymenoptera::Transforms::CenterCrop.offsets(341, 256, 224, 224)
    assert_equal [224, 224], Hymenoptera::Transforms::CenterCrop.new(224).call(image(100, 300)).size
  end

  def test_the_loader_gives_rgb_as_pil_does
    gray = Hymenoptera::RGBLoader.load(write_image(File.join(tmpdir, "l.jpg"), bands: 1))
    assert_equal [3, :uchar], [gray.bands, gray.format]
    assert_equal gray.extract_band(0).to_a, gray.extract_band(2).to_a
    rgba = Hymenoptera::RGBLoader.load(write_image(File.join(tmpdir, "rgba.png"), bands: 4))
    assert_equal 3, rgba.bands
    cmyk = Vips::Image.black(2, 1, bands: 4).new_from_image([62, 37, 246, 10]).cast(:uchar).copy(interpretation: :cmyk)
    # Pillow's convert("RGB") of C, M, Y, K = 62, 37, 246, 10 (printed by Python)
    assert_equal [[[185, 209, 9]] * 2], Hymenoptera::RGBLoader.cmyk_to_rgb(cmyk).to_a
  end

  # The orders and crops PyTorch 1.13 draws for the same seeds (printed by Python).
  def test_sampler_and_random_resized_crop_draw_pythons_numbers
    sampler = Hymenoptera::RandomSampler.new(10, generator: Torch::Generator.new.manual_seed(0))
    3.times { sampler.to_a }
    assert_equal [[4, 1, 7, 5, 3, 9, 0, 8, 6, 2], [4, 0, 8, 5, 9, 1, 6, 3, 7, 2], [2, 9, 1, 7, 6, 8, 4, 5, 0, 3]],
                 sampler.orders
    Torch.manual_seed(3)
    crop = TorchVision::Transforms::RandomResizedCrop.new(224)
    params = Array.new(3) { crop.params(image(300, 200), [0.08, 1.0], [3.0 / 4, 4.0 / 3]) }
    assert_equal [[25, 123, 79, 63], [0, 127, 199, 155], [6, 27, 173, 217]], params
  end

  def test_the_data_loader_batches_in_the_samplers_order
    dataset = Torch::Utils::Data::TensorDataset.new(Torch.arange(10).float, Torch.arange(10))
    def dataset.[](index) = super.then { |x, y| [x, y.item] }
    sampler = Hymenoptera::RandomSampler.new(10, generator: Torch::Generator.new.manual_seed(0))
    loader = Hymenoptera::DataLoader.new(dataset, batch_size: 4, sampler: sampler)
    batches = loader.to_a
    assert_equal [4, 4, 2], batches.map { |inputs, _| inputs.size(0) }
    assert_equal [4, 1, 7, 5, 3, 9, 0, 8, 6, 2], batches.flat_map { |_, labels| labels.to_a }
    assert_equal :int64, batches[0][1].dtype
    assert_equal 3, loader.size
  end

  def test_image_folder_takes_nested_images_in_torchvisions_order
    root = File.join(tmpdir, "train")
    %w[ants/b.jpg ants/a/x.jpg ants/a.jpg ants/c/y.png ants/notes.txt bees/z.jpg].each do |name|
      path = File.join(root, name)
      FileUtils.mkdir_p(File.dirname(path))
      name.end_with?(".txt") ? File.write(path, "not an image") : write_image(path)
    end
    samples = Hymenoptera::ImageFolder.new(root).instance_variable_get(:@samples)
    # sorted(os.walk(...)): the class folder's own files first, then each subfolder's, folders sorted
    assert_equal [["ants/a.jpg", 0], ["ants/b.jpg", 0], ["ants/a/x.jpg", 0], ["ants/c/y.png", 0], ["bees/z.jpg", 1]],
                 samples.map { |path, target| [path.delete_prefix("#{root}/"), target] }
  end
end
