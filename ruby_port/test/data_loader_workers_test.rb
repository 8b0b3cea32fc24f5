# frozen_string_literal: true

require_relative "test_helper"
require_relative "draws"
require_relative "../lib/pytorch_parity/torch/utils/data/data_loader_workers"

# num_workers above 0 (pytorch_parity's data_loader_workers.rb): worker processes seeded and dealt
# batches as PyTorch 1.13's, exact batches, errors and deaths reported, and no process left behind.
# The same loaders against PyTorch's own, bit for bit: parity/test_data_loader.py.
class DataLoaderWorkersTest < Minitest::Test
  include Hymenoptera::TestSupport
  Data = Torch::Utils::Data
  LIBRARY = File.expand_path("../lib", __dir__)

  # draws.rb's Draws, whose samples also carry the process that made them:
  # [Torch.rand(3) from the global generator, index, the process that made it]
  class Draws < ::Draws
    def [](index)
      super << Process.pid
    end
  end

  # Samples made by a block (index => sample).
  class Samples
    def initialize(size, &block)
      @size = size
      @block = block
    end

    attr_reader :size

    def [](index)
      @block.call(index)
    end
  end

  def loader(dataset, **options)
    Data::DataLoader.new(dataset, **options)
  end

  def gone?(pid)
    Process.kill(0, pid)
    File.read("/proc/#{pid}/stat").split[2] == "Z" # a zombie has exited
  rescue Errno::ESRCH, Errno::ENOENT
    true
  end

  # What PyTorch 1.13 makes of Draws(size) in batches of batch_size with `workers` workers and no
  # shuffle, after manual_seed(seed): a base seed drawn from the global generator; batch i made by worker
  # i % workers, whose global generator is seeded base seed + worker and draws for its batches in turn.
  def expected_draws(seed, size, batch_size, workers)
    Torch.manual_seed(seed)
    base_seed = PytorchParity.random_int64
    batches = (0...size).each_slice(batch_size).to_a
    made = {}
    workers.times do |worker|
      Torch.manual_seed(base_seed + worker)
      batches.each_with_index do |indices, i|
        made[i] = Torch.stack(indices.map { Torch.rand(3) }) if i % workers == worker
      end
    end
    batches.each_index.map { |i| made[i] }
  end

  def test_worker_k_seeds_its_generator_with_base_seed_plus_k_and_takes_batches_round_robin
    [1, 2, 3, 5].each do |workers|
      expected = expected_draws(workers, 11, 2, workers)
      Torch.manual_seed(workers)
      batches = loader(Draws.new(11), batch_size: 2, num_workers: workers).to_a
      assert_equal expected.size, batches.size
      batches.zip(expected).each_with_index do |((samples, indices, pids), draws), i|
        assert Torch.equal(draws, samples), "#{workers} workers, batch #{i}"
        assert_equal (2 * i...[2 * i + 2, 11].min).to_a, indices.to_a
        assert_equal batches[i % workers][2].to_a.uniq, pids.to_a.uniq, "batch #{i} from worker #{i % workers}"
      end
      assert_equal workers, batches.map { |batch| batch[2][0].item }.uniq.size
      refute_includes batches.map { |batch| batch[2][0].item }, Process.pid
    end
  end

  def test_the_global_generator_here_gives_the_base_seed_and_the_samplers_seed_only
    Torch.manual_seed(9)
    2.times { PytorchParity.random_int64 }
    expected = Torch.rand(2)
    Torch.manual_seed(9)
    loader(Draws.new(6), batch_size: 2, shuffle: true, num_workers: 2).each { |_batch| nil }
    assert Torch.equal(expected, Torch.rand(2))
  end

  Record = Struct.new(:name, :values)

  def test_batches_arrive_exactly_as_made_in_this_process
    dataset = Samples.new(7) do |index|
      big = Torch.arange(3 * 224 * 224, dtype: :float32).view(3, 224, 224) + index # larger than a pipe's buffer
      {
        "floats" => Torch.tensor([[index, 0.5], [1.0 / 3, -0.0]], dtype: :float64).t, # not contiguous
        "big" => big, "int" => index, "bytes" => Torch.tensor([index, 255], dtype: :uint8),
        "flags" => Torch.tensor([index.odd?]), "half" => Torch.tensor([index / 7.0]).to(:float16),
        "scalar" => Torch.tensor(index * 2, dtype: :int32), "empty" => Torch.zeros(0, 2),
        "name" => "sample #{index}", "record" => Record.new("r", [Torch.ones(2) * index, 1.5])
      }
    end
    reference = loader(dataset, batch_size: 3).to_a
    [1, 3, 8].each do |workers|
      batches = loader(dataset, batch_size: 3, num_workers: workers).to_a
      assert_equal reference.size, batches.size
      reference.zip(batches).each_with_index do |(expected, batch), i|
        assert_equal expected.keys, batch.keys
        %w[floats big int bytes flags half scalar empty].each do |key|
          assert_equal [expected[key].dtype, expected[key].shape], [batch[key].dtype, batch[key].shape], "#{key}, batch #{i}"
          assert Torch.equal(expected[key], batch[key]), "#{key}, batch #{i}, #{workers} workers"
        end
        assert_equal expected["name"], batch["name"]
        assert_equal Record, batch["record"].class
        assert Torch.equal(expected["record"].values[0], batch["record"].values[0])
        assert Torch.equal(expected["record"].values[1], batch["record"].values[1])
      end
    end
    grads = loader(Samples.new(2) { |index| Torch.ones(2) * index }, batch_size: 2, num_workers: 1,
                                                                     collate_fn: ->(batch) { Torch.stack(batch).requires_grad!(true) })
    assert grads.first.requires_grad
  end

  def test_a_batch_of_more_tensors_than_one_message_carries_files_arrives_whole
    many = PytorchParity::WorkerChannel::MAX_FILES + 6 # sent in one file and read from it, not mapped
    dataset = Samples.new(4) { |index| Array.new(many) { |k| Torch.tensor([index, k], dtype: :int64) } }
    reference = loader(dataset, batch_size: 2).to_a
    batches = loader(dataset, batch_size: 2, num_workers: 2).to_a
    assert_equal reference.size, batches.size
    reference.zip(batches).each do |expected, batch|
      assert_equal many, batch.size
      expected.zip(batch).each { |e, b| assert Torch.equal(e, b) }
    end
  end

  def test_worker_init_fn_and_get_worker_info
    assert_nil Data.get_worker_info
    dataset = Samples.new(6) do |_index|
      info = Data.get_worker_info
      [$worker_init, info.id, info.num_workers, info.seed, Torch::Random.initial_seed] # rubocop:disable Style/GlobalVars
    end
    Torch.manual_seed(4)
    base_seed = PytorchParity.random_int64
    Torch.manual_seed(4)
    batches = loader(dataset, batch_size: 1, num_workers: 3, worker_init_fn: ->(id) { $worker_init = id * 10 }).to_a # rubocop:disable Style/GlobalVars
    batches.each_with_index do |(init, id, count, seed, initial_seed), i|
      assert_equal [10 * (i % 3), i % 3, 3, base_seed + i % 3, base_seed + i % 3],
                   [init, id, count, seed, initial_seed].map { |value| value[0].item }
    end
  end

  def test_workers_run_libtorch_at_one_thread_after_this_process_ran_at_two
    threads = Torch.get_num_threads
    Torch.set_num_threads(2)
    convolution = Torch::NN::Conv2d.new(3, 8, 3)
    input = Torch.randn(2, 3, 64, 64)
    Torch.no_grad { convolution.call(input).sum.item } # OpenMP's threads are running now
    dataset = Samples.new(4) do |_index|
      Torch.no_grad { convolution.call(input).sum.item } # hangs in OpenMP when a fork keeps two threads
      Torch.get_num_threads
    end
    counts = loader(dataset, batch_size: 1, num_workers: 2, timeout: 60).map { |count| count[0].item }
    assert_equal [1, 1, 1, 1], counts
    assert_equal 2, Torch.get_num_threads
  ensure
    Torch.set_num_threads(threads)
  end

  # A batch sampler that counts how many batches were asked of it, and in which process.
  class CountingBatchSampler
    attr_reader :asked, :pids

    def initialize(batches)
      @batches = batches
      @asked = 0
      @pids = []
    end

    def each
      @batches.each do |batch|
        @asked += 1
        @pids << Process.pid
        yield batch
      end
    end

    def size
      @batches.size
    end
  end

  def test_the_sampler_runs_here_prefetch_factor_batches_per_worker_ahead
    [[2, 2], [3, 3], [4, 1]].each do |workers, prefetch_factor|
      sampler = CountingBatchSampler.new((0...40).each_slice(2).to_a)
      asked_at_first = nil
      loader((0...40).to_a, batch_sampler: sampler, num_workers: workers, prefetch_factor: prefetch_factor).each do |_batch|
        asked_at_first ||= sampler.asked
      end
      # the first batch delivered sends the next one out first
      assert_equal prefetch_factor * workers + 1, asked_at_first, "#{workers} workers, prefetch_factor #{prefetch_factor}"
      assert_equal [Process.pid], sampler.pids.uniq
    end
  end

  def test_every_pass_starts_workers_of_its_own_and_leaves_none
    data_loader = loader(Draws.new(4), batch_size: 1, num_workers: 2)
    passes = Array.new(2) { data_loader.map { |batch| batch[2][0].item }.uniq.sort }
    assert_equal 2, passes[0].size
    assert_empty passes[0] & passes[1]
    assert(passes.flatten.all? { |pid| gone?(pid) })
  end

  class CustomError < StandardError
    def initialize(code, detail)
      super("code #{code}: #{detail}")
    end
  end

  def test_a_workers_exception_is_raised_here_with_its_message_the_worker_and_the_sample_index
    pids = []
    failing = Samples.new(8) do |index|
      raise KeyError, "no sample #{index}" if index == 5

      Process.pid
    end
    error = assert_raises(KeyError) do
      loader(failing, batch_size: 2, num_workers: 2).each { |batch| pids.concat(batch.to_a) }
    end
    assert_equal "no sample 5 (in DataLoader worker process 0, sample index 5)", error.message
    assert_equal "no sample 5", error.worker_message
    assert_match(/data_loader_workers_test\.rb:\d+:in `block in test_a_workers_exception/, error.backtrace.first)
    assert_equal 2, pids.uniq.size, "batches 0 and 1 arrived first"
    assert(pids.uniq.all? { |pid| gone?(pid) })

    error = assert_raises(RuntimeError) do
      loader(Samples.new(2) { raise CustomError.new(7, "bad") }, batch_size: 1, num_workers: 1).first
    end
    assert_equal "code 7: bad (in DataLoader worker process 0, sample index 0)", error.message
    missing = File.join(Dir.tmpdir, "pytorch-parity-missing-#{Process.pid}")
    error = assert_raises(Errno::ENOENT) { loader(Samples.new(1) { File.read(missing) }, batch_size: 1, num_workers: 1).first }
    assert_equal "No such file or directory @ rb_sysopen - #{missing} (in DataLoader worker process 0, sample index 0)", error.message
  end

  def test_a_worker_init_fn_error_comes_with_that_workers_first_batch
    init = ->(id) { raise ArgumentError, "worker #{id} cannot start" if id == 1 }
    seen = []
    error = assert_raises(ArgumentError) do
      loader((0...6).to_a, batch_size: 1, num_workers: 2, worker_init_fn: init).each { |batch| seen << batch.to_a }
    end
    assert_equal [[0]], seen
    assert_equal "worker 1 cannot start (in DataLoader worker process 1)", error.message
  end

  def test_a_worker_that_dies_ends_the_pass_with_an_error_naming_it
    {"KILL" => "SIGKILL", "SEGV" => "SIGABRT"}.each do |signal, reported| # Ruby's segfault report ends in abort()
      dying = Samples.new(8) do |index|
        if index == 3
          $stderr.reopen(File::NULL) # Ruby's segfault report
          Process.kill(signal, Process.pid)
        end
        Process.pid
      end
      seen = []
      error = assert_raises(RuntimeError) do
        loader(dying, batch_size: 1, num_workers: 2, timeout: 60).each { |batch| seen << batch[0].item }
      end
      assert_match(/\ADataLoader worker 1 \(pid \d+\) exited unexpectedly: killed by signal #{reported}\z/, error.message)
      assert_equal 3, seen.size, "the batches before the dead worker's are delivered"
      assert(seen.uniq.all? { |pid| gone?(pid) })
    end
  end

  def test_no_worker_outlives_a_break_or_an_exception_in_the_loop
    pids = []
    loader(Draws.new(20), batch_size: 1, num_workers: 3).each_with_index do |batch, i|
      pids << batch[2][0].item
      break if i == 3
    end
    assert_equal 3, pids.uniq.size
    assert(pids.uniq.all? { |pid| gone?(pid) }, "after break")

    pids.clear
    assert_raises(ZeroDivisionError) do
      loader(Draws.new(20), batch_size: 1, num_workers: 2).each_with_index do |batch, i|
        pids << batch[2][0].item
        1 / 0 if i == 2
      end
    end
    assert(pids.uniq.all? { |pid| gone?(pid) }, "after an exception")
  end

  # A process that loads slowly with 3 workers, prints their pids, and goes on until signalled.
  SIGNALLED = <<~RUBY
    require "bundler/setup"
    require "pytorch_parity/torch/utils/data/data_loader_workers"
    dataset = Struct.new(:size) { def [](_index) = (sleep 0.02; Process.pid) }.new(10_000)
    pids = []
    Torch::Utils::Data::DataLoader.new(dataset, batch_size: 1, num_workers: 3).each do |batch|
      pids |= batch.to_a
      if pids.size == 3 && !@told
        @told = true
        puts pids.join(" ")
        $stdout.flush
      end
      sleep 0.01
    end
  RUBY

  def test_no_worker_outlives_sigint_sigterm_or_sigkill_of_the_process
    runs = %w[INT TERM KILL].to_h do |signal|
      stdout, writer = IO.pipe
      errors = File.join(tmpdir, "#{signal}.err")
      pid = Process.spawn({"OMP_NUM_THREADS" => "1"}, RbConfig.ruby, "-I", LIBRARY, "-e", SIGNALLED, out: writer, err: errors)
      writer.close
      [signal, [pid, stdout, errors]]
    end
    runs.each do |signal, (pid, stdout, errors)|
      line = stdout.gets or flunk("the loading process printed no workers (#{signal}): #{File.read(errors)}")
      workers = line.split.map(&:to_i)
      assert_equal 3, workers.size
      Process.kill(signal, pid)
      _pid, status = Process.wait2(pid)
      assert status.signaled?, "#{signal}: the process ended by the signal"
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 10
      sleep 0.05 until workers.all? { |worker| gone?(worker) } || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      assert(workers.all? { |worker| gone?(worker) }, "#{signal}: workers #{workers.reject { |worker| gone?(worker) }} still running")
    ensure
      stdout&.close
    end
  end

  def test_timeout
    slow = Samples.new(2) { |_index| sleep 2 }
    error = assert_raises(RuntimeError) { loader(slow, batch_size: 1, num_workers: 1, timeout: 0.2).first }
    assert_equal "DataLoader timed out after 0.2 seconds", error.message
  end

  def test_enumerators
    data_loader = loader((0...5).to_a, batch_size: 2, num_workers: 2)
    assert_equal [0, 1], data_loader.first.to_a
    enumerator = data_loader.each
    assert_equal [[0, 1], [2, 3], [4]], [enumerator.next, enumerator.next, enumerator.next].map(&:to_a)
    assert_raises(StopIteration) { enumerator.next }
    assert_equal [[[0, 1], [2, 3]], [[4]]], data_loader.each_slice(2).map { |slice| slice.map(&:to_a) }
  end
end
