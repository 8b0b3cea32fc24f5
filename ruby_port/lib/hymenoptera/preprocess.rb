# frozen_string_literal: true

module Hymenoptera
  # Each image through each transform, for the parity suite to compare with Python's
  # (mirrors reference_py/preprocess.py).
  #
  #   ruby ruby_port/bin/preprocess SPEC.json OUT_STEM
  #
  # SPEC.json: {"images": [{"path": "...", "crop": [i, j, h, w], "flip": false}, ...]}. Writes one
  # bundle OUT_STEM.json/.bin with, for image k: k/to_tensor, k/resize (Resize(256)), k/center_crop
  # (CenterCrop(224)), k/normalize (of k/to_tensor), k/val (the whole val pipeline), k/resized_crop
  # (RandomResizedCrop's work with the given crop), k/hflip (always flipped), and k/train (the train
  # pipeline with the given crop and, if "flip", the flip). torchvision-ruby's functional transforms
  # throughout, except Resize and CenterCrop, which are the port's corrections of its sizes/offsets.
  module Preprocess
    CROP_SIZE = [224, 224].freeze
    SPEC_SHAPE = '{"images": [{"path": str, "crop": [i, j, h, w], "flip": bool}]}'

    module_function

    # Transform name => tensor for one RGB libvips image.
    def preprocess_image(image, crop, flip)
      f = TorchVision::Transforms::F
      i, j, h, w = crop
      to_tensor = f.to_tensor(image)
      train = f.resized_crop(image, i, j, h, w, CROP_SIZE)
      train = f.hflip(train) if flip
      {
        "to_tensor" => to_tensor,
        "resize" => f.to_tensor(Transforms::Resize.new(256).call(image)),
        "center_crop" => f.to_tensor(Transforms::CenterCrop.new(224).call(image)),
        "normalize" => f.normalize(to_tensor, Data::MEAN, Data::STD),
        "val" => Data.data_transforms["val"].call(image),
        "resized_crop" => f.to_tensor(f.resized_crop(image, i, j, h, w, CROP_SIZE)),
        "hflip" => f.to_tensor(f.hflip(image)),
        "train" => f.normalize(f.to_tensor(train), Data::MEAN, Data::STD)
      }
    end

    # The list of images of SPEC.json, each checked: a path, a crop of four whole numbers, a flip flag.
    def read_spec(path)
      spec = Errors.read_json(path, label: "spec #{path}", fix: "pass a JSON file #{SPEC_SHAPE}")
      images = spec["images"] if spec.is_a?(Hash)
      raise UserError, "spec #{path} has no \"images\" list; expected #{SPEC_SHAPE}" unless images.is_a?(Array) && images.any?

      images.each_with_index do |entry, k|
        next if valid_entry?(entry)

        raise UserError, "spec #{path}: images[#{k}] must be {\"path\": str, \"crop\": [i, j, h, w] " \
                         "(whole numbers, h and w at least 1), \"flip\": bool}, got #{JSON.generate(entry)}"
      end
      images
    end

    def valid_entry?(entry)
      return false unless entry.is_a?(Hash) && entry["path"].is_a?(String)

      crop = entry["crop"]
      crop.is_a?(Array) && crop.size == 4 && crop.all?(Integer) && crop[2] >= 1 && crop[3] >= 1 &&
        [true, false].include?(entry.fetch("flip", false))
    end

    def main(argv)
      unless argv.size == 2
        raise UserError, "expected SPEC.json and OUT_STEM, got #{argv.size} argument(s); " \
                         "usage: ruby ruby_port/bin/preprocess SPEC.json OUT_STEM"
      end
      spec_path, out_stem = argv
      images = read_spec(spec_path)
      tensors = {}
      images.each_with_index do |entry, k|
        image = Data.rgb_loader(entry["path"])
        begin
          preprocess_image(image, entry["crop"], entry.fetch("flip", false)).each do |name, tensor|
            tensors["#{k}/#{name}"] = tensor
          end
        rescue Vips::Error => e
          raise UserError, "spec #{spec_path}: images[#{k}] (#{image.width}x#{image.height}, crop #{entry["crop"]}): " \
                           "#{Errors.one_line(e.message)}; give a crop inside the image"
        end
      end
      TensorIO.write_bundle(out_stem, tensors, meta: {images: images})
    end
  end
end
