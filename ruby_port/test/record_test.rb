# frozen_string_literal: true

require_relative "test_helper"
require_relative "../lib/pytorch_parity/record/run_writer"

# pytorch_parity/record as a user runs it: `PYTORCH_PARITY_RECORD=DIR bundle exec ruby -rpytorch_parity/record
# program.rb`, in a process of its own, on small programs written on the gems' API. The run format is
# parity/RUN_FORMAT.md; these tests read it back with a few lines of their own.
class RecordTest < Minitest::Test
  include Hymenoptera::TestSupport

  LIB = File.expand_path("../lib", __dir__)

  # A loader over an Array, a Sequential, SGD with momentum, StepLR; prints every loss.
  PROGRAM = <<~RUBY
    require "torch"
    Torch.manual_seed(3)
    dataset = (0...6).map { |i| [Torch.full([2], i.to_f / 6), i % 2] }
    loader = Torch::Utils::Data::DataLoader.new(dataset, batch_size: 4, shuffle: true)
    model = Torch::NN::Sequential.new(Torch::NN::Linear.new(2, 3), Torch::NN::ReLU.new, Torch::NN::Linear.new(3, 2))
    optimizer = Torch::Optim::SGD.new(model.parameters, lr: 0.1, momentum: 0.9)
    scheduler = Torch::Optim::LRScheduler::StepLR.new(optimizer, step_size: 1, gamma: 0.5)
    criterion = Torch::NN::CrossEntropyLoss.new
    2.times do
      loader.each do |inputs, labels|
        optimizer.zero_grad
        loss = criterion.call(model.call(inputs), labels)
        loss.backward
        optimizer.step
        puts loss.item
      end
      scheduler.step
    end
  RUBY

  # [stdout, stderr, status] of program.rb (PROGRAM unless given) run with the -r flags and env.
  def run_program(flags, env: {}, program: PROGRAM)
    path = File.join(tmpdir, "program.rb")
    File.write(path, program)
    Bundler.with_unbundled_env do
      Open3.capture3({"OMP_NUM_THREADS" => "1", "RUBYLIB" => LIB, "BUNDLE_GEMFILE" => File.join(Hymenoptera::PythonReference::ROOT, "Gemfile")}.merge(env),
                     "bundle", "exec", "ruby", *flags, path, chdir: tmpdir)
    end
  end

  def record(dir, flags = ["-rpytorch_parity/record"], **options)
    run_program(flags, env: {"PYTORCH_PARITY_RECORD" => dir}.merge(options.delete(:env) || {}), **options)
  end

  def events(dir)
    File.readlines(File.join(dir, "events.jsonl")).map { |line| JSON.parse(line) }
  end

  # An array of an event, as the reader decodes it (float32 and int64 only: what these programs make).
  def array(dir, entry)
    bytes = File.binread(File.join(dir, entry["file"]), entry["nbytes"], entry["offset"])
    bytes.unpack({"float32" => "e*", "int64" => "q<*", "uint8" => "C*"}.fetch(entry["dtype"]))
  end

  def test_it_records_what_the_program_does_and_changes_nothing
    plain, = run_program([])
    dir = File.join(tmpdir, "run")
    out, err, status = record(dir)
    assert status.success?, err
    assert_equal plain, out, "the recorded program printed other losses"
    run = JSON.parse(File.read(File.join(dir, "run.json")))
    assert_equal ["pytorch-parity-run/1", "ruby"], [run["format"], run["side"]]
    recorded = events(dir)
    kinds = recorded.map { |event| event["kind"] }
    assert_equal %w[loader pass], kinds.first(2)
    model = kinds.index("model")
    assert_equal %w[model initial_state model_input module_output module_output module_output model_output buffers_after_forward loss gradients optimizer],
                 kinds[model, 11]
    assert_equal %w[0 1 2], recorded.select { |event| event["kind"] == "module_output" }.map { |event| event["module"] }
    assert_equal %w[scheduler optimizer], kinds.each_cons(2).find { |a, _| a == "scheduler" }
    assert_equal "completed", recorded.last["status"]
    losses = recorded.select { |event| event["kind"] == "loss" }
    assert_equal out.lines.map(&:to_f), losses.map { |event| array(dir, event["tensors"]["loss"]).first }
    first_pass = recorded.select { |event| event["kind"] == "indices" && event["pass"].zero? }.flat_map { |event| event["indices"] }
    assert_equal (0...6).to_a, first_pass.sort
    batch = recorded.find { |event| event["kind"] == "batch" }
    assert_equal first_pass.first(4).map { |i| i % 2 }, array(dir, batch["tensors"]["batch.1"])
  end

  def test_pytorch_parity_before_or_after_the_recorder_records_the_same_run
    runs = [%w[-rpytorch_parity -rpytorch_parity/record], %w[-rpytorch_parity/record -rpytorch_parity]].map do |flags|
      dir = File.join(tmpdir, flags.first.delete("-r").tr("/", "_"))
      _, err, status = record(dir, flags)
      assert status.success?, err
      recorded = events(dir)
      assert_includes recorded.last["pytorch_parity"], "torch/utils/data/data_loader.rb"
      [recorded.map { |event| [event["kind"], event["indices"], event["module"]] },
       Dir[File.join(dir, "tensors-*.bin")].map { |file| File.binread(file) }]
    end
    assert_equal runs[0], runs[1]
    assert_includes runs[0][0].map(&:first), "indices"
  end

  def test_a_program_that_raises_keeps_what_it_saw_and_the_error
    program = PROGRAM.sub("puts loss.item", "raise ArgumentError, 'the port broke' if optimizer.param_groups[0][:lr] < 0.1")
    dir = File.join(tmpdir, "run")
    _, err, status = record(dir, program: program)
    refute status.success?
    assert_match(/the port broke/, err)
    recorded = events(dir)
    assert_includes recorded.map { |event| event["kind"] }, "gradients"
    stop = recorded.last
    assert_equal %w[end raised ArgumentError the\ port\ broke], [stop["kind"], stop["status"], stop["error"]["class"], stop["error"]["message"]]
    assert_match(/\Aprogram\.rb:\d+:in /, File.basename(stop["error"]["where"]))
  end

  def test_the_folder_is_claimed_as_parity_record_claims_it
    dir = File.join(tmpdir, "run")
    Dir.mkdir(dir)
    File.write(File.join(dir, "notes.txt"), "mine")
    out, err, status = record(dir)
    assert_equal 2, status.exitstatus
    assert_equal "", out
    assert_equal "pytorch_parity/record: cannot record into #{dir}: it holds files the recorder did not write (notes.txt); " \
                 "give a new or empty folder\n", err
    assert_equal ["notes.txt"], Dir.children(dir)

    File.delete(File.join(dir, "notes.txt"))
    _, err, status = record(dir)
    assert status.success?, err
    File.write(File.join(dir, "tensors-1.bin"), "left by an earlier run")
    _, err, status = record(dir)
    assert status.success?, err
    refute File.exist?(File.join(dir, "tensors-1.bin")), "an earlier run's file stayed"
  end

  # The writers' lock (.NAME.lock beside the folder, the trainers' too): a second claim would delete the files
  # the first writer is writing (parity/test_run_format.py's twin).
  def test_a_folder_being_recorded_is_refused_until_the_recording_ends
    run = File.join(tmpdir, "run")
    first = PytorchParity::Record::RunWriter.new(run, {side: "ruby"})
    first.event("loss", {value: 1.0})
    error = assert_raises(PytorchParity::Record::Error) { PytorchParity::Record::RunWriter.new(run, {side: "ruby"}) }
    assert_equal "cannot record into #{run}: it is being written by another run (process #{Process.pid}; lock " \
                 "#{File.join(tmpdir, ".run.lock")}); wait for it to finish or give another folder", error.message
    assert_equal ["loss"], File.readlines(File.join(run, "events.jsonl")).map { |line| JSON.parse(line)["kind"] }
    first.close
    refute File.exist?(File.join(tmpdir, ".run.lock"))
    PytorchParity::Record::RunWriter.new(run, {side: "ruby"}).close
  end

  # A kill while run.json was written leaves .run.json.PID.tmp: the next run removes it (in a folder of its
  # own, or an empty one), and names that only resemble it count as the user's (parity/test_run_format.py's twin).
  def test_what_a_killed_recorder_left_is_tidied_by_its_name_alone
    run = File.join(tmpdir, "run")
    Dir.mkdir(run)
    File.write(File.join(run, ".run.json.4242.tmp"), '{"format": "pytorch-parity-run/1", "si')
    PytorchParity::Record::RunWriter.new(run, {side: "ruby"}).close
    assert_equal %w[events.jsonl run.json], Dir.children(run).sort
    File.write(File.join(run, ".run.json.4243.tmp"), "{")
    PytorchParity::Record::RunWriter.new(run, {side: "ruby"}).close
    assert_equal %w[events.jsonl run.json], Dir.children(run).sort
    mine = File.join(tmpdir, "mine")
    Dir.mkdir(mine)
    File.write(File.join(mine, ".run.json.backup.tmp"), "the user's")
    error = assert_raises(PytorchParity::Record::Error) { PytorchParity::Record::RunWriter.new(mine, {side: "ruby"}) }
    assert_match(/did not write \(\.run\.json\.backup\.tmp\)/, error.message)
    assert_equal "the user's", File.read(File.join(mine, ".run.json.backup.tmp"))
  end

  def test_a_folder_it_may_not_write_in_is_refused_with_the_fix
    run = File.join(tmpdir, "run")
    error = File.stub(:write, ->(*) { raise Errno::EACCES, "run.json" }) do
      assert_raises(PytorchParity::Record::Error) { PytorchParity::Record::RunWriter.new(run, {side: "ruby"}) }
    end
    assert_equal "cannot record into #{run}: it is not writable (Permission denied); make it writable or give another folder",
                 error.message
  end

  def test_seed_and_bad_input
    program = "require 'torch'\nputs Torch.rand(1).item\n"
    out, err, status = record(File.join(tmpdir, "run"), env: {"PYTORCH_PARITY_SEED" => "5"}, program: program)
    assert status.success?, err
    Torch.manual_seed(5)
    assert_equal Torch.rand(1).item, out.to_f
    assert_equal 5, JSON.parse(File.read(File.join(tmpdir, "run", "run.json")))["seed"]

    _, err, status = record(File.join(tmpdir, "other"), env: {"PYTORCH_PARITY_SEED" => "-1"}, program: program)
    assert_equal [2, "pytorch_parity/record: the seed -1 is not a whole number from 0 to #{2**64 - 1} (PYTORCH_PARITY_SEED=N)\n"],
                 [status.exitstatus, err]
    _, err, status = run_program(["-rpytorch_parity/record"], program: program)
    assert_equal [2, "pytorch_parity/record: PYTORCH_PARITY_RECORD is not set: give the folder the run goes to " \
                     "(PYTORCH_PARITY_RECORD=DIR)\n"], [status.exitstatus, err]
  end

  # With pytorch_parity's workers, worker 0 makes the first batch: it records the first sample's
  # transforms, into a tensors file of its own; a libvips image is stored as [height, width, bands].
  def test_the_first_sample_transforms_from_worker_zero_and_images_as_height_width_bands
    program = <<~RUBY
      require "torch"
      require "torchvision"
      Torch.manual_seed(0)
      class Pictures
        def size = 8
        def [](index)
          image = (Vips::Image.xyz(5, 3)[0] * 40 + index).bandjoin([Vips::Image.black(5, 3), Vips::Image.black(5, 3) + 9]).cast(:uchar)
          [TRANSFORM.call(image), index]
        end
      end
      TRANSFORM = TorchVision::Transforms::Compose.new([TorchVision::Transforms::RandomHorizontalFlip.new, TorchVision::Transforms::ToTensor.new])
      loader = Torch::Utils::Data::DataLoader.new(Pictures.new, batch_size: 2, shuffle: true, num_workers: 2)
      loader.each { |images, indices| }
    RUBY
    dir = File.join(tmpdir, "run")
    _, err, status = record(dir, %w[-rpytorch_parity -rpytorch_parity/record], program: program)
    assert status.success?, err
    recorded = events(dir)
    compose = recorded.select { |event| event["kind"] == "compose" }
    assert_equal [%w[RandomHorizontalFlip ToTensor]], compose.map { |event| event["transforms"] }
    transforms = recorded.select { |event| event["kind"] == "transform" }
    assert_equal [0, 1, 2], transforms.map { |event| event["position"] }
    input = transforms.first["tensors"]["output"]
    assert_equal [%w[image uint8], [3, 5, 3]], [input.values_at("form", "dtype"), input["shape"]]
    first_index = recorded.find { |event| event["kind"] == "indices" }["indices"].first
    assert_equal [first_index, 0, 9], array(dir, input).first(3), "the first pixel of the first sample, bands last"
    main_file = recorded.find { |event| event["kind"] == "batch" }["tensors"]["batch.0"]["file"]
    refute_equal main_file, input["file"], "the worker wrote into the main process's tensors file"
  end
end
