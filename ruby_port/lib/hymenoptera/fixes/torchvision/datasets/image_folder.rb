# frozen_string_literal: true

# Fix: torchvision-ruby 0.3.0, TorchVision::Datasets::ImageFolder (lib/torchvision/datasets/image_folder.rb)
# Bug: it takes no loader: and hands the file's own bands to the transforms (a grayscale PNG stays
#   one band, where PIL's loader makes RGB), and lists only the top level of each class folder
# Reproduction:
#   root = Dir.mktmpdir
#   Dir.mkdir(File.join(root, "ants"))
#   Vips::Image.black(2, 2).write_to_file(File.join(root, "ants", "gray.png"))
#   TorchVision::Datasets::ImageFolder.new(root)[0][0].bands
# Upstream gives: 1
# Python gives: 3
# In Python: len(torchvision.datasets.ImageFolder(root)[0][0].getbands())

module Hymenoptera
  # TorchVision::Datasets::ImageFolder as torchvision has it:
  # - with a `loader:` argument, which torchvision-ruby 0.3.0 lacks (it always hands
  #   Vips::Image.new_from_file's bands, whatever they are, to the transforms); the tutorial's data
  #   goes through Data.rgb_loader: 8-bit RGB, as PIL's loader gives;
  # - with the images of nested folders too, in torchvision's order (sorted(os.walk(class folder)),
  #   each folder's files sorted); torchvision-ruby lists only a class folder's top level.
  # Each sample is made fresh from its file, and its decoded image is freed once transformed
  # (torch/tensor_memory.rb): a loader must return a new tensor at each call, as a file loader does.
  # A DataLoader may therefore free the samples it has batched (fresh_samples?).
  class ImageFolder < TorchVision::Datasets::ImageFolder
    def initialize(root, transform: nil, loader: RGBLoader.method(:load))
      super(root, transform: transform)
      @loader = loader
    end

    def [](index)
      path, target = @samples[index]
      image = @loader.call(path)
      sample = @transform ? @transform.call(image).tap { |output| TensorMemory.free_input(image, output) } : image
      [sample, @target_transform ? @target_transform.call(target) : target]
    end

    # Whether the samples are new tensors, which only their caller holds.
    def fresh_samples? = true

    private

    def make_dataset(directory, class_to_idx, extensions, _is_valid_file)
      class_to_idx.keys.sort.flat_map do |target_class|
        target_dir = File.join(File.expand_path(directory), target_class)
        next [] unless File.directory?(target_dir)

        subfolders = Dir.glob("**/", base: target_dir).map { |sub| sub.chomp("/") }.reject(&:empty?)
        folders = [target_dir] + subfolders.map { |sub| File.join(target_dir, sub) }
        folders.sort.flat_map do |folder|
          Dir.children(folder).sort.map { |name| File.join(folder, name) }
             .select { |path| File.file?(path) && has_file_allowed_extension(path, extensions) }
             .map { |path| [path, class_to_idx[target_class]] }
        end
      end
    end
  end
end
