# frozen_string_literal: true

require "io/console"
require_relative "data_layout"
require_relative "model"
require_relative "strategies"
require_relative "weights"

module Hymenoptera
  # Train ResNet-18 on ants vs bees, as PyTorch's "Transfer Learning for Computer Vision" tutorial
  # does (mirrors reference_py/train.py).
  #
  #   ruby ruby_port/bin/train --strategy finetune --epochs 25 --lr 0.001 --momentum 0.9 \
  #       --data-dir DIR --weights net.pth --seed 0 --out-dir runs/train/ruby
  #
  # Writes OUT_DIR/STRATEGY/: curves.json, config.json (every option's value), curves.png,
  # train_grid.png, predictions.png, best.pth, and with --record the record/ bundles. The loop is
  # train_model, built from train_one_epoch and evaluate; Replay drives the same three methods on the
  # fixtures' batches.
  module Train
    module_function

    # The tutorial's training phase: one pass over data_loader in train mode. Returns [loss, accuracy].
    def train_one_epoch(model, criterion, optimizer, data_loader, observer = NO_OBSERVER, desc: nil)
      model.train
      running_loss = 0.0
      running_corrects = 0
      seen = 0
      each_batch(data_loader, desc: desc) do |inputs, labels|
        optimizer.zero_grad
        outputs = model.call(inputs)
        _, preds = Torch.max(outputs, 1)
        loss = criterion.call(outputs, labels)
        loss.backward
        optimizer.step
        observer.after_step(model, optimizer, inputs, labels, loss)
        running_loss += loss.item * inputs.size(0)
        running_corrects += Torch.sum(preds.eq(labels)).item
        seen += inputs.size(0)
      end
      [running_loss / seen, running_corrects.to_f / seen]
    end

    # The tutorial's validation phase: eval mode, no grad. Returns [loss, accuracy].
    def evaluate(model, criterion, data_loader, observer = NO_OBSERVER)
      model.eval
      running_loss = 0.0
      running_corrects = 0
      seen = 0
      Torch.no_grad do
        data_loader.each do |inputs, labels|
          outputs = model.call(inputs)
          _, preds = Torch.max(outputs, 1)
          loss = criterion.call(outputs, labels)
          observer.after_eval_batch(outputs)
          running_loss += loss.item * inputs.size(0)
          running_corrects += Torch.sum(preds.eq(labels)).item
          seen += inputs.size(0)
        end
      end
      [running_loss / seen, running_corrects.to_f / seen]
    end

    # The tutorial's loop: train then val each epoch, StepLR after training, keep the best val weights.
    # Returns the model holding the best weights and the history (per-epoch metrics, best epoch).
    def train_model(model, criterion, optimizer, scheduler, dataloaders, num_epochs: 25, progress: true,
                    observer: NO_OBSERVER)
      since = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      best_model_wts = Marshal.load(Marshal.dump(model.state_dict))
      best_acc = 0.0
      best_epoch = nil
      epochs = []

      num_epochs.times do |epoch|
        puts "Epoch #{epoch}/#{num_epochs - 1}"
        puts "-" * 10
        record = {epoch: epoch, lr: optimizer.param_groups.map { |group| group[:lr] }}

        record[:train_loss], record[:train_acc] = train_one_epoch(
          model, criterion, optimizer, dataloaders["train"], observer, desc: progress ? "epoch #{epoch}" : nil
        )
        scheduler.step
        puts format("train Loss: %.4f Acc: %.4f", record[:train_loss], record[:train_acc])

        record[:val_loss], record[:val_acc] = evaluate(model, criterion, dataloaders["val"], observer)
        puts format("val Loss: %.4f Acc: %.4f", record[:val_loss], record[:val_acc])
        if record[:val_acc] > best_acc
          best_acc = record[:val_acc]
          best_epoch = epoch
          best_model_wts = Marshal.load(Marshal.dump(model.state_dict))
        end
        epochs << record
        observer.after_epoch(epoch, model, optimizer)
        puts
      end

      time_elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - since
      puts format("Training complete in %.0fm %.0fs", (time_elapsed / 60).floor, time_elapsed % 60)
      puts format("Best val Acc: %4f", best_acc)

      model.load_state_dict(best_model_wts)
      [model, {epochs: epochs, best_epoch: best_epoch, best_acc: best_acc, seconds: time_elapsed}]
    end

    # The loader's batches, behind a progress bar on stderr that is erased when done (tqdm's with
    # leave=False; none when desc is nil).
    def each_batch(loader, desc:, &block)
      return loader.each(&block) if desc.nil?

      bar = ::ProgressBar.create(title: desc, total: loader.size, output: $stderr, autofinish: false,
                                 format: "%t: %p%%|%B| %c/%C [%a, %R it/s]", length: progress_width)
      loader.each do |*batch|
        block.call(*batch)
        bar.increment
      end
    ensure
      bar&.clear
    end

    # The progress bar's width: the terminal's, else 80. Without a length, ruby-progressbar asks for
    # the width anew at every refresh, and where stderr is not a terminal it runs `tput cols` and
    # `stty size` each time: about 50 processes an epoch, a fifth of a one-epoch run's wall time.
    def progress_width
      ($stderr.tty? && IO.console&.winsize&.last&.nonzero?) || 80
    end

    # The pretrained weights the strategy starts from (nil for scratch); ./net.pth (./vgg16.pth) is made
    # when missing.
    def load_backbone(strategy, weights_arg)
      return nil unless Strategies.uses_pretrained?(strategy)

      arch = Strategies.architecture(strategy)
      path = weights_arg || Weights::DEFAULT_PATHS.fetch(arch)
      PythonReference.run("pretrained.py", "--out", path, "--arch", arch) if weights_arg.nil? && !File.exist?(path)
      weights = Weights.load_weights(path, arch: arch)
      Weights.announce(weights)
      weights
    end

    def curves(options, weights, data_dir, standin, thread_count, history, data_order)
      {
        side: "ruby",
        strategy: options[:strategy],
        weights: weights ? weights.summary : {provenance: "none", sha256: nil, path: nil},
        data: {dir: data_dir.to_s, standin: standin},
        seed: options[:seed],
        threads: thread_count,
        stack: RuntimeInfo.describe,
        epochs: history[:epochs],
        best_epoch: history[:best_epoch],
        best_acc: history[:best_acc],
        data_order: {train: data_order},
        seconds: history[:seconds]
      }
    end

    COUNTS = Recipe::COUNTS.map(&:to_sym).freeze
    RATES = Recipe::RATES.map(&:to_sym).freeze

    def get_args_parser
      parser = ArgumentParser.new("ruby ruby_port/bin/train",
                                  description: "Train ResNet-18 on ants vs bees, as PyTorch's \"Transfer Learning for " \
                                               "Computer Vision\" tutorial does.")
      Recipe::SETTINGS.each do |name, setting|
        parser.add_argument(Recipe.flag(name), type: {"int" => Integer, "float" => Float}[setting.type],
                                               choices: Recipe.choices(name), default: setting.default,
                                               help: Recipe.help_text(name))
      end
      parser.add_argument("--data-dir", help: "hymenoptera_data's layout (default: the generated stand-in)")
      parser.add_argument("--weights", help: Recipe.weights_help)
      parser.add_argument("--seed", type: Integer, default: 0)
      parser.add_argument("--out-dir", default: "runs/train/ruby")
      parser.add_argument("--no-progress", action: :store_true, help: "no progress bar on stderr")
      parser.add_argument("--record", action: :store_true,
                                      help: "also write OUT_DIR/STRATEGY/record/: every step's loss, the first batch, " \
                                            "its gradients, the momentum buffers after the first step and at the end " \
                                            "(tensor bundles)")
      parser.add_argument("--print-config", action: :store_true,
                                            help: "print the resolved configuration as JSON and exit without training")
      parser
    end

    # Every option with the value this run uses, defaults included, under the names both trainers share.
    def resolved_config(options, thread_count)
      config = options.except(:print_config)
      default_weights = Weights::DEFAULT_PATHS.fetch(Strategies.architecture(options[:strategy]))
      config[:weights] = Strategies.uses_pretrained?(options[:strategy]) ? (options[:weights] || default_weights) : nil
      config[:threads] = thread_count
      config.sort.to_h
    end

    def parse_args(argv)
      options = get_args_parser.parse_args(argv)
      options[:progress] = !options.delete(:no_progress)
      check_options(options)
      options
    end

    def flag(key)
      "--#{key.to_s.tr("_", "-")}"
    end

    # Every option in its range, before anything is read or written (train.py's check_args).
    def check_options(options)
      COUNTS.each { |key| Errors.check_count(options[key], flag(key)) }
      RATES.each { |key| Errors.check_rate(options[key], flag(key)) }
      Errors.check_workers(options[:workers])
      Errors.check_seed(options[:seed])
      OutputClaim.check_path_option(options[:out_dir], "--out-dir")
      %i[data_dir weights].each do |key|
        next if options[key].nil? || !options[key].strip.empty?

        raise UserError, "#{flag(key)} \"\": expected a path; leave the option out for the default"
      end
      check_out_dir_outside_data(options[:out_dir], options[:data_dir] || PythonReference::STANDIN_DIR)
    end

    # The results (their PNGs are images to ImageFolder) never go into the data dir the next run trains on.
    def check_out_dir_outside_data(out_dir, data_dir)
      return unless OutputClaim.inside?(out_dir, data_dir)

      raise UserError, "--out-dir #{out_dir} is inside the data dir #{data_dir}, where the next run would train on " \
                       "this run's plots; choose a folder outside the data dir"
    end

    # The weights file and the data dir, as far as they can be checked before LibTorch loads (train.py's twin): the
    # weights file is there and not empty, the data dir has hymenoptera_data's layout and only files ImageFolder can
    # read. Their contents (the tensors, the images) are checked once it has loaded; the default weights when
    # missing, and the stand-in, are made then.
    def check_inputs(options)
      strategy = options[:strategy]
      if Strategies.uses_pretrained?(strategy)
        path = options[:weights] || Weights::DEFAULT_PATHS.fetch(Strategies.architecture(strategy))
        Weights.check_file(path) if options[:weights] || File.exist?(path)
      end
      DataLayout.check_layout(options[:data_dir]) if options[:data_dir]
    end

    # A value for JSON: a number that is not finite (a diverged loss) becomes null, as JSON has no NaN.
    def json_safe(value)
      case value
      when Float then value.finite? ? value : nil
      when Hash then value.transform_values { |item| json_safe(item) }
      when Array then value.map { |item| json_safe(item) }
      else value
      end
    end

    # The first epoch whose loss is not finite, or nil.
    def diverged_epoch(epochs)
      epochs.find { |e| ![e[:train_loss], e[:val_loss]].all?(&:finite?) }&.fetch(:epoch)
    end

    # OUT_DIR/STRATEGY, claimed (checked and locked) before the training starts.
    def output_dir(options)
      OutputClaim::OutputDir.new(File.join(options[:out_dir], options[:strategy]), "train", "--out-dir", signature: "curves.json")
    end

    def main(argv)
      $stdout.sync = true # the log line by line, also into a pipe or a file
      options = parse_args(argv)
      if options[:print_config]
        CLI.load_port
        return puts(JSON.pretty_generate(resolved_config(options, RuntimeInfo.threads)))
      end

      output = output_dir(options)
      output.hold do # claimed before LibTorch loads: an out-dir we may not use costs nothing
        check_inputs(options)
        CLI.load_port # the long work starts here, once the options, the out-dir and the inputs are checked
        thread_count = RuntimeInfo.threads
        train_and_write(options, resolved_config(options, thread_count), thread_count, output)
      end
      warn "train: wrote #{output.target}"
    end

    def train_and_write(options, config, thread_count, output)
      weights = load_backbone(options[:strategy], options[:weights])
      data_dir, standin = Data.resolve_data_dir(options[:data_dir])
      _, dataloaders, dataset_sizes, class_names = Data.load_data(data_dir, **options.slice(:batch_size, :seed, :workers))
      warn "data: #{Data.describe(data_dir, standin, dataset_sizes, class_names)}"

      Torch.manual_seed(options[:seed])
      model = Strategies.build_model(options[:strategy], weights&.state_dict, num_classes: class_names.size)
      criterion = Torch::NN::CrossEntropyLoss.new
      optimizer = Strategies.make_optimizer(options[:strategy], model, **options.slice(:lr, :momentum, :backbone_lr, :head_lr))
      scheduler = Strategies.make_scheduler(optimizer, **options.slice(:step_size, :gamma))
      recorder = options[:record] ? Recorder.new : NO_OBSERVER
      model, history = train_model(model, criterion, optimizer, scheduler, dataloaders,
                                   num_epochs: options[:epochs], progress: options[:progress], observer: recorder)
      data_order = dataloaders["train"].sampler.orders.dup

      record = curves(options, weights, data_dir, standin, thread_count, history, data_order)
      diverged = diverged_epoch(record[:epochs])
      if diverged
        warn "train: warning: the loss is not finite from epoch #{diverged} on (the training diverged); " \
             "curves.json records null there: lower the learning rate"
      end
      output.write do |out|
        File.write(File.join(out, "curves.json"), JSON.pretty_generate(json_safe(record)) + "\n")
        File.write(File.join(out, "config.json"), JSON.pretty_generate(config) + "\n")
        if options[:record]
          Dir.mkdir(File.join(out, "record"))
          recorder.write(File.join(out, "record"))
          # best.pth's tensors, as a bundle: Python cannot load torch.rb's .pth with weights_only (see README)
          TensorIO.write_bundle(File.join(out, "record", "best_state"), model.state_dict)
        end
        Weights.save_state_dict(File.join(out, "best.pth"), model.state_dict)
        Visualize.plot_curves(record[:epochs], File.join(out, "curves.png"))
        Visualize.save_train_grid(dataloaders["train"], class_names, File.join(out, "train_grid.png"))
        Visualize.visualize_model(model, dataloaders["val"], class_names, File.join(out, "predictions.png"))
      end
    end
  end
end
