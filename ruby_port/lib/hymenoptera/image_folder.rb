# frozen_string_literal: true

module Hymenoptera
  # TorchVision::Datasets::ImageFolder as torchvision has it:
  # - with a `loader:` argument, which torchvision-ruby 0.3.0 lacks (it always hands
  #   Vips::Image.new_from_file's bands, whatever they are, to the transforms); the tutorial's data
  #   goes through Data.rgb_loader: 8-bit RGB, as PIL's loader gives;
  # - with the images of nested folders too, in torchvision's order (sorted(os.walk(class folder)),
  #   each folder's files sorted); torchvision-ruby lists only a class folder's top level;
  # - with getitems(indices), PyTorch 2's Dataset.__getitems__, which the port's DataLoader uses to
  #   fetch a batch: its files decoded on Threads.count threads at once (libvips decodes without
  #   Ruby's lock), then transformed one by one in order, so that the random transforms draw
  #   exactly what [] would have drawn.
  class ImageFolder < TorchVision::Datasets::ImageFolder
    def initialize(root, transform: nil, loader: RGBLoader.method(:load))
      super(root, transform: transform)
      @loader = loader
    end

    # [[sample, target], ...] for the indices: the same as indices.map { |i| self[i] }.
    def getitems(indices)
      images = load_all(indices.map { |index| @samples[index].first })
      indices.zip(images).map do |index, image|
        target = @samples[index].last
        [@transform ? @transform.call(image) : image, @target_transform ? @target_transform.call(target) : target]
      end
    end

    private

    # The loader's result for each path, from up to Threads.count threads; the first failure (in
    # the order of paths) is raised.
    def load_all(paths)
      workers = [Threads.count, paths.size].min
      return paths.map { |path| @loader.call(path) } if workers <= 1

      queue = Queue.new
      paths.each_index { |k| queue << k }
      queue.close
      results = Array.new(paths.size)
      Array.new(workers) do
        Thread.new do
          while (k = queue.pop)
            results[k] = begin
              [:ok, @loader.call(paths[k])]
            rescue StandardError => e
              [:error, e]
            end
          end
        end
      end.each(&:join)
      results.map { |status, value| status == :ok ? value : raise(value) }
    end

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
