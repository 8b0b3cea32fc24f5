# frozen_string_literal: true

# What checked_fixtures needs, none of it LibTorch: bin/replay checks the fixtures before the port loads.
require_relative "checksums"
require_relative "model"
require_relative "strategies"
require_relative "tensor_io"
require_relative "fixtures_format"

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
    module_function

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
      initial = FixturesFormat.read_fixture(fixtures, "strategies/#{strategy}/initial")
      epochs = Array.new(protocol.fetch("epochs")) { |k| FixturesFormat.read_fixture(fixtures, "strategies/#{strategy}/epoch_#{k}") }
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

    def get_args_parser
      parser = ArgumentParser.new("ruby ruby_port/bin/replay",
                                  description: "The replay protocol of fixtures/README.md: train each strategy on the " \
                                               "fixtures' exact batches.")
      parser.add_argument("--fixtures", default: "fixtures")
      parser.add_argument("--out", default: "runs/ruby")
      parser.add_argument("--strategy", nargs: "+", choices: Recipe.choices("strategy"), dest: :strategies,
                                        help: "strategies to replay (default: every one in the fixtures)")
      parser.add_argument("--record-steps", action: :store_true,
                                            help: "also write the training state after every step (STRATEGY/steps/after_N)")
      parser.add_argument("--resync", metavar: "RUN",
                                      help: "start every step from RUN's state after the same step (RUN made with " \
                                            "--record-steps)")
      parser
    end

    def main(argv)
      options = get_args_parser.parse_args(argv)
      OutputClaim.check_path_option(options[:out], "--out")
      OutputClaim.check_path_option(options[:fixtures], "--fixtures")
      output = OutputClaim::OutputDir.new(options[:out], "replay", "--out", signature: "run.json")
      output.hold do # claimed before LibTorch loads: an --out we may not use costs nothing
        manifest, strategies = checked_fixtures(options[:fixtures], options[:strategies]) # before LibTorch loads too
        CLI.load_port # the long work starts here, once the options, --out and the fixtures are checked
        replay(options, manifest, strategies, output)
      end
      warn "replay: wrote #{options[:out]}"
    end

    # [the manifest, the strategies to replay (chosen, or every one the fixtures have)], every bundle the
    # replay reads checked against the manifest: JSON and sha256 alone, so bad fixtures cost no LibTorch.
    def checked_fixtures(fixtures, chosen)
      manifest = FixturesFormat.read_manifest(fixtures)
      available = manifest["config"]["strategies"] || []
      strategies = chosen || available
      missing = strategies - available
      if missing.any?
        raise UserError, "#{fixtures} has no fixtures for #{missing.join(", ")} (it has #{available.join(", ")}); #{FixturesFormat.fix(fixtures)}"
      end

      FixturesFormat.check_fixtures(fixtures, manifest, strategies)
      [manifest, strategies]
    end

    def replay(options, manifest, strategies, output)
      fixtures = options[:fixtures]
      warn "weights: #{manifest["weights"]["provenance"]} weights (sha256 #{manifest["weights"]["sha256"].to_s[0, 12]}) " \
           "from #{File.join(fixtures, "weights.json")}"
      strategies.each { |strategy| resync_steps(options[:resync], strategy) } if options[:resync]
      weights = FixturesFormat.read_fixture(fixtures, "weights")
      evaluation = FixturesFormat.read_fixture(fixtures, "eval")

      output.write do |out|
        strategies.each do |strategy|
          Dir.mkdir(File.join(out, strategy))
          replay_strategy(strategy, fixtures, manifest["protocol"], weights, evaluation, File.join(out, strategy),
                          record_steps: options[:record_steps], resync: options[:resync])
        end
        run = RuntimeInfo.describe.merge(
          fixtures_manifest_sha256: Checksums.file_sha256(File.join(fixtures, FixturesFormat::MANIFEST)),
          strategies: strategies,
          resync: options[:resync],
          weights: {provenance: manifest["weights"]["provenance"], sha256: manifest["weights"]["sha256"]}
        )
        File.write(File.join(out, "run.json"), JSON.pretty_generate(run) + "\n")
      end
    rescue KeyError => e
      raise UserError, "the fixtures in #{fixtures} lack #{e.key.inspect}; #{FixturesFormat.fix(fixtures)}"
    end
  end
end
