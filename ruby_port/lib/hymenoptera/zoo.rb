# frozen_string_literal: true

require "fileutils"

module Hymenoptera
  # The zoo: every architecture torchvision-ruby 0.3 shares with torchvision 0.14, run as
  # reference_py/zoo.py runs it (which writes the stand-in: weights, batch; the layout is described
  # there). For each architecture this side waits for the stand-in, builds the model from the same seed
  # (its own initialisation, compared by digest: ruby/init), loads the stand-in and computes the same
  # results into ruby/; with --digests-only, the stand-in's weights and the results are digests alone
  # (TensorIO.write_digests), and the model computes from its own initialisation once its digests are the
  # stand-in's.
  module Zoo
    ARCHITECTURES = {
      "alexnet" => -> { TorchVision::Models::AlexNet.new },
      "resnet18" => -> { TorchVision::Models::ResNet18.new },
      "resnet34" => -> { TorchVision::Models::ResNet34.new },
      "resnet50" => -> { TorchVision::Models::ResNet50.new },
      "resnet101" => -> { TorchVision::Models::ResNet101.new },
      "resnet152" => -> { TorchVision::Models::ResNet152.new },
      "resnext50_32x4d" => -> { TorchVision::Models::ResNext50_32x4d.new },
      "resnext101_32x8d" => -> { TorchVision::Models::ResNext101_32x8d.new },
      "wide_resnet50_2" => -> { TorchVision::Models::WideResNet50_2.new },
      "wide_resnet101_2" => -> { TorchVision::Models::WideResNet101_2.new },
      "vgg11" => -> { TorchVision::Models::VGG11.new },
      "vgg11_bn" => -> { TorchVision::Models::VGG11BN.new },
      "vgg13" => -> { TorchVision::Models::VGG13.new },
      "vgg13_bn" => -> { TorchVision::Models::VGG13BN.new },
      "vgg16" => -> { TorchVision::Models::VGG16.new },
      "vgg16_bn" => -> { TorchVision::Models::VGG16BN.new },
      "vgg19" => -> { TorchVision::Models::VGG19.new },
      "vgg19_bn" => -> { TorchVision::Models::VGG19BN.new }
    }.freeze
    POLL_SECONDS = 0.05
    TIMEOUT = 1800 # seconds this side waits for Python's (reference_py/zoo.py's TIMEOUT)
    NOTICE_SECONDS = 10 # a longer wait says what it waits for: run by hand, the zoo may wait for what never comes

    module_function

    # torchvision-ruby's model, initialised from the current seed.
    def build(arch)
      ARCHITECTURES.fetch(arch) { raise UserError, "unknown architecture #{arch.inspect}; choose from #{ARCHITECTURES.keys.join(", ")}" }.call
    end

    # [name, module] of every module without children, in registration order.
    def leaf_modules(model)
      model.named_modules.select { |_, mod| mod.named_children.empty? }
    end

    # Every leaf module's forward wrapped (torch.rb has no forward hooks): each call's output in call
    # order, and Dropout's masks (mirrors reference_py/zoo.py's LeafRecorder).
    class LeafRecorder
      attr_reader :outputs, :masks

      def initialize(model)
        @outputs = {}
        @masks = {}
        recorder = self
        @wrapped = Zoo.leaf_modules(model).map do |name, mod|
          mod.define_singleton_method(:forward) do |*args, **kwargs|
            output = super(*args, **kwargs)
            recorder.record(name, self, args.first, output)
            output
          end
          mod
        end
      end

      def record(name, mod, input, output)
        key = format("%04d %s", @outputs.size, name)
        @outputs[key] = output.detach.clone # a copy: an in-place ReLU would overwrite it
        @masks[key] = Zoo.dropout_mask(input, output) if mod.is_a?(Torch::NN::Dropout) && mod.training
      end

      def remove
        @wrapped.each { |mod| mod.singleton_class.send(:remove_method, :forward) }
      end
    end

    # 1 where Dropout kept an element (or could not zero it: it was 0), 0 where it zeroed a non-zero one.
    def dropout_mask(input, output)
      output.ne(0).logical_or(input.eq(0)).to(:uint8)
    end

    # [logits, leaf outputs, Dropout masks] of one forward pass.
    def traced(model, inputs)
      recorder = LeafRecorder.new(model)
      logits = model.call(inputs)
      [logits, recorder.outputs, recorder.masks]
    ensure
      recorder&.remove
    end

    # Yields every result reference_py/zoo.py lists, as name, {key => tensor}, in the order they are made. The
    # gradients are the parameters' own, before the SGD step: the block writes them when they come (mirrors
    # reference_py/zoo.py's run).
    def run(model, inputs, targets, seed:, lr:, momentum:)
      model.eval
      logits, eval_trace, = Torch.no_grad { traced(model, inputs) }
      yield "eval_logits", {"logits" => logits}
      yield "eval_trace", eval_trace
      model.train
      optimizer = Torch::Optim::SGD.new(model.parameters, lr: lr, momentum: momentum)
      optimizer.zero_grad
      Torch.manual_seed(seed) # Dropout's draws
      outputs, train_trace, masks = traced(model, inputs)
      loss = Torch::NN::CrossEntropyLoss.new.call(outputs, targets)
      loss.backward
      yield "train_trace", train_trace
      yield "dropout_masks", masks
      yield "train_loss", {"loss" => loss.detach}
      yield "grads", model.named_parameters.transform_values(&:grad)
      optimizer.step
      yield "state_after", model.state_dict
    end

    # This side's initialisation from seed against the stand-in's (torchvision's): the digest of every
    # state-dict entry, and in full each entry whose bytes differ from the stand-in's.
    def initial_weights(model, standin_index)
      standin_digests = standin_index["tensors"].to_h { |entry| [entry["name"], entry["sha256"]] }
      digests = model.state_dict.transform_values { |tensor| TensorIO.sha256(tensor) }
      differing = model.state_dict.select { |name, _| digests[name] != standin_digests[name] }
      [differing, digests]
    end

    # Until the block (or path's existence) is true; a wait longer than notice seconds says once on stderr what
    # it waits for.
    def wait_for(path, what = path, timeout: TIMEOUT, notice: NOTICE_SECONDS)
      start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      noticed = false
      until block_given? ? yield : File.exist?(path)
        waited = Process.clock_gettime(Process::CLOCK_MONOTONIC) - start
        raise UserError, "waited #{timeout} s for #{path}" if waited > timeout

        if waited > notice && !noticed
          warn "zoo: waiting for #{what}"
          noticed = true
        end
        sleep POLL_SECONDS
      end
    end

    # dir once reference_py/zoo.py has claimed it (its marker names the zoo), waited for while it is missing
    # or empty; a folder of anything else is refused (the claim rule of reference_py/output_claim.py).
    def zoo_dir(dir)
      wait_for(File.join(dir, OutputClaim::MARKER), "#{dir} to be claimed by reference_py/zoo.py (run it with the same --out)") do
        marker = OutputClaim.read_marker(dir)
        if marker && marker["tool"] != "zoo"
          raise UserError, "#{dir} was written by #{marker["tool"]}, not by zoo (its #{OutputClaim::MARKER} says so); " \
                           "pass --out the folder reference_py/zoo.py --out writes to"
        end
        unless marker || !File.exist?(dir) || (File.directory?(dir) && Dir.empty?(dir))
          raise UserError, "#{dir} exists and was not written by zoo (no #{OutputClaim::MARKER} in it); " \
                           "pass --out the folder reference_py/zoo.py --out writes to"
        end
        marker
      end
      dir
    end

    # With digests_only (reference_py/zoo.py's --digests-only) the stand-in's weights are their digests alone: the
    # model computes from its own initialisation where every digest is the stand-in's, and not at all where one is
    # not (ruby/init says which); the results are written as their digests alone.
    def run_arch(dir, arch, digests_only: false)
      folder = File.join(dir, arch)
      wait_for(File.join(folder, "standin_batch.json"),
               "#{File.join(folder, "standin_batch.json")}, which reference_py/zoo.py writes (run it with the same --out)")
      batch, meta = TensorIO.read_bundle(File.join(folder, "standin_batch"), meta: true)
      weights_stem = File.join(folder, "standin_weights")
      Torch.manual_seed(meta.fetch("seed"))
      model = build(arch)
      init_differing, init_digests = initial_weights(model, TensorIO.read_digests(weights_stem))
      side = File.join(folder, "ruby")
      FileUtils.mkdir_p(side)
      TensorIO.write_bundle(File.join(side, "init"), init_differing, meta: {arch: arch, sha256: init_digests})
      if !digests_only
        model.load_state_dict(TensorIO.read_bundle(weights_stem))
      elsif !init_differing.empty? # the stand-in's values are not here to compute from
        return Atomic.write_text(File.join(side, "done.json"), JSON.generate(RuntimeInfo.describe) + "\n")
      end
      write = digests_only ? TensorIO.method(:write_digests) : TensorIO.method(:write_bundle)
      run(model, batch.fetch("inputs"), batch.fetch("targets"), seed: meta.fetch("seed"), lr: meta.fetch("lr"),
                                                                momentum: meta.fetch("momentum")) do |name, tensors|
        write.call(File.join(side, name), tensors, meta: {arch: arch})
      end
      Atomic.write_text(File.join(side, "done.json"), JSON.generate(RuntimeInfo.describe) + "\n")
    end

    def main(argv)
      parser = ArgumentParser.new("ruby ruby_port/bin/zoo",
                                  description: "The zoo: every architecture torchvision-ruby 0.3 shares with " \
                                               "torchvision 0.14, run the same way on both sides.")
      parser.add_argument("--out", required: true, help: "the directory both sides work in")
      parser.add_argument("--arch", nargs: "+", choices: ARCHITECTURES.keys, default: ARCHITECTURES.keys,
                                    help: "architectures, in order (default: all #{ARCHITECTURES.size})")
      parser.add_argument("--digests-only", action: :store_true,
                          help: "write the stand-in's weights and the results as their sha256 digests alone, not " \
                                "their values (give it to both sides; parity/test_zoo.py does, and runs an " \
                                "architecture again without it where a digest differs)")
      options = parser.parse_args(argv)

      zoo_dir(options[:out]) # before LibTorch loads: a refused --out costs nothing
      CLI.load_port # the long work starts here, once the options and --out are checked
      options[:arch].each do |arch|
        run_arch(options[:out], arch, digests_only: options[:digests_only])
        GC.start # torch.rb frees LibTorch memory only when Ruby's GC runs: the big models must not pile up
      end
    end
  end
end
