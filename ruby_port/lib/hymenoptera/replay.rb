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
    module_function

    def fix(fixtures)
      "regenerate them with `python reference_py/export_fixtures.py --out #{fixtures}`"
    end

    def read_manifest(fixtures)
      path = File.join(fixtures, "manifest.json")
      manifest = Errors.read_json(path, missing: "not found: no fixtures there", fix: fix(fixtures))
      return manifest if manifest.is_a?(Hash) && %w[config protocol weights].all? { |key| manifest[key].is_a?(Hash) }

      raise UserError, "#{path} is not a fixtures manifest (no config, protocol or weights); #{fix(fixtures)}"
    end

    def read_fixture(fixtures, name)
      TensorIO.read_bundle(File.join(fixtures, name))
    rescue TensorIO::BundleError => e
      raise UserError, "#{e.message}; #{fix(fixtures)}"
    end

    # Step 1: ResNet-18 with the fixtures' weights (scratch: `initial` whole) and `initial`'s fc.
    def build_replay_model(strategy, weights, initial)
      num_classes = initial.fetch("fc.weight").shape[0]
      if Strategies.uses_pretrained?(strategy)
        model = Model.resnet18_with_head(weights, num_classes: num_classes)
        model.fc.load_state_dict({"weight" => initial["fc.weight"], "bias" => initial["fc.bias"]})
      else
        model = Model.resnet18_with_head(nil, num_classes: num_classes)
        model.load_state_dict(initial)
      end
      Strategies.prepare(strategy, model)
    end

    # Eval mode, no grad, batch by batch in order: [logits, mean loss, accuracy].
    def evaluate(model, criterion, images, labels, batch_size)
      model.eval
      logits = []
      running_loss = 0.0
      running_corrects = 0
      Torch.no_grad do
        0.step(images.size(0) - 1, batch_size) do |start|
          inputs = images[start...(start + batch_size)]
          targets = labels[start...(start + batch_size)]
          outputs = model.call(inputs)
          _, preds = Torch.max(outputs, 1)
          loss = criterion.call(outputs, targets)
          running_loss += loss.item * inputs.size(0)
          running_corrects += Torch.sum(preds.eq(targets)).item
          logits << outputs
          TensorMemory.release
        end
      end
      [Torch.cat(logits), running_loss / images.size(0), running_corrects.to_f / images.size(0)]
    end

    # Step 5's training phase: [loss of every step, mean loss, accuracy, gradients after the first backward].
    def train_one_epoch(model, criterion, optimizer, batches, batch_size)
      model.train
      running_loss = 0.0
      running_corrects = 0
      losses = []
      first_grads = nil
      count = batches["images"].size(0)
      0.step(count - 1, batch_size) do |start|
        inputs = batches["images"][start...(start + batch_size)]
        targets = batches["labels"][start...(start + batch_size)]
        optimizer.zero_grad
        outputs = model.call(inputs)
        _, preds = Torch.max(outputs, 1)
        loss = criterion.call(outputs, targets)
        loss.backward
        first_grads ||= model.named_parameters.select { |_, p| p.requires_grad }.transform_values { |p| p.grad.clone }
        optimizer.step
        losses << loss.item
        running_loss += loss.item * inputs.size(0)
        running_corrects += Torch.sum(preds.eq(targets)).item
        TensorMemory.release
      end
      [losses, running_loss / count, running_corrects.to_f / count, first_grads]
    end

    # Step 3: every module's output, in FORWARD_ORDER, under no grad.
    def trace(model, inputs)
      Torch.no_grad { Model.forward_trace(model, inputs) }
    end

    # Steps 1 to 6 of the protocol for one strategy, writing its part of the run directory into out.
    def replay_strategy(strategy, fixtures, protocol, weights, evaluation, out)
      batch_size = protocol.fetch("batch_size")
      initial = read_fixture(fixtures, "strategies/#{strategy}/initial")
      epochs = Array.new(protocol.fetch("epochs")) { |k| read_fixture(fixtures, "strategies/#{strategy}/epoch_#{k}") }
      images, labels = evaluation.fetch("images"), evaluation.fetch("labels")
      model = build_replay_model(strategy, weights, initial)
      criterion = Torch::NN::CrossEntropyLoss.new

      eval_logits, = evaluate(model, criterion, images, labels, batch_size)
      TensorIO.write_bundle(File.join(out, "eval_logits"), {"logits" => eval_logits})
      _, eval_predictions = Torch.max(eval_logits, 1)

      model.eval
      TensorIO.write_bundle(File.join(out, "trace_eval"), trace(model, images[0...batch_size]))
      train_copy = model.deep_dup
      train_copy.train
      TensorIO.write_bundle(File.join(out, "trace_train"), trace(train_copy, epochs[0]["images"][0...batch_size]))

      optimizer = Strategies.make_optimizer(strategy, model, lr: protocol["lr"], momentum: protocol["momentum"],
                                                             backbone_lr: protocol["backbone_lr"], head_lr: protocol["head_lr"])
      scheduler = Strategies.make_scheduler(optimizer, step_size: protocol["step_size"], gamma: protocol["gamma"])

      best_model_wts = StateDict.copy(model)
      best_acc = 0.0
      best_epoch = nil
      history = []
      step_losses = []
      grads_step1 = nil
      epochs.each_with_index do |batches, epoch|
        lr = optimizer.param_groups.map { |group| group[:lr] }
        losses, train_loss, train_acc, grads = train_one_epoch(model, criterion, optimizer, batches, batch_size)
        grads_step1 = grads if epoch.zero?
        scheduler.step
        step_losses << losses

        _, val_loss, val_acc = evaluate(model, criterion, images, labels, batch_size)
        history << {epoch: epoch, lr: lr, train_loss: train_loss, train_acc: train_acc, val_loss: val_loss, val_acc: val_acc}
        warn format("replay %s epoch %d: train loss %.4f acc %.4f, val loss %.4f acc %.4f",
                    strategy, epoch, train_loss, train_acc, val_loss, val_acc)
        if val_acc > best_acc
          best_acc = val_acc
          best_epoch = epoch
          best_model_wts = StateDict.copy(model)
        end
        TensorIO.write_bundle(File.join(out, "state_epoch_#{epoch}"), model.state_dict)
      end

      model.load_state_dict(best_model_wts)
      TensorIO.write_bundle(File.join(out, "state_best"), model.state_dict)
      TensorIO.write_bundle(File.join(out, "step_losses"), {"step_losses" => Torch.tensor(step_losses, dtype: :float32)})
      TensorIO.write_bundle(File.join(out, "grads_step1"), grads_step1)
      summary = {strategy: strategy, epochs: history, best_epoch: best_epoch, best_acc: best_acc,
                 eval_predictions: eval_predictions.to_a, param_counts: Model.param_counts(model)}
      File.write(File.join(out, "summary.json"), JSON.pretty_generate(summary) + "\n")
    end

    def parse_args(argv)
      options = {fixtures: "fixtures", out: "runs/ruby", strategies: nil}
      parser = OptionParser.new do |o|
        o.banner = "usage: ruby ruby_port/bin/replay [--fixtures fixtures] [--out runs/ruby] [--strategy NAME ...]\n\n" \
                   "The replay protocol of fixtures/README.md, on the fixtures' exact batches."
        o.on("--fixtures DIR", "default fixtures") { |v| options[:fixtures] = v }
        o.on("--out DIR", "default runs/ruby") { |v| options[:out] = v }
        o.on("--strategy NAME", "strategies to replay (default: every one in the fixtures); " \
                                "one or more of #{Strategies::STRATEGIES.join(", ")}") do |v|
          (options[:strategies] ||= []) << v
        end
      end
      rest = parser.parse(argv)
      # argparse's nargs="+": the words after --strategy that are not options are strategies too
      options[:strategies] += rest if options[:strategies]
      rest = [] if options[:strategies]
      raise UserError, "unexpected argument #{rest.first.inspect}; see ruby ruby_port/bin/replay --help" if rest.any?

      unknown = (options[:strategies] || []) - Strategies::STRATEGIES
      raise UserError, "unknown strategy #{unknown.join(", ")}; choose from #{Strategies::STRATEGIES.join(", ")}" if unknown.any?

      options
    rescue OptionParser::ParseError => e
      raise UserError, "#{e.message}; see ruby ruby_port/bin/replay --help"
    end

    def main(argv)
      options = parse_args(argv)
      fixtures = options[:fixtures]
      manifest = read_manifest(fixtures)
      available = manifest["config"]["strategies"] || []
      strategies = options[:strategies] || available
      missing = strategies - available
      if missing.any?
        raise UserError, "#{fixtures} has no fixtures for #{missing.join(", ")} (it has #{available.join(", ")}); #{fix(fixtures)}"
      end

      warn "weights: #{manifest["weights"]["provenance"]} weights (sha256 #{manifest["weights"]["sha256"].to_s[0, 12]}) " \
           "from #{File.join(fixtures, "weights.json")}"
      weights = read_fixture(fixtures, "weights")
      evaluation = read_fixture(fixtures, "eval")

      Atomic.dir(options[:out]) do |out|
        strategies.each do |strategy|
          Dir.mkdir(File.join(out, strategy))
          replay_strategy(strategy, fixtures, manifest["protocol"], weights, evaluation, File.join(out, strategy))
        end
        run = RuntimeInfo.describe.merge(
          fixtures_manifest_sha256: Digest::SHA256.file(File.join(fixtures, "manifest.json")).hexdigest,
          strategies: strategies,
          weights: {provenance: manifest["weights"]["provenance"], sha256: manifest["weights"]["sha256"]}
        )
        File.write(File.join(out, "run.json"), JSON.pretty_generate(run) + "\n")
      end
      warn "replay: wrote #{options[:out]}"
    rescue KeyError => e
      raise UserError, "the fixtures in #{fixtures} lack #{e.key.inspect}; #{fix(fixtures)}"
    end
  end
end
