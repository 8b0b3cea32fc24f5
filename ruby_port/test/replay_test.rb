# frozen_string_literal: true

require_relative "test_helper"

# The replay protocol end to end (bin/replay) on a tiny synthetic fixture set: 32x32 images, eight
# per set, two epochs of two steps.
class ReplayTest < Minitest::Test
  include Hymenoptera::TestSupport
  parallelize_me! # each test waits on its own ruby subprocess
  TensorIO = Hymenoptera::TensorIO
  Model = Hymenoptera::Model
  PROTOCOL = Hymenoptera::FixturesFormat::PROTOCOL.transform_keys(&:to_sym)
  STRATEGIES = %w[feature_extractor backbone_lr].freeze

  def fixtures
    File.join(tmpdir, "fixtures")
  end

  def write_fixtures
    Torch.manual_seed(7)
    labels = Torch.tensor([0, 1] * 4)
    TensorIO.write_bundle(File.join(fixtures, "weights"), Model.resnet18.state_dict)
    TensorIO.write_bundle(File.join(fixtures, "eval"), {"images" => Torch.randn(8, 3, 32, 32), "labels" => labels})
    STRATEGIES.each do |strategy|
      folder = File.join(fixtures, "strategies", strategy)
      head = Model.seeded_head(1)
      TensorIO.write_bundle(File.join(folder, "initial"), {"fc.weight" => head.weight, "fc.bias" => head.bias},
                            meta: {strategy: strategy})
      PROTOCOL[:epochs].times do |k|
        TensorIO.write_bundle(File.join(folder, "epoch_#{k}"),
                              {"order" => Torch.randperm(8), "images" => Torch.randn(8, 3, 32, 32), "labels" => labels},
                              meta: {strategy: strategy, epoch: k})
      end
    end
    bundles = Dir.glob("**/*.json", base: fixtures).to_h do |name|
      [name.delete_suffix(".json"), TensorIO.read_index(File.join(fixtures, name.delete_suffix(".json")))["tensors"]
        .map { |t| t.slice("name", "dtype", "shape") }]
    end
    manifest = {format: Hymenoptera::FixturesFormat::FORMAT, generator_version: Hymenoptera::FixturesFormat::GENERATOR_VERSION,
                config: {strategies: STRATEGIES}, protocol: PROTOCOL, weights: {provenance: "stand-in", sha256: "0" * 64},
                versions: {python: "3.11", torch: "1.13.1", torchvision: "0.14.1", libtorch: "1.13.1"}, bundles: bundles,
                files: Dir.glob("**/*.{json,bin}", base: fixtures).to_h { |name| [name, Hymenoptera::Checksums.file_sha256(File.join(fixtures, name))] }}
    File.write(File.join(fixtures, "manifest.json"), JSON.generate(manifest))
  end

  def replay(*args)
    run_bin("replay", "--fixtures", fixtures, "--out", File.join(tmpdir, "run"), *args)
  end

  def bundle(strategy, name)
    TensorIO.read_bundle(File.join(tmpdir, "run", strategy, name))
  end

  def test_a_replay_writes_the_whole_run_directory
    write_fixtures
    _, stderr, status = replay
    assert status.success?, stderr

    run = JSON.parse(File.read(File.join(tmpdir, "run", "run.json")))
    assert_equal %w[ruby 0.3.0 0.12.2 1], run.values_at("side", "torchvision", "torch_rb", "threads").map(&:to_s)
    assert_match(/\A1\.13\./, run["libtorch"])
    assert_equal Digest::SHA256.file(File.join(fixtures, "manifest.json")).hexdigest, run["fixtures_manifest_sha256"]
    assert_equal STRATEGIES, run["strategies"]
    assert_equal "stand-in", run["weights"]["provenance"]

    fe = JSON.parse(File.read(File.join(tmpdir, "run", "feature_extractor", "summary.json")))
    assert_equal [[0.001], [0.0001]], fe["epochs"].map { |e| e["lr"] }
    assert_equal({"trainable" => 1026, "frozen" => 11_176_512, "total" => 11_177_538}, fe["param_counts"])
    logits = bundle("feature_extractor", "eval_logits")["logits"]
    assert_equal [8, 2], logits.shape
    assert_equal logits.argmax(1).to_a, fe["eval_predictions"]
    assert_equal %w[fc.weight fc.bias], bundle("feature_extractor", "grads_step1").keys

    trace = bundle("feature_extractor", "trace_eval")
    assert_equal Model::FORWARD_ORDER, trace.keys
    assert Torch.equal(logits[0...4], trace["fc"])
    assert_equal Model::FORWARD_ORDER, bundle("feature_extractor", "trace_train").keys
    assert_equal [2, 2], bundle("feature_extractor", "step_losses")["step_losses"].shape

    # the frozen backbone keeps its weights but BatchNorm statistics move: 4 training batches, and the
    # train-mode trace ran on a copy
    weights = TensorIO.read_bundle(File.join(fixtures, "weights"))
    epoch1 = bundle("feature_extractor", "state_epoch_1")
    assert Torch.equal(weights["layer1.0.conv1.weight"], epoch1["layer1.0.conv1.weight"])
    refute Torch.equal(weights["bn1.running_mean"], epoch1["bn1.running_mean"])
    assert_equal 4, epoch1["bn1.num_batches_tracked"].item
    assert_equal 0, weights["bn1.num_batches_tracked"].item

    bl = JSON.parse(File.read(File.join(tmpdir, "run", "backbone_lr", "summary.json")))
    assert_equal [[1e-4, 1e-3], [1e-5, 1e-4]], bl["epochs"].map { |e| e["lr"] }
    assert_equal 62, bundle("backbone_lr", "grads_step1").size
    best = bl["best_epoch"] ? bundle("backbone_lr", "state_epoch_#{bl["best_epoch"]}") : nil
    state_best = bundle("backbone_lr", "state_best")
    best&.each { |name, tensor| assert Torch.equal(tensor, state_best[name]), name }
  end

  def test_a_damaged_fixture_is_one_line_and_nothing_is_written
    write_fixtures
    path = File.join(fixtures, "strategies", "backbone_lr", "epoch_1.bin")
    File.binwrite(path, File.binread(path)[0, 100])
    _, stderr, status = replay("--strategy", "backbone_lr")
    assert_equal 2, status.exitstatus
    assert_match(%r{^replay: error: \S+epoch_1.bin: sha256 \h{12}, the manifest lists \h{12} \(a file of another export, or changed\); regenerate them with `python reference_py/export_fixtures.py --out \S+`\n\z}, stderr)
    refute File.exist?(File.join(tmpdir, "run"))
    _, stderr, status = replay("--strategy", "scratch")
    assert_equal 2, status.exitstatus
    assert_match(/has no fixtures for scratch \(it has feature_extractor, backbone_lr\)/, stderr)
  end
end
