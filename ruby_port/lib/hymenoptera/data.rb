# frozen_string_literal: true

module Hymenoptera
  # The tutorial's data: ImageFolder over train/ and val/, its transforms, DataLoaders of 4
  # (mirrors reference_py/data.py). A data dir is hymenoptera_data's layout: train/{ants,bees}/*.jpg
  # and val/{ants,bees}/*.jpg. Without --data-dir the generated stand-in is used (made by
  # reference_py/standin_data.py when missing).
  module Data
    SPLITS = %w[train val].freeze
    MEAN = [0.485, 0.456, 0.406].freeze
    STD = [0.229, 0.224, 0.225].freeze
    IMG_EXTENSIONS = TorchVision::Datasets::ImageFolder::IMG_EXTENSIONS
    STANDIN_DIR = PythonReference::STANDIN_DIR
    STANDIN_MARKER = "STANDIN.json"
    LAYOUT_HINT = "a data dir holds train/ and val/, each with one folder of images per class " \
                  "(hymenoptera_data: train/ants, train/bees, val/ants, val/bees)"

    module_function

    # The tutorial's transforms, torchvision-ruby's classes (made exact by pytorch_parity).
    def data_transforms
      t = TorchVision::Transforms
      {
        "train" => t::Compose.new([
          t::RandomResizedCrop.new(224),
          t::RandomHorizontalFlip.new,
          t::ToTensor.new,
          t::Normalize.new(MEAN, STD)
        ]),
        "val" => t::Compose.new([
          t::Resize.new(256),
          t::CenterCrop.new(224),
          t::ToTensor.new,
          t::Normalize.new(MEAN, STD)
        ])
      }
    end

    # Decode an image completely and convert it to RGB (grayscale, CMYK and palette images too): a
    # uint8 tensor [H, W, 3], np.asarray(PIL image)'s layout. Decoded here, as PIL's image.load(): a
    # truncated file fails now, not in the middle of training.
    def rgb_loader(path)
      PytorchParity::Image::RGBLoader.load(path)
    rescue Errno::ENOENT
      raise UserError, "#{Errors.display(path)}: image not found; check the path"
    rescue PytorchParity::Image::RGBLoader::WideSamples
      raise UserError, "#{Errors.display(path)}: #{PytorchParity::Image::RGBLoader::WIDE_MESSAGE}"
    rescue Vips::Error, PytorchParity::Image::TurboJPEG::Error => e
      detail = Errors.one_line(e.message)
      detail = "libvips could not decode it" if detail.empty? || detail == e.class.name # an empty error buffer
      raise UserError, "#{Errors.display(path)}: not a readable image (#{detail}); replace or delete the file"
    end

    # Every entry below folder (sorted, depth first), refusing what would make the two sides see
    # different data: a name that is not UTF-8, a symbolic link to a folder (it may loop), a link to nothing.
    def tree_entries(folder, &block)
      return enum_for(:tree_entries, folder) unless block

      Dir.children(folder).sort_by(&:b).each do |name|
        path = File.join(folder, name)
        unless name.dup.force_encoding(Encoding::UTF_8).valid_encoding?
          raise UserError, "#{Errors.display(path)}: the name is not valid UTF-8; rename it " \
                           "(the two sides would sort and show it differently)"
        end
        if File.symlink?(path)
          unless File.exist?(path)
            raise UserError, "#{Errors.display(path)} is a symbolic link to nothing (#{Errors.display(File.readlink(path))}); " \
                             "remove it or make it point to an image"
          end
          if File.directory?(path)
            raise UserError, "#{Errors.display(path)} is a symbolic link to a folder; the data dir's folders must be " \
                             "real folders (a link can loop): replace it with a copy of the folder"
          end
        end
        yield path
        tree_entries(path, &block) if File.directory?(path) && !File.symlink?(path)
      end
    end

    # What File.stat says a path is, for the files that are not images (a link is followed).
    SPECIAL_FILES = {"fifo" => "a named pipe (FIFO)", "socket" => "a socket", "characterSpecial" => "a character device",
                     "blockSpecial" => "a block device"}.freeze

    # Refuses a path ImageFolder would take (by its name) that is not a regular file: opening a named pipe waits
    # for a writer for ever, a socket cannot be opened, a device is read as if it were the image.
    def refuse_special_file(path)
      kind = SPECIAL_FILES[File.stat(path).ftype]
      return unless kind

      kind = "a symbolic link to #{kind} (#{Errors.display(File.readlink(path))})" if File.symlink?(path)
      raise UserError, "#{Errors.display(path)} is #{kind}, not an image file; ImageFolder takes every name with " \
                       "an image extension, and reading this one would hang or fail: remove it or rename it"
    end

    # The files ImageFolder takes from a class folder, in its order: as torchvision's make_dataset, every entry below
    # the folder (hidden ones and those of nested and hidden folders too) that is not a folder and whose name ends in
    # an image extension, folder by folder (sorted by path), each folder's sorted by name. One that is not a regular
    # file, nor a link to one, is refused (refuse_special_file).
    def image_files(folder)
      paths = tree_entries(folder).select { |path| !File.directory?(path) && path.downcase.end_with?(*IMG_EXTENSIONS) }
                                  .sort_by { |path| [File.dirname(path), File.basename(path)] }
      paths.each { |path| refuse_special_file(path) }
    end

    # The images ImageFolder takes from train/ or val/: each class folder's image_files, classes sorted.
    def split_images(folder)
      Dir.children(folder).select { |name| File.directory?(File.join(folder, name)) }.sort
         .flat_map { |name| image_files(File.join(folder, name)) }
    end

    # The class names, once train/ and val/ each hold the same class folders, none of them empty.
    def check_layout(data_dir)
      unless File.directory?(data_dir)
        problem = File.exist?(data_dir) ? "is not a folder" : "not found"
        raise UserError, "data dir #{data_dir} #{problem}; pass --data-dir a folder in hymenoptera_data's layout " \
                         "(python reference_py/download.py fetches it), or leave --data-dir out to use the stand-in"
      end
      class_names = SPLITS.to_h do |split|
        folder = File.join(data_dir, split)
        raise UserError, "#{folder} not found: #{LAYOUT_HINT}" unless File.directory?(folder)

        names = tree_entries(folder).select { |path| File.dirname(path) == folder && File.directory?(path) }
                                    .map { |path| File.basename(path) }.sort
        raise UserError, "#{folder} has no class folders: #{LAYOUT_HINT}" if names.empty?

        names.each do |name|
          next if image_files(File.join(folder, name)).any?

          raise UserError, "#{File.join(folder, name)} has no images (#{IMG_EXTENSIONS.join(" ")}); " \
                           "add images to it or remove the folder"
        end
        [split, names]
      end
      if class_names["train"] != class_names["val"]
        raise UserError, "#{data_dir}: train/ has the classes #{class_list(class_names["train"])} but val/ has " \
                         "#{class_list(class_names["val"])}; give both the same class folders"
      end
      if class_names["train"].size < 2
        raise UserError, "#{data_dir}: only one class (#{class_names["train"][0]}); a classifier needs two or more"
      end
      class_names["train"]
    end

    # Class names as the messages of both sides show them: ants, bees.
    def class_list(names)
      names.join(", ")
    end

    # The trainers' `data:` line, after `data: `.
    def describe(data_dir, standin, dataset_sizes, class_names)
      kind = standin ? "generated stand-in, NOT the real hymenoptera_data" : "images"
      "#{data_dir} (#{kind}; #{dataset_sizes["train"]} train, #{dataset_sizes["val"]} val; " \
        "classes #{class_list(class_names)})"
    end

    # Decode every image once, so that a corrupt file stops us before training, not in the middle.
    def check_images(data_dir)
      SPLITS.each do |split|
        split_images(File.join(data_dir, split)).each { |path| rgb_loader(path) }
      end
    end

    def standin?(data_dir)
      marker = JSON.parse(File.read(File.join(data_dir, STANDIN_MARKER)))
      marker.is_a?(Hash) && marker["standin"] == true
    rescue SystemCallError, JSON::ParserError
      false
    end

    # [data dir, whether it is the generated stand-in]; no --data-dir means the stand-in, which
    # reference_py/standin_data.py generates (or regenerates when stale).
    def resolve_data_dir(data_dir = nil)
      return [data_dir, standin?(data_dir)] if data_dir

      PythonReference.run_python("from reference_py.standin_data import ensure_standin; ensure_standin()")
      [STANDIN_DIR, true]
    end

    def image_datasets(data_dir)
      check_layout(data_dir)
      check_images(data_dir)
      SPLITS.to_h do |split|
        [split, TorchVision::Datasets::ImageFolder.new(File.join(data_dir, split), transform: data_transforms[split],
                                                       loader: method(:rgb_loader))]
      end
    end

    # The RandomSampler that DataLoader(shuffle: true, generator: ...) builds, remembering each epoch's order.
    class RecordingSampler < Torch::Utils::Data::RandomSampler
      attr_reader :orders

      def initialize(data_source, generator:)
        super
        @orders = []
      end

      def each(&block)
        order = []
        super { |index| order << index }
        @orders << order
        order.each(&block)
      end
    end

    def make_dataloader(dataset, batch_size, seed, workers = 0)
      sampler = RecordingSampler.new(dataset, generator: Torch::Generator.new.manual_seed(seed))
      Torch::Utils::Data::DataLoader.new(dataset, batch_size: batch_size, sampler: sampler, num_workers: workers)
    end

    # The tutorial's image_datasets, dataloaders (shuffled, seeded, loading with `workers` processes),
    # dataset_sizes and class_names.
    def load_data(data_dir, batch_size: 4, seed: 0, workers: 0)
      image_sets = image_datasets(data_dir)
      dataloaders = SPLITS.each_with_index.to_h do |split, k|
        [split, make_dataloader(image_sets[split], batch_size, seed + k, workers)]
      end
      dataset_sizes = image_sets.transform_values(&:size)
      [image_sets, dataloaders, dataset_sizes, image_sets["train"].classes]
    end
  end
end
