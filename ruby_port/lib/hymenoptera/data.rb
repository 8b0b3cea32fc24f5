# frozen_string_literal: true

require_relative "data_layout"

module Hymenoptera
  # The tutorial's data: ImageFolder over train/ and val/, its transforms, DataLoaders of 4
  # (mirrors reference_py/data.py). A data dir is hymenoptera_data's layout: train/{ants,bees}/*.jpg
  # and val/{ants,bees}/*.jpg. Without --data-dir the generated stand-in is used (made by
  # reference_py/standin_data.py when missing). The layout and the files ImageFolder takes are checked
  # in DataLayout, without LibTorch.
  module Data
    SPLITS = DataLayout::SPLITS
    MEAN = [0.485, 0.456, 0.406].freeze
    STD = [0.229, 0.224, 0.225].freeze
    STANDIN_DIR = PythonReference::STANDIN_DIR
    STANDIN_MARKER = "STANDIN.json"

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

    # The trainers' `data:` line, after `data: `.
    def describe(data_dir, standin, dataset_sizes, class_names)
      kind = standin ? "generated stand-in, NOT the real hymenoptera_data" : "images"
      "#{data_dir} (#{kind}; #{dataset_sizes["train"]} train, #{dataset_sizes["val"]} val; " \
        "classes #{DataLayout.class_list(class_names)})"
    end

    # Decode every image once, so that a corrupt file stops us before training, not in the middle.
    def check_images(data_dir)
      SPLITS.each do |split|
        DataLayout.split_images(File.join(data_dir, split)).each { |path| rgb_loader(path) }
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
      DataLayout.check_layout(data_dir)
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
