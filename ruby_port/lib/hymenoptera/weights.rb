# frozen_string_literal: true

require_relative "errors"
require_relative "recipe"

module Hymenoptera
  # net.pth: loading and checking the backbone's weights, and reading where they came from
  # (mirrors reference_py/weights.py). net.pth is a plain dict of tensors (ResNet-18 with its
  # 1000-class ImageNet fc); beside it, net.pth.json says whether it holds torchvision's ImageNet
  # weights or the seeded stand-in. Loads without LibTorch (its methods use it once it has loaded):
  # the trainers check that the weights file is there (check_file) before LibTorch loads.
  module Weights
    PROVENANCES = %w[imagenet stand-in user-supplied].freeze
    OPTIONAL_SUFFIX = "num_batches_tracked" # absent from torchvision's published checkpoint
    # Elements checked for finiteness at a time: tensor.isfinite makes temporaries of the tensor's size (VGG-16's
    # first Linear: 400 MB of them, each page a fault); a chunk's are reused. VGG-16's 138M values: 2.7 -> 0.4 CPU-s.
    FINITE_CHUNK = 1 << 20
    DEFAULT_PATHS = Recipe::WEIGHTS
    DEFAULT_PATH = DEFAULT_PATHS.fetch("resnet18")
    # The backbones the strategies load (Strategies.architecture): what validate expects of each.
    ARCHITECTURES = {
      "resnet18" => "ResNet-18 state dict with a 1000-class fc",
      "vgg16" => "VGG-16 state dict with a 1000-class classifier"
    }.freeze
    # torchvision-ruby 0.3's ResNet::MODEL_URLS["resnet18"] and VGG::MODEL_URLS["vgg16"] (torchvision's
    # IMAGENET1K_V1 urls name the same files), written out as requiring torchvision loads LibTorch;
    # weights_test.rb keeps them so.
    IMAGENET_URLS = {"resnet18" => "https://download.pytorch.org/models/resnet18-f37072fd.pth",
                     "vgg16" => "https://download.pytorch.org/models/vgg16-397923af.pth"}.freeze

    # The weights a run starts from, as load_weights returns them (reference_py/weights.py's Loaded).
    Loaded = Struct.new(:state_dict, :provenance, :sha256, :path) do
      def standin?
        provenance == "stand-in"
      end

      def describe
        "#{provenance} weights (sha256 #{sha256[0, 12]}) from #{path}"
      end

      # What curves.json and the fixtures' manifest record about the weights.
      def summary
        {provenance: provenance, sha256: sha256, path: path.to_s}
      end
    end

    module_function

    # How to get usable weights instead of path: create it when missing, else a new file beside it
    # (advice must never overwrite a file; pretrained.py refuses to anyway).
    def fix_for(path)
      return "create it with `python reference_py/pretrained.py --out #{path}`" unless File.exist?(path) || File.exist?(provenance_path(path))

      fresh = fresh_path(path)
      "make a new file with `python reference_py/pretrained.py --out #{fresh}` (add --weights FILE for " \
        "downloaded ImageNet weights) and pass --weights #{fresh}"
    end

    # A sibling of path that does not exist: net.pth -> net-1.pth.
    def fresh_path(path)
      ext = File.extname(path)
      stem = path.to_s.delete_suffix(ext)
      (1..).each do |k|
        candidate = "#{stem}-#{k}#{ext}"
        return candidate unless File.exist?(candidate) || File.exist?(provenance_path(candidate))
      end
    end

    # Load net.pth (of arch), check it and its provenance.
    def load_weights(path, arch: "resnet18")
      state_dict = read_state_dict(path)
      validate(state_dict, path, arch: arch)
      record = read_provenance(path)
      sha256 = Checksums.file_sha256(path)
      if record["sha256"] != sha256
        raise UserError, "#{path} (sha256 #{sha256[0, 12]}) is not the file #{provenance_path(path)} describes " \
                         "(sha256 #{record["sha256"].to_s[0, 12]}); #{fix_for(path)}"
      end
      check_imagenet_label(record, path, arch: arch)
      Loaded.new(complete(state_dict, arch: arch), record["provenance"], sha256, path)
    end

    # torchvision's file of ImageNet weights for arch (resnet18-f37072fd.pth).
    def hub_file(arch = "resnet18")
      File.basename(IMAGENET_URLS.fetch(arch))
    end

    # The digits in hub_file's name: torch.hub checks that the file's sha256 starts with them.
    def hub_sha256_prefix(arch = "resnet18")
      hub_file(arch)[/-([0-9a-f]+)\./, 1]
    end

    # "imagenet" only for weights made from torchvision's file: the sha256 pretrained.py recorded of its source
    # starts with the digits in that file's name (torch.hub's check), whatever else net.pth.json says.
    def check_imagenet_label(record, path, arch: "resnet18")
      source = record["source_sha256"]
      return unless record["provenance"] == "imagenet" && !(source.is_a?(String) && source.start_with?(hub_sha256_prefix(arch)))

      raise UserError, "#{provenance_path(path)} says imagenet, but the sha256 of its source (#{JSON.generate(source)}) does " \
                       "not start with #{hub_sha256_prefix(arch)}, as torchvision's #{hub_file(arch)} does; #{fix_for(path)}"
    end

    # Modules built in the block keep their parameters as allocated: Torch::NN::Init's fills do nothing, and
    # draw nothing from the generator. For a model whose values are never read, or all replaced: built to read
    # the names, shapes and dtypes of its entries, VGG-16 wrote (and paged in) all its 138M values, 2.6 CPU-s.
    def uninitialised
      init = Torch::NN::Init.singleton_class
      fills = Torch::NN::Init.singleton_methods.select { |name| name.end_with?("!") && !name.start_with?("_") }
      saved = fills.to_h { |name| [name, init.instance_method(name)] }
      fills.each { |name| init.send(:define_method, name) { |tensor, *_args, **_options| tensor } }
      yield
    ensure
      saved&.each { |name, fill| init.send(:define_method, name, fill) }
    end

    # Name => [shape, dtype] of every entry of arch (1000 classes), in state_dict order.
    def expected_entries(arch = "resnet18")
      @expected_entries ||= {}
      @expected_entries[arch] ||= uninitialised { arch == "vgg16" ? TorchVision::Models::VGG16.new : Model.resnet18 }
                                  .state_dict.transform_values { |tensor| [tensor.shape, tensor.dtype] }
    end

    # Name => shape of every entry of arch (1000 classes), in state_dict order.
    def expected_shapes(arch = "resnet18")
      expected_entries(arch).transform_values(&:first)
    end

    # Torch.save of a plain dict of tensors (Python's torch.load reads it), atomically: detached, as
    # Python's state_dict() gives them, and through the open file, so that the archive is named
    # "archive" as in Python's buffer (Torch.save names it after a path, here the temporary file's
    # random name), each tensor written as it goes.
    def save_state_dict(path, state_dict)
      Atomic.atomic_path(path) do |tmp|
        File.open(tmp, "wb") { |file| Torch.save(state_dict.to_h.transform_values(&:detach), file) }
      end
    end

    # The state dict in ResNet-18's order, as a model loads it: Python's BatchNorm fills a missing
    # num_batches_tracked with 0 when loading; torch.rb's strict load_state_dict calls it missing.
    def complete(state_dict, arch: "resnet18")
      expected_shapes(arch).keys.to_h { |key| [key, state_dict.fetch(key) { Torch.tensor(0, dtype: :int64) }] }
    end

    def provenance_path(path)
      "#{path}.json"
    end

    # A regular file that is not empty, what read_state_dict checks before Torch.load (the trainers check
    # it before LibTorch loads).
    def check_file(path)
      unless File.file?(path)
        raise UserError, "#{path}: weights file not found (nothing there, or not a regular file); #{fix_for(path)}"
      end
      return unless File.zero?(path) # Python's torch.load says nothing about it: the same words on both sides

      raise UserError, "#{path} is empty (0 bytes), not a PyTorch checkpoint (an interrupted copy or download?); #{fix_for(path)}"
    end

    # Torch.load of a checkpoint of tensors; any failure is the user's to fix.
    def read_state_dict(path)
      check_file(path)
      loaded = begin
        Torch.load(path)
      rescue StandardError => e
        raise UserError, "#{path} is not a readable PyTorch checkpoint of tensors (#{Errors.one_line(e.message)}); #{fix_for(path)}"
      end
      unless loaded.is_a?(Hash) && loaded.values.all? { |v| v.is_a?(Torch::Tensor) }
        raise UserError, "#{path} holds a #{loaded.class}, not a dict of tensors (a state dict); #{fix_for(path)}"
      end

      loaded
    end

    # Names and shapes against arch with a 1000-class head (num_batches_tracked may be absent).
    def validate(state_dict, path, arch: "resnet18")
      shapes = expected_shapes(arch)
      missing = shapes.keys.reject { |k| state_dict.key?(k) || k.end_with?(OPTIONAL_SUFFIX) }
      unexpected = state_dict.keys.reject { |k| shapes.key?(k) }
      wrong = state_dict.select { |k, v| shapes.key?(k) && v.shape != shapes[k] }
                        .map { |k, v| "#{k} #{v.shape} (expected #{shapes[k]})" }
      problems = []
      problems << "#{missing.size} missing entries (first: #{missing.first(3).join(", ")})" if missing.any?
      problems << "#{unexpected.size} unexpected entries (first: #{unexpected.first(3).join(", ")})" if unexpected.any?
      problems << "wrong shapes: #{wrong.first(3).join("; ")}" if wrong.any?
      raise UserError, "#{path} is not a #{ARCHITECTURES.fetch(arch)}: #{problems.join(", ")}; #{fix_for(path)}" if problems.any?

      check_values(state_dict, path, arch: arch)
    end

    # Whether no element of tensor is NaN or infinite, FINITE_CHUNK elements at a time.
    def all_finite?(tensor)
      tensor.reshape(-1).split(FINITE_CHUNK).all? { |chunk| chunk.isfinite.all.item }
    end

    # Weights that are NaN or infinite refused (they train to NaN); entries of another dtype than the model's,
    # which loading converts, said in one line on stream.
    def check_values(state_dict, path, arch: "resnet18", stream: $stderr)
      not_finite = state_dict.select { |_, tensor| tensor.floating_point? && !all_finite?(tensor) }.keys
      if not_finite.any?
        raise UserError, "#{path}: #{not_finite.size} of its #{state_dict.size} entries hold NaN or infinite values " \
                         "(first: #{not_finite.first(3).join(", ")}); these weights cannot train: #{fix_for(path)}"
      end
      entries = expected_entries(arch)
      converted = state_dict.reject { |name, tensor| tensor.dtype == entries.fetch(name)[1] }
                            .group_by { |name, tensor| [tensor.dtype, entries.fetch(name)[1]] }
      return if converted.empty?

      kinds = converted.map { |(was, now), pairs| "#{pairs.size} #{was} to #{now} (first: #{pairs.first.first})" }.join(", ")
      stream.puts "weights: #{path}: entries converted to the model's dtype as they load: #{kinds}"
    end

    # net.pth.json, checked against the file it describes.
    def read_provenance(path)
      record_path = provenance_path(path)
      record = Errors.read_json(record_path, missing: "not found, so the origin of #{path} is unknown", fix: fix_for(path))
      unless record.is_a?(Hash)
        raise UserError, "#{record_path} holds a JSON #{Errors.json_type(record)}, not an object with provenance and " \
                         "sha256; #{fix_for(path)}"
      end
      unless PROVENANCES.include?(record["provenance"])
        raise UserError, "#{record_path}: provenance #{JSON.generate(record["provenance"])} is not one of " \
                         "#{PROVENANCES.join(", ")}; #{fix_for(path)}"
      end
      record
    end

    # Every step that uses the weights says which it got.
    def announce(weights, stream = $stderr)
      stream.puts "weights: #{weights.describe}#{" (a seeded stand-in, NOT ImageNet-trained)" if weights.standin?}"
    end
  end
end
