# frozen_string_literal: true

require_relative "test_helper"

# Bad input through the real command lines: one line on stderr (what, where, how to fix), exit
# status 2, no backtrace, nothing written.
class BadInputsTest < Minitest::Test
  include Hymenoptera::TestSupport
  parallelize_me! # each test waits on its own ruby subprocess

  def out_dir
    File.join(tmpdir, "out")
  end

  def assert_user_error(script, *args, message:, env: {})
    stdout, stderr, status = if env.empty?
                               run_bin(script, *args)
                             else
                               Open3.capture3({"HYMENOPTERA_THREADS" => "1"}.merge(env), RbConfig.ruby,
                                              File.join(PORT, "bin", script), *args, chdir: tmpdir)
                             end
    assert_equal 2, status.exitstatus, "exit status; stderr:\n#{stderr}"
    assert_equal 1, stderr.lines.size, "one line on stderr, got:\n#{stderr}"
    assert_match(/\A#{script}: error: /, stderr)
    assert_match message, stderr
    refute_match(/\.rb:\d+:in /, stderr)
    assert_equal "", stdout
    refute File.exist?(out_dir), "nothing written to #{out_dir}"
  end

  def train(*args, **options)
    assert_user_error("train", *args, "--out-dir", out_dir, "--epochs", "1", "--no-progress", **options)
  end

  def state_dict_file(name, state)
    path = File.join(tmpdir, name)
    Torch.save(state, path)
    path
  end

  def test_logits_with_a_corrupt_checkpoint_or_a_wrong_argument_count
    bad = File.join(tmpdir, "bad.pth")
    File.write(bad, "not a checkpoint")
    assert_user_error("logits", bad, File.join(tmpdir, "batch"), out_dir,
                      message: /bad.pth is not a readable PyTorch checkpoint of tensors/)
    assert_user_error("logits", bad, message: /the following arguments are required: BATCH_STEM, OUT_STEM; see .*logits --help/)
  end

  def test_missing_weights
    train("--weights", File.join(tmpdir, "nowhere.pth"),
          message: %r{(\S*/nowhere.pth): weights file not found \(nothing there, or not a regular file\); create it with `python reference_py/pretrained.py --out \1`})
  end

  def test_corrupt_weights
    path = File.join(tmpdir, "corrupt.pth")
    File.binwrite(path, "PK\x03\x04 not really a checkpoint")
    # the advice names a new file: never a command that would overwrite the user's
    train("--weights", path, message: %r{corrupt.pth is not a readable PyTorch checkpoint of tensors .*; make a new file with `python reference_py/pretrained.py --out \S*/corrupt-1.pth`})
  end

  def test_weights_with_wrong_keys
    path = state_dict_file("keys.pth", {"encoder.weight" => Torch.zeros(2)})
    train("--weights", path, message: /keys.pth is not a ResNet-18 state dict with a 1000-class fc: \d+ missing entries .*1 unexpected entries \(first: encoder.weight\)/)
  end

  def test_weights_with_wrong_shapes
    state = Hymenoptera::Model.resnet18.state_dict.transform_values(&:detach)
    state["fc.weight"] = Torch.zeros(2, 512)
    path = state_dict_file("shapes.pth", state)
    train("--weights", path, message: /wrong shapes: fc.weight \[2, 512\] \(expected \[1000, 512\]\)/)
  end

  def test_missing_data_dir
    train("--strategy", "scratch", "--data-dir", File.join(tmpdir, "absent"),
          message: %r{data dir \S*/absent not found; pass --data-dir a folder in hymenoptera_data's layout})
  end

  def test_empty_data_dir
    FileUtils.mkdir_p(File.join(tmpdir, "empty"))
    train("--strategy", "scratch", "--data-dir", File.join(tmpdir, "empty"), message: %r{empty/train not found: a data dir holds train/ and val/})
  end

  def test_class_folder_without_images
    data = write_data_dir(File.join(tmpdir, "data"))
    FileUtils.rm(Dir[File.join(data, "val/bees/*")])
    File.write(File.join(data, "val/bees/notes.txt"), "no images here")
    train("--strategy", "scratch", "--data-dir", data, message: %r{data/val/bees has no images \(.*\); add images to it or remove the folder})
  end

  def test_corrupt_jpeg
    data = write_data_dir(File.join(tmpdir, "data"))
    jpeg = File.join(data, "train/ants/1.jpg")
    File.binwrite(jpeg, File.binread(jpeg)[0, 400])
    train("--strategy", "scratch", "--data-dir", data, message: %r{train/ants/1.jpg: not a readable image \(.*\); replace or delete the file})
  end

  def test_unknown_strategy_and_bad_thread_setting
    train("--strategy", "everything", message: /argument --strategy: invalid choice: 'everything' \(choose from 'finetune', .*\); see ruby ruby_port\/bin\/train --help/)
    train(message: /HYMENOPTERA_THREADS="two": expected a whole number of threads/, env: {"HYMENOPTERA_THREADS" => "two"})
  end

  # read alike on both sides (the twin: reference_py/tests/test_threads.py)
  def test_a_thread_setting_that_is_not_1_to_4_per_core_is_refused
    most = Hymenoptera::Threads::PER_CORE_MAX * Etc.nprocessors
    ["two", "0", "01", "²", "١", "1_0", " 2", (most + 1).to_s, "10000", "9" * 5000].each do |value|
      error = with_env(Hymenoptera::Threads::ENV_VAR => value) do
        assert_raises(Hymenoptera::Threads::SettingError) { Hymenoptera::Threads.count }
      end
      assert_includes error.message, "expected a whole number of threads from 1 to #{most}", value
    end
    ["1", most.to_s].each do |value|
      assert_equal Integer(value), with_env(Hymenoptera::Threads::ENV_VAR => value) { Hymenoptera::Threads.count }
    end
  end

  # read alike on both sides (the twin: reference_py/tests/test_errors.py)
  def test_options_grammar
    errors = Hymenoptera::Errors
    {"0" => 0, "25" => 25, "-1" => -1, "18446744073709551614" => 2**64 - 2}.each do |word, value|
      assert_equal value, errors.parse_int(word, "--epochs")
    end
    ["01", "1__0", "1_0", "١", "²", "３", " 3", "3 ", "+3", "3.0", "0x10", "", "-", "9" * 101].each do |word|
      error = assert_raises(Hymenoptera::UserError) { errors.parse_int(word, "--epochs") }
      assert error.message.start_with?("argument --epochs: invalid int value: '#{word}' (write a whole number in ASCII"), word
    end
    {"0.001" => 0.001, "1e-4" => 1e-4, ".5" => 0.5, "-0.5" => -0.5, "1E5" => 1e5, "0" => 0.0, "inf" => Float::INFINITY,
     "-Infinity" => -Float::INFINITY}.each { |word, value| assert_equal value, errors.parse_float(word, "--lr") }
    assert errors.parse_float("nan", "--lr").nan?
    ["1.", "00.5", "01", "1_0", "٠.١", "０.１", "0x1p3", " 1", "+1", "", "1e", "e5", "infinite"].each do |word|
      error = assert_raises(Hymenoptera::UserError) { errors.parse_float(word, "--lr") }
      assert error.message.start_with?("argument --lr: invalid float value: '#{word}' (write a number in ASCII"), word
    end
    ["fine", "Finetune", "finetune ", ""].each do |word|
      error = assert_raises(Hymenoptera::UserError) { errors.parse_choice(word, "--strategy", %w[finetune scratch]) }
      assert_equal "argument --strategy: invalid choice: '#{word}' (choose from 'finetune', 'scratch')", error.message
    end
    {%w[--epo 3] => "unrecognized argument '--epo': options are not abbreviated (did you mean --epochs?)",
     %w[--batch_size 3] => "unrecognized argument '--batch_size'", %w[-e 3] => "unrecognized argument '-e'",
     %w[--epochs] => "argument --epochs: expected one argument", %w[--data-dir -x] => "argument --data-dir: expected one argument",
     %w[--record=1] => "argument --record: ignored explicit argument '1'", %w[3] => "unrecognized argument '3'"}.each do |argv, message|
      error = assert_raises(Hymenoptera::UserError) { Hymenoptera::Train.parse_args(argv) }
      assert_equal "#{message}; see ruby ruby_port/bin/train --help", error.message
    end
    options = Hymenoptera::Train.parse_args(%w[--epochs=3 --seed 0 --lr 0 --strategy scratch])
    assert_equal [3, 0, 0.0, "scratch"], options.values_at(:epochs, :seed, :lr, :strategy)
  end

  def with_env(values)
    saved = values.keys.to_h { |key| [key, ENV.fetch(key, nil)] }
    values.each { |key, value| ENV[key] = value }
    yield
  ensure
    saved.each { |key, value| ENV[key] = value }
  end

  # Each entry point checks its options before it sets the bundle up (CLI.load_port does, then loads LibTorch):
  # Bundler's setup was most of a refused command's 0.26 CPU-s. Until then it loads no gem of Gemfile.lock, whose
  # version, once another is active, Bundler refuses to set up.
  def test_bad_options_are_refused_before_the_bundle_is_set_up
    locked = Bundler::LockfileParser.new(Bundler.read_file(Bundler.default_lockfile)).specs.map(&:name)
    probe = File.join(tmpdir, "probe.rb")
    File.write(probe, "at_exit { File.write(ENV.fetch('PROBE_OUT'), JSON.generate(" \
                      "bundle: $LOADED_FEATURES.grep(%r{/bundler/setup[.]rb\\z}), gems: Gem.loaded_specs.keys)) }\n")
    {"train" => %w[--epochs 0], "replay" => ["--fixtures", File.join(tmpdir, "none"), "--out", out_dir],
     "preprocess" => %w[spec.json], "summary" => %w[--strategy vgg], "zoo" => %w[--out zoo --arch resnet],
     "logits" => %w[net.pth]}.each do |script, args|
      report = File.join(tmpdir, "#{script}.json")
      env = Bundler.original_env.merge("PROBE_OUT" => report, "HYMENOPTERA_THREADS" => "1")
      _, stderr, status = Open3.capture3(env, RbConfig.ruby, "-r", probe, File.join(PORT, "bin", script), *args,
                                         chdir: tmpdir, unsetenv_others: true)
      assert_equal [2, 1], [status.exitstatus, stderr.lines.size], "#{script}: #{stderr}"
      loaded = JSON.parse(File.read(report))
      assert_empty loaded["bundle"], "#{script} set the bundle up before refusing: #{stderr}"
      assert_empty loaded["gems"] & locked, "#{script} loaded gems of the bundle before setting it up"
    end
  end

  def test_missing_fixtures
    assert_user_error("replay", "--fixtures", File.join(tmpdir, "nofixtures"), "--out", out_dir,
                      message: %r{nofixtures/manifest.json not found: no fixtures there; regenerate them with `python reference_py/export_fixtures.py})
  end

  def test_bad_preprocess_spec
    spec = File.join(tmpdir, "spec.json")
    File.write(spec, JSON.generate({"images" => [{"path" => "a.jpg", "crop" => [1, 2, 0, 4]}]}))
    assert_user_error("preprocess", spec, File.join(out_dir, "stem"), message: /spec \S+: images\[0\] must be/)
  end
end
