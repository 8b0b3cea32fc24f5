# frozen_string_literal: true

module Hymenoptera
  # The fixtures format of fixtures/README.md, in one place (mirrors reference_py/fixtures_format.py):
  # what reference_py/export_fixtures.py writes and both replays read. Its constants, the manifest reader
  # and the checks a reader makes before it computes anything. Loads without LibTorch, and so do the checks
  # (Replay.checked_fixtures runs them before LibTorch loads, with TensorIO's index reader, Model's and
  # Strategies' constants); read_fixture's tensors need the port.
  module FixturesFormat
    FORMAT = "hymenoptera-fixtures/1"
    GENERATOR_VERSION = 1
    MANIFEST = "manifest.json"
    # The tutorial's settings, 2 epochs, StepLR every epoch: a manifest that says otherwise was edited.
    PROTOCOL = Recipe.replay_protocol.freeze
    COUNTS = Recipe::COUNTS
    RATES = Recipe::RATES
    VERSIONS = %w[python torch torchvision libtorch].freeze
    IMAGE_SHAPE = [3, nil, nil].freeze # RGB, any size (the protocol's 224 x 224, or a test's smaller images)

    module_function

    def fix(fixtures)
      "regenerate them with `python reference_py/export_fixtures.py --out #{fixtures}`"
    end

    # Every bundle of the fixtures of strategies, relative to the fixtures folder, in the manifest's order.
    def bundle_names(strategies, epochs)
      ["weights", "eval"] + strategies.flat_map do |s|
        ["initial", *Array.new(epochs) { |k| "epoch_#{k}" }].map { |b| "strategies/#{s}/#{b}" }
      end
    end

    # What makes manifest unusable for the replay (the first thing found), or nil.
    def manifest_problem(manifest)
      return "holds a JSON #{Errors.json_type(manifest)}, not an object" unless manifest.is_a?(Hash)
      return "format is #{JSON.generate(manifest["format"])}, expected #{JSON.generate(FORMAT)}" unless manifest["format"] == FORMAT
      unless manifest["generator_version"] == GENERATOR_VERSION && manifest["generator_version"].is_a?(Integer)
        return "generator_version is #{JSON.generate(manifest["generator_version"])}, this replay reads #{GENERATOR_VERSION}"
      end

      %w[config protocol weights versions bundles files].each do |key|
        return "#{key} is missing or not an object" unless manifest[key].is_a?(Hash)
      end
      versions = manifest["versions"]
      bad = VERSIONS.find { |k| !(versions.key?(k) && (versions[k].nil? || versions[k].is_a?(String))) }
      return "versions.#{bad} is missing or not a version string" if bad

      protocol = manifest["protocol"]
      COUNTS.each do |key|
        next if protocol[key].is_a?(Integer) && protocol[key] >= 1

        return "protocol.#{key} is #{JSON.generate(protocol[key])}, expected a whole number of at least 1"
      end
      RATES.each do |key|
        next if protocol[key].is_a?(Numeric) && protocol[key].to_f.finite? && protocol[key] >= 0

        return "protocol.#{key} is #{JSON.generate(protocol[key])}, expected a finite number of at least 0"
      end
      # the protocol is the generator's: a value edited in the manifest would replay another training than the export's
      (PROTOCOL.keys + (protocol.keys - PROTOCOL.keys)).each do |key|
        next if protocol.key?(key) && PROTOCOL.key?(key) && protocol[key] == PROTOCOL[key]

        return "protocol.#{key} is #{JSON.generate(protocol[key])}, generator #{GENERATOR_VERSION} writes #{JSON.generate(PROTOCOL[key])}"
      end
      strategies = manifest["config"]["strategies"]
      unless strategies.is_a?(Array) && strategies.any? && strategies.all? { |s| Strategies::STRATEGIES.include?(s) }
        return "config.strategies is #{JSON.generate(strategies)}, expected a list of #{Strategies::STRATEGIES.join(", ")}"
      end
      return "weights lacks provenance or sha256" unless manifest["weights"]["sha256"].is_a?(String) && manifest["weights"]["provenance"].is_a?(String)

      nil
    end

    # The manifest of the fixtures folder fixtures, refused in one line unless a replay can read it.
    def read_manifest(fixtures)
      if File.exist?(fixtures) && !File.directory?(fixtures)
        raise UserError, "#{fixtures} is a file, not a fixtures folder; pass --fixtures the folder export_fixtures.py " \
                         "wrote (e.g. --fixtures fixtures)"
      end
      path = File.join(fixtures, MANIFEST)
      manifest = Errors.read_json(path, missing: "not found: no fixtures there", fix: fix(fixtures))
      problem = manifest_problem(manifest)
      return manifest unless problem

      raise UserError, "#{path} is not a fixtures manifest this replay reads: #{problem}; #{fix(fixtures)}"
    end

    # Python's "{dtype} {shape}" of an index entry (shape as a Python list prints).
    def describe_tensor(entry)
      shape = entry["shape"]
      "#{entry["dtype"] || "None"} #{shape.is_a?(Array) ? "[#{shape.join(", ")}]" : (shape.nil? ? "None" : shape)}"
    end

    # The bundle's index against the manifest's record of it (names, dtypes, shapes) and the protocol's
    # needs (expected: tensor name => [dtype, shape pattern with nil for any size]).
    def check_bundle(fixtures, manifest, name, expected)
      index_path = File.join(fixtures, "#{name}.json")
      listed = manifest["bundles"][name]
      raise UserError, "#{fixtures}/#{MANIFEST} lists no bundle #{name}; #{fix(fixtures)}" unless listed.is_a?(Array)

      tensors = begin
        TensorIO.read_index(File.join(fixtures, name))["tensors"]
      rescue TensorIO::BundleError => e
        raise UserError, "#{e.message}; #{fix(fixtures)}"
      end
      entries = tensors.select { |t| t.is_a?(Hash) }.to_h { |t| [t["name"], t] }
      listed.each do |record|
        entry = entries[record["name"]]
        next if entry && [entry["dtype"], entry["shape"]] == [record["dtype"], record["shape"]]

        raise UserError, "#{index_path}: #{record["name"]} is #{entry ? describe_tensor(entry) : "missing"}, " \
                         "the manifest says #{describe_tensor(record)}; #{fix(fixtures)}"
      end
      expected.each do |tensor_name, (dtype, pattern)|
        entry = entries[tensor_name]
        shape = entry && entry["shape"]
        fits = entry && entry["dtype"] == dtype && shape.is_a?(Array) && shape.size == pattern.size &&
               pattern.zip(shape).all? { |p, d| p.nil? || p == d }
        next if fits

        wanted = "[#{pattern.map { |p| p.nil? ? "N" : p }.join(", ")}]"
        raise UserError, "#{index_path}: #{tensor_name} is #{entry ? describe_tensor(entry) : "missing"}, " \
                         "the replay needs #{dtype} #{wanted}; #{fix(fixtures)}"
      end
      entries
    end

    # Every bundle the replay reads, checked against the manifest before anything is computed.
    def check_fixtures(fixtures, manifest, strategies)
      epochs = manifest["protocol"]["epochs"]
      names = ["eval"] + strategies.flat_map { |s| Array.new(epochs) { |k| "strategies/#{s}/epoch_#{k}" } }
      names.each do |name|
        entries = check_bundle(fixtures, manifest, name, {"images" => ["float32", [nil, *IMAGE_SHAPE]], "labels" => ["int64", [nil]]})
        count = entries["images"]["shape"][0]
        next if count >= 1 && entries["labels"]["shape"] == [count]

        raise UserError, "#{fixtures}/#{name}.json: #{count} images but labels [#{entries["labels"]["shape"].join(", ")}]; #{fix(fixtures)}"
      end
      strategies.each do |strategy|
        head = Strategies.head(strategy)
        check_bundle(fixtures, manifest, "strategies/#{strategy}/initial",
                     {"#{head}.weight" => ["float32", [nil, Model::HEAD_FEATURES.fetch(Strategies.architecture(strategy))]],
                      "#{head}.bias" => ["float32", [nil]]})
      end
      check_bundle(fixtures, manifest, "weights", {})
      check_files(fixtures, manifest, bundle_names(strategies, epochs))
      strategies.each do |strategy|
        check_meta(fixtures, "strategies/#{strategy}/initial", {"strategy" => strategy})
        epochs.times { |epoch| check_meta(fixtures, "strategies/#{strategy}/epoch_#{epoch}", {"strategy" => strategy, "epoch" => epoch}) }
      end
    end

    # Each bundle's two files against the sha256 the manifest lists: a file of another export, or changed, is refused.
    def check_files(fixtures, manifest, names)
      names.product(%w[json bin]).map { |name, ext| "#{name}.#{ext}" }.each do |relative|
        path = File.join(fixtures, relative)
        listed = manifest["files"][relative]
        raise UserError, "#{fixtures}/#{MANIFEST} lists no sha256 for #{relative}; #{fix(fixtures)}" unless listed.is_a?(String)
        raise UserError, "#{path} not found, though the manifest lists it; #{fix(fixtures)}" unless File.file?(path)

        found = Checksums.file_sha256(path)
        next if found == listed

        raise UserError, "#{path}: sha256 #{found[0, 12]}, the manifest lists #{listed[0, 12]} (a file of another export, " \
                         "or changed); #{fix(fixtures)}"
      end
    end

    # A bundle's own record of its strategy (and epoch) against its place: a bundle moved from another strategy is refused.
    def check_meta(fixtures, name, expected)
      meta = TensorIO.read_index(File.join(fixtures, name))["meta"]
      found = expected.keys.to_h { |key| [key, meta.is_a?(Hash) ? meta[key] : nil] }
      return if found == expected

      describe = ->(record) { record.map { |key, value| "#{key} #{JSON.generate(value)}" }.join(", ") }
      raise UserError, "#{fixtures}/#{name}.json holds #{describe[found]}, its place is #{describe[expected]} (a bundle " \
                       "moved from another strategy or epoch); #{fix(fixtures)}"
    end

    # The tensors of bundle name, refused in one line if it does not read.
    def read_fixture(fixtures, name)
      TensorIO.read_bundle(File.join(fixtures, name))
    rescue TensorIO::BundleError => e
      raise UserError, "#{e.message}; #{fix(fixtures)}"
    end
  end
end
