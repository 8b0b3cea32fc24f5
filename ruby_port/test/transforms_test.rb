# frozen_string_literal: true

require_relative "test_helper"
require "zlib"

class TransformsTest < Minitest::Test
  include Hymenoptera::TestSupport
  Data = Hymenoptera::Data
  T = TorchVision::Transforms
  F = TorchVision::Transforms::F

  # A 5x3 image (H=3, W=5) and what PIL 9.4 makes of it (printed by Python: np.asarray of
  # Image.fromarray(IMAGE).resize(size, Image.BILINEAR)).
  IMAGE = [[[0, 17, 34], [51, 68, 85], [102, 119, 136], [153, 170, 187], [204, 221, 238]],
           [[255, 16, 33], [50, 67, 84], [101, 118, 135], [152, 169, 186], [203, 220, 237]],
           [[254, 15, 32], [49, 66, 83], [100, 117, 134], [151, 168, 185], [202, 219, 236]]].freeze
  PIL_RESIZED = {
    [3, 2] => [[[76, 39, 56], [102, 119, 136], [182, 199, 216]], [[166, 37, 54], [100, 117, 134], [180, 197, 214]]],
    [7, 4] => [[[0, 17, 34], [29, 46, 63], [66, 83, 100], [102, 119, 136], [138, 155, 172], [175, 192, 209], [204, 221, 238]],
               [[159, 16, 33], [97, 45, 62], [65, 82, 99], [101, 118, 135], [137, 154, 171], [174, 191, 208], [203, 220, 237]],
               [[255, 16, 33], [138, 45, 62], [65, 82, 99], [101, 118, 135], [137, 154, 171], [174, 191, 208], [203, 220, 237]],
               [[254, 15, 32], [137, 44, 61], [64, 81, 98], [100, 117, 134], [136, 153, 170], [173, 190, 207], [202, 219, 236]]],
    [5, 1] => [[[182, 16, 33], [50, 67, 84], [101, 118, 135], [152, 169, 186], [203, 220, 237]]],
    [2, 3] => [[[51, 68, 85], [153, 170, 187]], [[131, 67, 84], [152, 169, 186]], [[130, 66, 83], [151, 168, 185]]]
  }.freeze

  def pixels(array)
    Torch.tensor(array, dtype: :uint8)
  end

  def noise(height, width, seed: 0)
    Torch.manual_seed(seed)
    Torch.randint(0, 256, [height, width, 3], dtype: :uint8)
  end

  def test_bilinear_resampling_is_pils_to_the_bit
    PIL_RESIZED.each do |(width, height), expected|
      assert_equal expected, PytorchParity::Image::Resample.bilinear(pixels(IMAGE), width, height).to_a, "#{width}x#{height}"
    end
    # a crop is resampled as the view it is, strides and all
    assert_equal PIL_RESIZED[[2, 3]], F.resize(F.crop(pixels([IMAGE[0]] + IMAGE), 1, 0, 3, 5), [3, 2]).to_a
  end

  def test_resize_sizes_are_torchvisions
    assert_equal [328, 256, 3], F.resize(noise(257, 200), 256).shape
    assert_equal [256, 341, 3], F.resize(noise(375, 500), 256).shape
    assert_equal [256, 18_731, 3], T::Resize.new(256).call(noise(41, 3000)).shape
    assert_equal [256, 256, 3], T::Resize.new(256).call(noise(1, 1)).shape
    image = noise(256, 300)
    assert_same image, F.resize(image, 256), "an image already at the size is returned as it is"
  end

  def test_center_crop_pads_with_black_and_rounds_half_to_even_like_python
    image = pixels([[[0, 29, 58], [87, 116, 145], [174, 203, 232]], [[5, 34, 63], [92, 121, 150], [179, 208, 237]]])
    black = [0, 0, 0]
    assert_equal [[black] * 4, [[0, 29, 58], [87, 116, 145], [174, 203, 232], black],
                  [[5, 34, 63], [92, 121, 150], [179, 208, 237], black], [black] * 4], T::CenterCrop.new(4).call(image).to_a
    # int(round(0.5)) is 0 in Python: the top left pixel stays
    assert_equal [[[0, 29, 58], [87, 116, 145]]], T::CenterCrop.new([1, 2]).call(image).to_a
    wide = noise(256, 341)
    assert Torch.equal(wide[16...240, 58...282], T::CenterCrop.new(224).call(wide)) # int(round(58.5)) = 58
  end

  def test_random_resized_crop_draws_pythons_boxes
    # RandomResizedCrop.get_params after torch.manual_seed (printed by Python)
    image = Torch.empty(200, 300, 3, dtype: :uint8)
    Torch.manual_seed(3)
    assert_equal [[25, 123, 79, 63], [0, 127, 199, 155], [6, 27, 173, 217]],
                 Array.new(3) { T::RandomResizedCrop.new(224).params(image, [0.08, 1.0], [3.0 / 4, 4.0 / 3]) }
    strip = Torch.empty(41, 3000, 3, dtype: :uint8) # ten misses, then the central crop
    Torch.manual_seed(0)
    assert_equal [[0, 1472, 41, 55]] * 3, Array.new(3) { T::RandomResizedCrop.new(224).params(strip, [0.08, 1.0], [3.0 / 4, 4.0 / 3]) }
  end

  def test_random_horizontal_flip_draws_pythons_flips
    image = pixels(IMAGE)
    flip = T::RandomHorizontalFlip.new
    Torch.manual_seed(5)
    flips = Array.new(8) { Torch.equal(flip.call(image), image.flip(1)) }
    assert_equal [false, true, false, false, false, true, true, false], flips # printed by Python
  end

  def test_to_tensor_and_normalize_give_pythons_floats
    gray = pixels([[[51, 102, 204]] * 8] * 8)
    to_tensor = T::ToTensor.new.call(gray)
    assert_equal [3, 8, 8], to_tensor.shape
    assert_equal [0.20000000298023224, 0.4000000059604645, 0.800000011920929], to_tensor[0.., 0, 0].to_a
    normalized = T::Normalize.new(Data::MEAN, Data::STD).call(to_tensor)
    # F.normalize(F.to_tensor(...)) in Python, as float32 bit patterns
    assert_equal [3_214_888_228, 3_196_059_646, 1_071_653_994], normalized[0.., 3, 3].contiguous.view(:int32).to_a.map { |v| v % (1 << 32) }
  end

  def test_pipelines_take_any_geometry_pil_takes
    [[1, 1], [41, 3000], [3000, 41], [300, 200]].each do |height, width|
      Torch.manual_seed(0)
      %w[train val].each do |split|
        tensor = Data.data_transforms[split].call(noise(height, width))
        assert_equal [[3, 224, 224], :float32], [tensor.shape, tensor.dtype], "#{split} #{width}x#{height}"
      end
    end
  end

  def test_the_loader_gives_rgb_as_pil_does
    gray = PytorchParity::Image::RGBLoader.load(write_image(File.join(tmpdir, "l.jpg"), bands: 1))
    assert_equal [[30, 40, 3], :uint8], [gray.shape, gray.dtype]
    assert Torch.equal(gray[0.., 0.., 0], gray[0.., 0.., 2])
    rgba = PytorchParity::Image::RGBLoader.load(write_image(File.join(tmpdir, "rgba.png"), bands: 4))
    assert_equal [30, 40, 3], rgba.shape
    cmyk = pixels([[[62, 37, 246, 10]] * 2])
    # Pillow's convert("RGB") of C, M, Y, K = 62, 37, 246, 10 (printed by Python)
    assert_equal [[[185, 209, 9]] * 2], PytorchParity::Image::RGBLoader.cmyk_to_rgb(cmyk).to_a
  end

  def test_jpegs_decode_through_turbojpeg_as_through_libvips
    noise = (Vips::Image.gaussnoise(37, 23, mean: 128, sigma: 60) + Vips::Image.xyz(37, 23)[0] * 3).cast(:uchar)
    {"4:2:0" => [noise.bandjoin([noise.flip(:horizontal), noise.flip(:vertical)]), {Q: 90}],
     "4:4:4" => [noise.bandjoin([noise.flip(:vertical), noise]), {Q: 95, subsample_mode: :off}],
     "gray" => [noise, {Q: 90}]}.each do |name, (image, options)|
      path = File.join(tmpdir, "#{name.delete(":")}.jpg")
      image.jpegsave(path, **options)
      bytes = File.binread(path)
      header = PytorchParity::Image::TurboJPEG.header(bytes)
      assert_equal [37, 23, name == "gray" ? :gray : :ycbcr], header.to_a, name
      libvips = PytorchParity::Image::VipsTensor.pixels(PytorchParity::Image::VipsTensor.decode(bytes))
      libvips = libvips.expand(23, 37, 3) if name == "gray"
      pixels, damaged = PytorchParity::Image::TurboJPEG.decompress(bytes, header)
      assert Torch.equal(libvips, pixels.contiguous), name
      refute damaged, name
      assert Torch.equal(libvips, PytorchParity::Image::RGBLoader.load(path).contiguous), name
    end
  end

  def test_jpegs_are_refused_as_pil_refuses_them
    path = write_image(File.join(tmpdir, "whole.jpg"), width: 64, height: 48)
    bytes = File.binread(path)
    File.binwrite(File.join(tmpdir, "truncated.jpg"), bytes[0, bytes.bytesize / 2])
    error = assert_raises(Hymenoptera::UserError) { Data.rgb_loader(File.join(tmpdir, "truncated.jpg")) }
    assert_match(/truncated\.jpg: not a readable image \(.+\); replace or delete the file\z/, error.message)
    assert_equal [48, 64, 3], Data.rgb_loader(path).shape, "a failure leaves the decoder usable"
    # the same JPEG claiming 20000 x 9000 pixels in its frame header: refused before any decoding
    frame = 2 # the segments after SOI, up to the baseline frame header (SOF0)
    frame += 2 + bytes[frame + 2, 2].unpack1("n") until bytes[frame, 2] == "\xFF\xC0".b
    huge = bytes.dup
    huge[frame + 5, 4] = [9000, 20_000].pack("nn")
    File.binwrite(File.join(tmpdir, "huge.jpg"), huge)
    error = assert_raises(Hymenoptera::UserError) { Data.rgb_loader(File.join(tmpdir, "huge.jpg")) }
    assert_match(/huge\.jpg: not a readable image \(Image size \(180000000 pixels\) exceeds limit of 178956970 pixels, /,
                 error.message)
  end

  def test_decoding_outlives_the_files_bytes
    path = write_image(File.join(tmpdir, "big.jpg"), width: 300, height: 200)
    expected = PytorchParity::Image::RGBLoader.load(path)
    image = PytorchParity::Image::VipsTensor.decode(File.binread(path)) # libvips reads these bytes lazily
    GC.start
    GC.compact if GC.respond_to?(:compact)
    assert Torch.equal(expected, PytorchParity::Image::VipsTensor.pixels(image))
  end

  def test_the_loader_refuses_what_pil_refuses
    # a black 20000 x 9000 grayscale PNG (180 kB): beyond PIL's decompression-bomb limit of 178,956,970 pixels
    width, height = 20_000, 9000
    deflate = Zlib::Deflate.new(Zlib::BEST_SPEED)
    row = "\0".b * (width + 1) # filter type 0, then the row
    pixels = height.times.map { deflate.deflate(row) }.join + deflate.finish
    chunk = ->(type, data) { [data.bytesize].pack("N") + type + data + [Zlib.crc32(type + data)].pack("N") }
    path = File.join(tmpdir, "bomb.png")
    File.binwrite(path, "\x89PNG\r\n\x1a\n".b + chunk.call("IHDR", [width, height, 8, 0, 0, 0, 0].pack("NNC5")) +
                        chunk.call("IDAT", pixels) + chunk.call("IEND", ""))
    error = assert_raises(Hymenoptera::UserError) { Data.rgb_loader(path) }
    assert_equal "#{path}: not a readable image (Image size (180000000 pixels) exceeds limit of 178956970 pixels, " \
                 "could be decompression bomb DOS attack.); replace or delete the file", error.message
    error = assert_raises(Hymenoptera::UserError) { Data.rgb_loader(File.join(tmpdir, "nowhere.jpg")) }
    assert_equal "#{File.join(tmpdir, "nowhere.jpg")}: image not found; check the path", error.message
  end

  def test_the_data_loader_batches_in_the_samplers_order
    dataset = Torch::Utils::Data::TensorDataset.new(Torch.arange(10).float, Torch.arange(10))
    def dataset.[](index) = super.then { |x, y| [x, y.item] }
    sampler = Torch::Utils::Data::RandomSampler.new(Array.new(10), generator: Torch::Generator.new.manual_seed(0))
    loader = Torch::Utils::Data::DataLoader.new(dataset, batch_size: 4, sampler: sampler)
    batches = loader.to_a
    assert_equal [4, 4, 2], batches.map { |inputs, _| inputs.size(0) }
    assert_equal [4, 1, 7, 5, 3, 9, 0, 8, 6, 2], batches.flat_map { |_, labels| labels.to_a }
    assert_equal :int64, batches[0][1].dtype
    assert_equal 3, loader.size
  end

  def test_sampler_draws_pythons_orders
    sampler = Hymenoptera::Data::RecordingSampler.new(Array.new(10), generator: Torch::Generator.new.manual_seed(0))
    3.times { sampler.to_a }
    assert_equal [[4, 1, 7, 5, 3, 9, 0, 8, 6, 2], [4, 0, 8, 5, 9, 1, 6, 3, 7, 2], [2, 9, 1, 7, 6, 8, 4, 5, 0, 3]],
                 sampler.orders
  end

  def test_image_folder_takes_nested_images_in_torchvisions_order
    root = File.join(tmpdir, "train")
    %w[ants/b.jpg ants/a/x.jpg ants/a.jpg ants/c/y.png ants/notes.txt bees/z.jpg ants/.hidden/h.jpg bees/.dot.png].each do |name|
      path = File.join(root, name)
      FileUtils.mkdir_p(File.dirname(path))
      name.end_with?(".txt") ? File.write(path, "not an image") : write_image(path)
    end
    File.mkfifo(File.join(root, "ants", "pipe.jpg"))
    File.symlink("../bees", File.join(root, "ants", "up"))
    samples = TorchVision::Datasets::ImageFolder.new(root).instance_variable_get(:@samples)
    # sorted(os.walk(..., followlinks=True)): the class folder's own files first (a named pipe too), then each
    # subfolder's, hidden and linked ones too, folders sorted (printed by Python: torchvision's samples)
    assert_equal [["ants/a.jpg", 0], ["ants/b.jpg", 0], ["ants/pipe.jpg", 0], ["ants/.hidden/h.jpg", 0], ["ants/a/x.jpg", 0],
                  ["ants/c/y.png", 0], ["ants/up/.dot.png", 0], ["ants/up/z.jpg", 0], ["bees/.dot.png", 1], ["bees/z.jpg", 1]],
                 samples.map { |path, target| [path.delete_prefix("#{root}/"), target] }
  end

  def test_image_folder_refuses_a_class_without_a_valid_file_as_torchvision_does
    root = File.join(tmpdir, "train")
    write_image(File.join(root, "ants", "a.jpg"))
    write_image(File.join(root, "wasps", "w.gif"))
    FileUtils.mkdir_p(File.join(root, "bees", "empty"))
    error = assert_raises(Errno::ENOENT) { TorchVision::Datasets::ImageFolder.new(root) }
    # torchvision 0.14's make_dataset: a FileNotFoundError naming every such class, then the extensions it takes
    assert_equal "Found no valid file for the classes bees, wasps. Supported extensions are: " \
                 ".jpg, .jpeg, .png, .ppm, .bmp, .pgm, .tif, .tiff, .webp", error.message
    assert_equal Errno::ENOENT::Errno, error.errno
    # with is_valid_file, ImageFolder passes no extensions, and the message ends after the classes
    error = assert_raises(Errno::ENOENT) do
      TorchVision::Datasets::ImageFolder.new(root, is_valid_file: ->(path) { path.end_with?("a.jpg") })
    end
    assert_equal "Found no valid file for the classes bees, wasps. ", error.message
  end
end
