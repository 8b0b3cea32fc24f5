# frozen_string_literal: true

require_relative "tensor_io" # its bundle paths and format, for the claim of OUT_STEM before LibTorch loads

module Hymenoptera
  # Each image through each transform, for the parity suite to compare with Python's
  # (mirrors reference_py/preprocess.py).
  #
  #   ruby ruby_port/bin/preprocess SPEC.json OUT_STEM
  #
  # SPEC.json: {"images": [{"path": "...", "crop": [i, j, h, w], "seed": 0, "outputs": [...]}, ...]}.
  # Writes one bundle OUT_STEM.json/.bin with, for image k, k/NAME for each name of "outputs"
  # (default: all of OUTPUTS, in that order). The transforms alone, each on the decoded image, as
  # uint8 [H, W, 3]: k/decoded (the RGB loader's image), k/resize (Resize(256)), k/center_crop
  # (CenterCrop(224)), k/resized_crop (RandomResizedCrop's work with the given crop), k/hflip; then
  # as float32 [3, H, W]: k/to_tensor and k/normalize (of the image's central PATCH x PATCH: ToTensor
  # and Normalize work pixel by pixel, and the pipelines hold them at full size), k/val (the whole val
  # pipeline) and k/train (the whole train pipeline, its crop and flip drawn after
  # Torch.manual_seed(seed)).
  module Preprocess
    CROP_SIZE = [224, 224].freeze
    PATCH = 32
    OUTPUTS = %w[decoded resize center_crop resized_crop hflip to_tensor normalize val train].freeze
    SPEC_FORMAT = 'a spec is {"images": [{"path": "...", "crop": [i, j, h, w], "seed": 0, ' \
                  "\"outputs\": [some of #{OUTPUTS.join(", ")}]}, ...]}"

    module_function

    def train_pipeline(image, seed)
      Torch.manual_seed(seed)
      Data.data_transforms["train"].call(image)
    end

    # Output name => tensor for one RGB image (only the requested outputs are computed).
    def preprocess_image(image, crop, seed, outputs = OUTPUTS)
      f = TorchVision::Transforms::F
      i, j, h, w = crop
      steps = {
        "decoded" => -> { image },
        "resize" => -> { f.resize(image, 256) },
        "center_crop" => -> { f.center_crop(image, 224) },
        "resized_crop" => -> { f.resized_crop(image, i, j, h, w, CROP_SIZE) },
        "hflip" => -> { f.hflip(image) },
        "to_tensor" => -> { f.to_tensor(f.center_crop(image, PATCH)) },
        "normalize" => -> { f.normalize(f.to_tensor(f.center_crop(image, PATCH)), Data::MEAN, Data::STD) },
        "val" => -> { Data.data_transforms["val"].call(image) },
        "train" => -> { train_pipeline(image, seed) }
      }
      outputs.to_h { |name| [name, steps.fetch(name).call] }
    end

    def valid_entry?(entry)
      return false unless entry.is_a?(Hash) && entry["path"].is_a?(String) && !entry["path"].empty?

      crop, seed, outputs = entry["crop"], entry.fetch("seed", 0), entry.fetch("outputs", OUTPUTS)
      crop.is_a?(Array) && crop.size == 4 && crop.all?(Integer) && crop[2] >= 1 && crop[3] >= 1 &&
        seed.is_a?(Integer) && outputs.is_a?(Array) && outputs.any? && outputs.all? { |name| OUTPUTS.include?(name) }
    end

    # The list of images of SPEC.json, each checked: a path, a crop of four whole numbers, a seed, outputs.
    def read_spec(path)
      spec = Errors.read_json(path, label: "spec #{path}", fix: SPEC_FORMAT)
      images = spec["images"] if spec.is_a?(Hash)
      raise UserError, "spec #{path} has no \"images\" list; #{SPEC_FORMAT}" unless images.is_a?(Array) && images.any?

      images.each_with_index do |entry, k|
        next if valid_entry?(entry)

        raise UserError, "spec #{path}: images[#{k}] must be {\"path\": str, \"crop\": [i, j, h, w] " \
                         "(whole numbers, h and w at least 1), \"seed\": int, \"outputs\": [some of " \
                         "#{OUTPUTS.join(", ")}]} (seed and outputs optional), got #{JSON.generate(entry)}"
      end
      images
    end

    def get_args_parser
      parser = ArgumentParser.new("ruby ruby_port/bin/preprocess",
                                  description: "Each image through each transform, for the parity suite to compare " \
                                               "with the Python reference's.")
      parser.add_argument("spec", metavar: "SPEC.json", help: "the images and what to write of each")
      parser.add_argument("out_stem", metavar: "OUT_STEM", help: "the bundle to write (OUT_STEM.json and OUT_STEM.bin)")
      parser
    end

    def main(argv)
      args = get_args_parser.parse_args(argv)
      spec_path, out_stem = args.values_at(:spec, :out_stem)
      OutputClaim.check_path_option(out_stem, "OUT_STEM")
      bundle_output(out_stem, "preprocess", "OUT_STEM").hold do # claimed, and the spec read, before LibTorch loads
        images = read_spec(spec_path)
        CLI.load_port # the long work starts here, once the options, OUT_STEM and the spec are checked
        write_outputs(images, out_stem)
      end
    end

    # Whether STEM.json is a tensor bundle's index (so STEM.json and STEM.bin are this tool's to replace).
    def written_bundle?(stem)
      index = JSON.parse(File.read(TensorIO.bundle_paths(stem)[0]))
      index.is_a?(Hash) && index["format"] == TensorIO::FORMAT
    rescue SystemCallError, JSON::ParserError
      false
    end

    # OUT_STEM.json and OUT_STEM.bin, claimed: new, or a bundle; locked.
    def bundle_output(stem, tool, option)
      index_path, blob_path = TensorIO.bundle_paths(stem)
      OutputClaim::OutputFile.new(index_path, tool, option, companions: [blob_path]) { written_bundle?(stem) }
    end

    def write_outputs(images, out_stem)
      tensors = {}
      images.each_with_index do |entry, k|
        image = Data.rgb_loader(entry["path"])
        outputs = preprocess_image(image, entry["crop"], entry.fetch("seed", 0), entry.fetch("outputs", OUTPUTS))
        outputs.each { |name, tensor| tensors["#{k}/#{name}"] = tensor }
      end
      TensorIO.write_bundle(out_stem, tensors, meta: {images: images})
    end
  end
end
