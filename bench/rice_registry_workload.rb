# frozen_string_literal: true

# One process of bench/rice_registry_stress.rb: the Ruby port's torch.rb and torchvision-ruby calls,
# each at least once, loaded the way ruby_port/bin/* load the port.
#
#   ruby bench/rice_registry_workload.rb weights WORK_DIR        # WORK_DIR/net.pth (+ .json), a seeded stand-in
#   ruby bench/rice_registry_workload.rb run WORK_DIR INDEX      # one run; INDEX picks the strategy
#
# A run is what users run, on WORK_DIR/data (two tiny images per class and split): bin/train for one
# epoch with --record (weights, data pipeline, model, optimizer and scheduler, forward, backward,
# step, state dicts, tensor bundles, Torch.save, the figures), bin/preprocess on one image (the
# functional transforms), bin/logits (Torch.load, eval forward), the replay's per-module trace, and
# the runtime report.

ENV["BUNDLE_GEMFILE"] ||= File.expand_path("../Gemfile", __dir__)
require "bundler/setup"
require "tmpdir"

# Whether two of rice 4.0's keys `(53 + klass) * 53 + id` collide depends on what the process did
# before torch loaded: how many names it had interned (which shifts the method ids torch-rb gets)
# and what it had allocated (where torch-rb's classes land in the heap), and, through address
# randomisation, on the run. A process shaped like bin/train never collided here (500 of 500 kept
# every registry entry). So each run first interns a different number of names and allocates a
# different number of objects (both seeded by INDEX), then loads torch before the port, as scripts
# that `require "torch"` first do. On rice 4.0 as released, 8 of 500 such processes lost a registry
# entry and 2 of them aborted (the other losses hit methods the port does not call).
srand(Integer(ARGV[2] || "0", 10))
HEAP_VARIATION = Object.new.tap do |names|
  rand(0..2000).times { |k| names.instance_variable_set("@stress_name_#{k}", nil) } # interns @stress_name_K
end
HEAP_VARIATION_OBJECTS = Array.new(rand(0..3000)) { |k| k.even? ? Object.new : "x" * rand(0..64) }

port = File.expand_path("../ruby_port/lib", __dir__)
require File.join(port, "hymenoptera/errors")
require File.join(port, "hymenoptera/threads")
Hymenoptera::Threads.configure
require "torch"
require File.join(port, "hymenoptera")

H = Hymenoptera

# What rice's method registry holds in this process, for bench/rice_registry_stress.rb to tally: its
# number of entries and, where it is keyed by (class, method id) pairs (RICE_REGISTRY_PATCHED=1), how
# many of those pairs share rice 4.0's key `(53 + klass) * 53 + id` with another, that is, how many
# entries rice 4.0 would have lost to a collision in this process. Reads libstdc++'s unordered_map
# (buckets, bucket count, first node, element count; a node is its next pointer, then the key)
# through Fiddle.
def registry_report
  require "fiddle"
  so = $LOADED_FEATURES.find { |path| path.end_with?("/torch/ext.so") }
  map = Fiddle::Handle.new(so)["_ZN4Rice6detail10MethodData15methodWrappers_E"]
  node, count = Fiddle::Pointer.new(map + 16)[0, 16].unpack("QQ")
  return "entries=#{count}" unless ENV["RICE_REGISTRY_PATCHED"] == "1"

  old_keys = []
  while node != 0 && old_keys.size <= count
    node, klass, id = Fiddle::Pointer.new(node)[0, 24].unpack("QQQ")
    old_keys << (((53 + klass) * 53 + id) & 0xFFFF_FFFF_FFFF_FFFF) # size_t arithmetic, as rice 4.0 did
  end
  lost = old_keys.size == count ? count - old_keys.uniq.size : "unknown"
  "entries=#{count} rice40_would_lose=#{lost}"
end

def make_weights(work)
  path = File.join(work, "net.pth")
  Torch.manual_seed(0)
  H::Weights.save_state_dict(path, H::Model.resnet18.state_dict)
  record = {provenance: "stand-in", sha256: Digest::SHA256.file(path).hexdigest}
  File.write(H::Weights.provenance_path(path), JSON.generate(record))
end

def run(work, index)
  strategy = H::Strategies::STRATEGIES[index % H::Strategies::STRATEGIES.size]
  weights = File.join(work, "net.pth")
  image = Dir.glob(File.join(work, "data", "val", "*", "*.jpg")).min
  Dir.mktmpdir("run-#{index}-", work) do |out|
    # bin/train
    H::Train.main(["--strategy", strategy, "--epochs", "1", "--batch-size", "2", "--seed", index.to_s,
                   "--data-dir", File.join(work, "data"), "--weights", weights, "--out-dir", out,
                   "--no-progress", "--record"])
    H::Weights.read_state_dict(File.join(out, strategy, "best.pth"), what: "best.pth")

    # bin/preprocess
    spec = File.join(out, "spec.json")
    File.write(spec, JSON.generate(images: [{path: image, crop: [3, 5, 40, 50], flip: true}]))
    H::Preprocess.main([spec, File.join(out, "preprocessed")])
    batch = Torch.stack([H::TensorIO.read_bundle(File.join(out, "preprocessed")).fetch("0/val")])

    # bin/logits
    state_dict = H::Weights.read_state_dict(weights)
    H::Weights.validate(state_dict, weights)
    model = TorchVision::Models::ResNet18.new
    model.load_state_dict(state_dict)
    model.eval
    logits = Torch.no_grad { model.call(batch) }
    H::TensorIO.write_bundle(File.join(out, "logits"), {"logits" => logits}, meta: H::RuntimeInfo.describe)

    # the replay's trace and counts
    model = H::Strategies.build_model(strategy, H::Weights.complete(state_dict))
    model.eval
    Torch.no_grad { H::Model.forward_trace(model, batch) }
    H::Model.param_counts(model)
  end
end

$stdout.sync = true
warn "rice_registry: #{registry_report}"
mode, work, index = ARGV
case mode
when "weights" then make_weights(work)
when "run" then run(work, Integer(index, 10))
else abort "usage: ruby #{$PROGRAM_NAME} weights WORK_DIR | run WORK_DIR INDEX"
end
