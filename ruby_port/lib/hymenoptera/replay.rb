# frozen_string_literal: true

module Hymenoptera
  # The replay protocol of fixtures/README.md: train each strategy on the fixtures' exact batches
  # (mirrors reference_py/replay.py, operation for operation, so that on the same LibTorch the
  # results are bit-identical).
  #
  #   ruby ruby_port/bin/replay [--fixtures fixtures] [--out runs/ruby] [--strategy NAME ...]
  #
  # No image decoding and no randomness: every input comes from the fixtures. Writes the run
  # directory (run.json, STRATEGY/summary.json and bundles) into a temporary folder renamed into
  # place when complete.
  module Replay
    # What reference_py/export_fixtures.py writes (its FORMAT and GENERATOR_VERSION), the only fixtures read.
    FIXTURES_FORMAT = "hymenoptera-fixtures/1"
    GENERATOR_VERSION = 1
    # export_fixtures.py's PROTOCOL at GENERATOR_VERSION: a manifest that says otherwise was edited.
    PROTOCOL = Recipe.replay_protocol.freeze
    COUNTS = Recipe::COUNTS
    RATES = Recipe::RATES
    VERSIONS = %w[python torch torchvision libtorch].freeze
    IMAGE_SHAPE = [3, nil, nil].freeze # RGB, any size (the protocol's 224 x 224, or a test's smaller images)

    module_function

    def fix(fixtures)
      "regenerate them with `python reference_py/export_fixtures.py --out #{fixtures}`"
    end

    # What makes manifest unusable for the replay (the first thing found), or nil.
    def manifest_problem(manifest)
      return "holds a JSON #{Errors.json_type(manifest)}, not an object" unless manifest.is_a?(Hash)
      unless manifest["format"] == FIXTURES_FORMAT
        return "format is #{JSON.generate(manifest["format"])}, expected #{JSON.generate(FIXTURES_FORMAT)}"
      end
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

    def read_manifest(fixtures)
      if File.exist?(fixtures) && !File.directory?(fixtures)
        raise UserError, "#{fixtures} is a file, not a fixtures folder; pass --fixtures the folder export_fixtures.py " \
                         "wrote (e.g. --fixtures fixtures)"
      end
      path = File.join(fixtures, "manifest.json")
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
      raise UserError, "#{fixtures}/manifest.json lists no bundle #{name}; #{fix(fixtures)}" unless listed.is_a?(Array)

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
      names = ["weights", "eval"] + strategies.flat_map do |s|
        ["initial", *Array.new(epochs) { |k| "epoch_#{k}" }].map { |b| "strategies/#{s}/#{b}" }
      end
      check_files(fixtures, manifest, names)
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
        raise UserError, "#{fixtures}/manifest.json lists no sha256 for #{relative}; #{fix(fixtures)}" unless listed.is_a?(String)
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

    def read_fixture(fixtures, name)
      TensorIO.read_bundle(File.join(fixtures, name))
    rescue TensorIO::BundleError => e
      raise UserError, "#{e.message}; #{fix(fixtures)}"
    end

    # Step 1: the strategy's model with the fixtures' weights (scratch: `initial` whole) and `initial`'s head.
    def build_replay_model(strategy, weights, initial)
      name = Strategies.head(strategy)
      model = Strategies.build_model(strategy, weights, num_classes: initial.fetch("#{name}.weight").shape[0])
      if Strategies.uses_pretrained?(strategy)
        Model.submodule(model, name).load_state_dict({"weight" => initial["#{name}.weight"], "bias" => initial["#{name}.bias"]})
      else
        model.load_state_dict(initial)
      end
      model
    end

    # A data loader's batches, cut in order from the fixtures' tensors.
    def batches(images, labels, batch_size)
      0.step(images.size(0) - 1, batch_size).map do |start|
        [images[start...(start + batch_size)], labels[start...(start + batch_size)]]
      end
    end

    # The replay's training data loader: its K-th pass yields the batches of the fixtures' epoch K.
    class EpochBatches
      def initialize(epochs, batch_size)
        @passes = epochs.map { |epoch| Replay.batches(epoch.fetch("images"), epoch.fetch("labels"), batch_size) }.each
      end

      def each(&block)
        @passes.next.each(&block)
      end
    end

    # Step 3: every module's output, in order (Model::FORWARD_ORDERS), under no grad.
    def trace(model, inputs, order)
      Torch.no_grad { Model.forward_trace(model, inputs, order) }
    end

    # The recorded steps of run for strategy, where --resync reads them.
    def resync_steps(run, strategy)
      steps = File.join(run, strategy, "steps")
      return steps if File.file?(File.join(steps, "after_0.json"))

      raise UserError, "#{run} has no recorded steps for #{strategy}; make it with " \
                       "`python reference_py/replay.py --record-steps --out #{run}`"
    end

    # Steps 1 to 6 of the protocol for one strategy, writing its part of the run directory into out.
    # record_steps: also the training state after every step (out/steps/after_N); resync: a run made
    # with record_steps, whose state after each step the next step starts from (fixtures/README.md).
    def replay_strategy(strategy, fixtures, protocol, weights, evaluation, out, record_steps: false, resync: nil)
      batch_size = protocol.fetch("batch_size")
      initial = read_fixture(fixtures, "strategies/#{strategy}/initial")
      epochs = Array.new(protocol.fetch("epochs")) { |k| read_fixture(fixtures, "strategies/#{strategy}/epoch_#{k}") }
      model = build_replay_model(strategy, weights, initial)
      criterion = Torch::NN::CrossEntropyLoss.new

      val_batches = batches(evaluation.fetch("images"), evaluation.fetch("labels"), batch_size)
      initial_outputs = OutputsRecorder.new
      Train.evaluate(model, criterion, val_batches, initial_outputs)
      eval_logits = Torch.cat(initial_outputs.outputs)
      TensorIO.write_bundle(File.join(out, "eval_logits"), {"logits" => eval_logits})
      _, eval_predictions = Torch.max(eval_logits, 1)

      model.eval
      order = Model::FORWARD_ORDERS.fetch(Strategies.architecture(strategy))
      TensorIO.write_bundle(File.join(out, "trace_eval"), trace(model, evaluation["images"][0...batch_size], order))
      train_copy = model.deep_dup
      train_copy.train
      TensorIO.write_bundle(File.join(out, "trace_train"), trace(train_copy, epochs[0]["images"][0...batch_size], order))

      optimizer = Strategies.make_optimizer(strategy, model, lr: protocol["lr"], momentum: protocol["momentum"],
                                                             backbone_lr: protocol["backbone_lr"], head_lr: protocol["head_lr"])
      scheduler = Strategies.make_scheduler(optimizer, step_size: protocol["step_size"], gamma: protocol["gamma"])
      steps_to = File.join(out, "steps").tap { |dir| Dir.mkdir(dir) } if record_steps
      resync_from = resync_steps(resync, strategy) if resync
      recorder = Recorder.new(states_to: out, steps_to: steps_to, resync_from: resync_from)
      model, history = Train.train_model(model, criterion, optimizer, scheduler,
                                         {"train" => EpochBatches.new(epochs, batch_size), "val" => val_batches},
                                         num_epochs: epochs.size, progress: false, observer: recorder)
      recorder.write(out)
      TensorIO.write_bundle(File.join(out, "state_best"), model.state_dict)
      summary = {strategy: strategy, epochs: history[:epochs], best_epoch: history[:best_epoch],
                 best_acc: history[:best_acc],
                 eval_predictions: eval_predictions.to_a, param_counts: Model.param_counts(model)}
      File.write(File.join(out, "summary.json"), JSON.pretty_generate(summary) + "\n")
    end

    def parse_args(argv)
      options = {fixtures: "fixtures", out: "runs/ruby", strategies: nil, record_steps: false, resync: nil}
      parser = ArgumentParser.new("ruby ruby_port/bin/replay") do |o|
        o.banner = "usage: ruby ruby_port/bin/replay [--fixtures fixtures] [--out runs/ruby] [--strategy NAME ...]\n\n" \
                   "The replay protocol of fixtures/README.md, on the fixtures' exact batches."
        o.on("--fixtures DIR", "default fixtures") { |v| options[:fixtures] = v }
        o.on("--out DIR", "default runs/ruby") { |v| options[:out] = v }
        o.on("--strategy NAME", "strategies to replay (default: every one in the fixtures); " \
                                "one or more of #{Recipe.choices("strategy").join(", ")}") do |v|
          (options[:strategies] ||= []) << Errors.parse_choice(v, "--strategy", Recipe.choices("strategy"))
        end
        o.on("--record-steps", "also write the training state after every step (STRATEGY/steps/after_N)") do
          options[:record_steps] = true
        end
        o.on("--resync RUN", "start every step from RUN's state after the same step (RUN made with --record-steps)") do |v|
          options[:resync] = v
        end
      end
      rest = parser.parse_known_args(argv)
      parser.error(Errors.unrecognized(rest.first, parser.long_options)) if rest.any? && !options[:strategies]
      # argparse's nargs="+": the words after --strategy that are not options are strategies too
      rest.each do |word|
        options[:strategies] << Errors.parse_choice(word, "--strategy", Recipe.choices("strategy"))
      rescue UserError => e
        parser.error(e.message)
      end
      options
    end

    def main(argv)
      options = parse_args(argv)
      Atomic.check_path_option(options[:out], "--out")
      Atomic.check_path_option(options[:fixtures], "--fixtures")
      CLI.load_port # the long work starts here, once the options are checked
      output = Atomic::OutputDir.new(options[:out], "replay", "--out", signature: "run.json")
      output.hold { replay(options, output) }
      warn "replay: wrote #{options[:out]}"
    end

    def replay(options, output)
      fixtures = options[:fixtures]
      manifest = read_manifest(fixtures)
      available = manifest["config"]["strategies"] || []
      strategies = options[:strategies] || available
      missing = strategies - available
      if missing.any?
        raise UserError, "#{fixtures} has no fixtures for #{missing.join(", ")} (it has #{available.join(", ")}); #{fix(fixtures)}"
      end

      check_fixtures(fixtures, manifest, strategies)
      warn "weights: #{manifest["weights"]["provenance"]} weights (sha256 #{manifest["weights"]["sha256"].to_s[0, 12]}) " \
           "from #{File.join(fixtures, "weights.json")}"
      strategies.each { |strategy| resync_steps(options[:resync], strategy) } if options[:resync]
      weights = read_fixture(fixtures, "weights")
      evaluation = read_fixture(fixtures, "eval")

      output.write do |out|
        strategies.each do |strategy|
          Dir.mkdir(File.join(out, strategy))
          replay_strategy(strategy, fixtures, manifest["protocol"], weights, evaluation, File.join(out, strategy),
                          record_steps: options[:record_steps], resync: options[:resync])
        end
        run = RuntimeInfo.describe.merge(
          fixtures_manifest_sha256: Checksums.file_sha256(File.join(fixtures, "manifest.json")),
          strategies: strategies,
          resync: options[:resync],
          weights: {provenance: manifest["weights"]["provenance"], sha256: manifest["weights"]["sha256"]}
        )
        File.write(File.join(out, "run.json"), JSON.pretty_generate(run) + "\n")
      end
    rescue KeyError => e
      raise UserError, "the fixtures in #{fixtures} lack #{e.key.inspect}; #{fix(fixtures)}"
    end
  end
end
