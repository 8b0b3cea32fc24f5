# frozen_string_literal: true

# Fix: torchvision-ruby 0.3.0, TorchVision::Datasets::ImageFolder (lib/torchvision/datasets/image_folder.rb)
# Bug: it takes no loader: and hands the file's own bands to the transforms (a grayscale PNG stays
#   one band, where PIL's loader makes RGB), lists only the top level of each class folder, and takes
#   a class folder without a valid file (a RuntimeError only when every class has none)
# Reproduction:
#   root = Dir.mktmpdir
#   Dir.mkdir(File.join(root, "ants"))
#   Vips::Image.black(2, 2).write_to_file(File.join(root, "ants", "gray.png"))
#   TorchVision::Datasets::ImageFolder.new(root, transform: TorchVision::Transforms::ToTensor.new)[0][0].shape[0]
# Upstream gives: 1
# Python gives: 3
# In Python: torchvision.datasets.ImageFolder(root, transform=transforms.ToTensor())[0][0].shape[0]

require "torchvision"
require_relative "../../torch/tensor_memory"
require_relative "../../image/rgb_loader"

module PytorchParity
  # torchvision.datasets.ImageFolder as torchvision 0.14 has it:
  # - with a `loader:` argument whose default is PIL's, Image.open(path).convert("RGB") (Image::RGBLoader:
  #   a uint8 tensor [H, W, 3]); torchvision-ruby's hands libvips' bands, whatever they are, on;
  # - with the samples of torchvision's make_dataset: every entry below a class folder that is not a
  #   folder and whose name has an image extension, nested and hidden folders' too, links to folders
  #   followed, in its order (sorted(os.walk(class folder, followlinks=True)), each folder's names
  #   sorted); torchvision-ruby lists only a class folder's top level (and folders named *.jpg);
  # - refusing a class folder without a valid file, with torchvision's FileNotFoundError and its message
  #   (FileNotFoundError below); torchvision-ruby raises only when no class has one, its own RuntimeError.
  # Each sample is made fresh from its file, and its decoded image is freed once transformed
  # (torch/tensor_memory.rb): a loader must return a new image at each call, as a file loader does.
  # A DataLoader may therefore free the samples it has batched (fresh_samples?).
  module ImageFolderAsTorchvision
    # Python's FileNotFoundError, as torchvision raises it: an Errno::ENOENT (Python's FileNotFoundError is the
    # OSError of errno ENOENT, so `rescue Errno::ENOENT` and `rescue SystemCallError` catch it where Python's
    # `except FileNotFoundError` and `except OSError` would), whose message is torchvision's alone, without the
    # "No such file or directory - " that Errno::ENOENT.new(message) puts before it.
    class FileNotFoundError < Errno::ENOENT
      def initialize(message)
        super()
        @detail = message
      end

      def to_s = @detail
    end

    def initialize(root, transform: nil, target_transform: nil, loader: nil, is_valid_file: nil)
      super(root, transform: transform, target_transform: target_transform, is_valid_file: is_valid_file)
      @loader = loader || Image::RGBLoader.method(:load)
    end

    def [](index)
      path, target = @samples[index]
      image = @loader.call(path)
      sample = image
      if @transform
        sample = @transform.call(image)
        TensorMemory.free_input(image, sample) if image.is_a?(Torch::Tensor) && sample.is_a?(Torch::Tensor)
      end
      [sample, @target_transform ? @target_transform.call(target) : target]
    end

    # Whether the samples are new tensors, which only their caller holds.
    def fresh_samples? = true

    private

    # torchvision's make_dataset. ImageFolder passes it the extensions only without is_valid_file (torchvision-ruby
    # passes both), and only then does the error list them.
    def make_dataset(directory, class_to_idx, extensions, is_valid_file)
      extensions = nil if is_valid_file
      valid = is_valid_file || ->(path) { has_file_allowed_extension(path, extensions) }
      instances = class_to_idx.keys.sort.flat_map do |target_class|
        target_dir = File.join(File.expand_path(directory), target_class)
        next [] unless File.directory?(target_dir)

        walk(target_dir).sort_by(&:first).flat_map do |folder, names|
          names.sort.map { |name| File.join(folder, name) }.select { |path| valid.call(path) }
               .map { |path| [path, class_to_idx[target_class]] }
        end
      end
      check_every_class_found(instances, class_to_idx, extensions)
      instances
    end

    def check_every_class_found(instances, class_to_idx, extensions)
      found = instances.map(&:last).uniq
      empty_classes = class_to_idx.reject { |_, index| found.include?(index) }.keys
      return if empty_classes.empty?

      message = "Found no valid file for the classes #{empty_classes.sort.join(", ")}. "
      message += "Supported extensions are: #{extensions.is_a?(String) ? extensions : extensions.join(", ")}" if extensions
      raise FileNotFoundError, message
    end

    # os.walk(top, followlinks=True): [folder, the names in it that are not folders] for top and each folder
    # below it, links to folders followed (a loop ends where the path no longer resolves), a folder that
    # cannot be listed left out, as os.walk ignores the error.
    def walk(top)
      names = Dir.children(top)
    rescue SystemCallError
      []
    else
      folders, others = names.partition { |name| File.directory?(File.join(top, name)) }
      [[top, others]] + folders.flat_map { |name| walk(File.join(top, name)) }
    end
  end
end

TorchVision::Datasets::ImageFolder.prepend(PytorchParity::ImageFolderAsTorchvision)
