# frozen_string_literal: true

require_relative "test_helper"

# The data pipeline frees the images it made as soon as it is done with them, as Python does
# (fixes/torch/tensor_memory.rb): never what the caller still holds, never a result.
class TensorMemoryTest < Minitest::Test
  include Hymenoptera::TestSupport
  TensorMemory = PytorchParity::TensorMemory
  T = TorchVision::Transforms
  HOLES_PAGES = (48 << 20) / 4096 # faults_refilling_holes' 48 MiB, in pages

  def freed?(tensor)
    tensor.numel.zero?
  end

  # Ruby's own oldmalloc limit (16 MiB, growing by 1.2x each time a minor GC passes it, to 128 MiB) makes
  # a minor GC major past it; raised past bytes, it leaves the count's and release's choice visible.
  def raise_ruby_oldmalloc_limit_past(bytes)
    20.times do
      break if GC.stat(:oldmalloc_increase_bytes_limit) > bytes

      GC.disable
      Torch.empty(GC.stat(:oldmalloc_increase_bytes_limit) + (1 << 20), dtype: :uint8)
      GC.enable
      GC.start(full_mark: false)
    end
  end

  # What code prints in a fresh Ruby with pytorch_parity loaded: its GC state is this code's alone. With
  # env's variables (ruby_limits: Ruby's own malloc limits out of reach, so that only the count starts a GC).
  def child_output(code, env = {})
    lib = File.expand_path("../lib", __dir__)
    output = IO.popen(env, [RbConfig.ruby, "-I", lib, "-rpytorch_parity", "-e", code], &:read)
    assert $?.success?, output
    output
  end

  def ruby_limits
    %w[RUBY_GC_MALLOC_LIMIT RUBY_GC_MALLOC_LIMIT_MAX RUBY_GC_OLDMALLOC_LIMIT RUBY_GC_OLDMALLOC_LIMIT_MAX]
      .to_h { |name| [name, (1 << 30).to_s] }
  end

  # A transform that records what it was given and returns what block makes of it.
  class Probe < Torch::NN::Module
    attr_reader :seen

    def initialize(&block)
      super()
      @block = block
      @seen = []
    end

    def forward(img)
      @seen << img
      @block.call(img)
    end
  end

  # Tensors that minor GCs free never make the count start a major GC (a full mark that would free
  # nothing more), in grad mode or not. In a child: in this process, objects earlier tests left old could
  # start one by Ruby's own rules.
  def test_a_loop_whose_dropped_tensors_minor_gcs_free_starts_no_major_gc
    code = <<~RUBY
      majors = [false, true].map do |grad|
        GC.start
        before = GC.stat(:major_gc_count)
        Torch.set_grad_enabled(grad) do
          tensor = Torch.zeros(1 << 18)
          300.times { tensor = tensor.add(1) }
        end
        GC.stat(:major_gc_count) - before
      end
      puts majors.join(" ")
    RUBY
    assert_equal "0 0", child_output(code, ruby_limits).strip, "major GCs without grad, with grad"
  end

  # Tensors an old object held at a minor GC stay until a major GC: once 16 MiB of them wait, the count
  # starts one.
  def test_tensors_an_old_object_held_are_freed_by_a_major_gc_once_they_pile_up
    raise_ruby_oldmalloc_limit_past(48 << 20)
    holder = []
    GC.start
    GC.start
    GC.start
    accounting = PytorchParity::TensorMemoryAccounting
    before = accounting.counted_bytes
    majors = GC.stat(:major_gc_count)
    most = 0
    100.times do
      holder << Torch.empty(1 << 20, dtype: :uint8)
      GC.start(full_mark: false) # the tensor is marked from its old holder: it stays until a major GC
      holder.clear
      most = [most, accounting.counted_bytes - before].max
    end
    assert_operator GC.stat(:major_gc_count), :>, majors
    assert_operator most, :<, 48 << 20, "the tensors old objects held piled up"
  end

  # The count starts a GC past 16 MiB counted, or past 48 once the last one it started found mostly garbage,
  # in evaluation as in training: 96 MiB kept (as a forward pass keeps its activations for backward) start a
  # GC every 16 MiB, 96 MiB dropped two or fewer after the first, and kept again, GCs every 16 MiB after the
  # first finds them alive. In a child whose own malloc limits Ruby cannot reach, so that only the count starts
  # a GC.
  def test_gcs_wait_for_more_once_they_find_mostly_garbage
    code = <<~RUBY
      gcs = lambda do |grad, keep|
        kept = []
        GC.start
        before = GC.stat(:count)
        Torch.set_grad_enabled(grad) do
          96.times do
            tensor = Torch.empty(1 << 20, dtype: :uint8)
            kept << tensor if keep
          end
        end
        GC.stat(:count) - before
      end
      puts [gcs.call(true, true), gcs.call(true, false), gcs.call(false, false), gcs.call(false, true)].join(" ")
    RUBY
    output = child_output(code, ruby_limits)
    kept, dropped, dropped_without_grad, kept_without_grad = output.split.map(&:to_i)
    assert_operator kept, :>=, 5, output
    assert_operator dropped, :<=, 3, output
    assert_operator dropped_without_grad, :<=, 3, output
    assert_operator kept_without_grad, :>=, 3, output
  end

  # The GCs the count starts are counted with their wall time, for the benchmarks (GC.stat(:time) is CPU
  # time): 120 MiB of dropped tensors start GCs that took some of the loop's time, never more than all of it.
  def test_the_gcs_the_count_starts_are_counted_with_their_wall_time
    code = <<~RUBY
      GC.start
      before, before_seconds = PytorchParity::TensorMemoryAccounting.collections_started
      gcs = GC.stat(:count)
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      120.times { Torch.empty(1 << 20, dtype: :uint8) }
      elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
      runs, seconds = PytorchParity::TensorMemoryAccounting.collections_started
      puts [runs - before, GC.stat(:count) - gcs, seconds - before_seconds, elapsed].join(" ")
    RUBY
    output = child_output(code, ruby_limits)
    runs, gcs, seconds, elapsed = output.split.map(&:to_f)
    assert_operator runs, :>=, 2, output
    assert_equal gcs, runs, output
    assert_operator seconds, :>, 0, output
    assert_operator seconds, :<=, elapsed, output
  end

  # A step's worth of tensors freed together by a GC is not given back to the system, to be faulted in
  # again by the next step (tensor_memory_accounting.cpp keeps 64 MiB at the heap's top): rounds of eight
  # 4 MiB tensors, each freed by a GC, fault in few of their pages once freed memory is there to reuse; a
  # process whose environment sets one of glibc's MALLOC_*_ tunables keeps its own (here a pad of 0: it
  # faults them all in again).
  def test_a_gc_s_freed_tensors_stay_for_the_next_step_unless_the_environment_says_otherwise
    code = <<~RUBY
      faults = -> { File.read("/proc/self/stat").split(") ", 2).last.split[7].to_i }
      counts = 6.times.map do
        before = faults.call
        tensors = 8.times.map { Torch.ones(1 << 20) }
        tensors = nil
        GC.start(full_mark: false, immediate_sweep: true)
        faults.call - before
      end
      puts counts.drop(2).min # the first two rounds find no freed memory yet
    RUBY
    pages = 8 * (4 << 20) / 4096
    faults = [{}, {"MALLOC_TOP_PAD_" => "0"}].map { |env| child_output(code, env).to_i }
    assert_operator faults[0], :<, pages / 8, "pages faulted in again each round"
    assert_operator faults[1], :>, pages / 2, "the environment's MALLOC_TOP_PAD_ was not kept"
  end

  # trim_heap gives that kept top back: the RSS falls by most of the 32 MiB freed.
  def test_trim_heap_gives_the_kept_top_back
    code = <<~RUBY
      rss = -> { File.read("/proc/self/status")[/VmRSS:\\s+(\\d+)/, 1].to_i * 1024 }
      3.times do
        tensors = 8.times.map { Torch.ones(1 << 20) }
        tensors = nil
        GC.start(full_mark: false, immediate_sweep: true)
      end
      before = rss.call
      PytorchParity::TensorMemory.trim_heap
      puts before - rss.call
    RUBY
    assert_operator child_output(code).to_i, :>, 16 << 20
  end

  # The page faults of making 48 MiB of tensors of `elements` floats again, in a fresh Ruby, once `collect` has
  # freed 48 MiB of 1 MiB tensors made between others that stay: the holes they left.
  def faults_refilling_holes(collect, elements)
    code = <<~RUBY
      faults = -> { File.read("/proc/self/stat").split(") ", 2).last.split[7].to_i }
      tensors = 96.times.map { Torch.ones(1 << 18) }
      kept = tensors.each_slice(2).map(&:first)
      tensors = nil
      #{collect}
      before = faults.call
      again = 48.times.map { Torch.ones(#{elements}) }
      puts faults.call - before, kept.size, again.size
    RUBY
    child_output(code, ruby_limits).split.first.to_i
  end

  # A major GC keeps the heap's free memory for the steps after it: tensors made again fill the holes
  # without faulting their pages in (given back at the major GC, every page faulted in again:
  # tensor_memory_accounting.cpp). They are a little smaller, so that this test is about the major GC alone.
  def test_a_major_gc_keeps_the_heap_s_free_memory_for_the_steps_after_it
    collect = "GC.start(full_mark: false, immediate_sweep: true); GC.start(full_mark: true, immediate_sweep: true); " \
              "Torch.empty(1)" # the allocator sees the major GC at its next count
    assert_operator faults_refilling_holes(collect, "(1 << 18) - 256"), :<, HOLES_PAGES / 8,
                    "pages of the freed holes faulted in again after a major GC"
  end

  # The same tensors made again fill the holes they left (freed by a full GC: the GCs the count started while
  # they were made have aged them). Taken with posix_memalign, as c10's default allocator takes them, they
  # faulted every page in again: glibc 2.36 asks its bins for 96 bytes more than the block it keeps
  # (tensor_memory_accounting.cpp).
  def test_the_same_tensors_made_again_fill_the_holes_they_left
    assert_operator faults_refilling_holes("GC.start(full_mark: true, immediate_sweep: true)", "1 << 18"), :<,
                    HOLES_PAGES / 8, "pages of the freed holes faulted in again"
  end

  # A worker's release: a major GC past 32 MiB counted since the last major one, a minor one below.
  def test_release_is_a_major_gc_past_32_mib_counted_since_the_last
    raise_ruby_oldmalloc_limit_past(48 << 20)
    GC.start
    GC.disable
    kept = [Torch.empty(40 << 20, dtype: :uint8)]
    GC.enable
    majors = GC.stat(:major_gc_count)
    TensorMemory.release
    assert_equal majors + 1, GC.stat(:major_gc_count)
    TensorMemory.release
    assert_equal majors + 1, GC.stat(:major_gc_count), "nothing counted since the major GC"
    assert_equal 1, kept.size
  ensure
    GC.enable
  end

  # The mapping of /proc/self/maps that holds address: [its start, its name ("" for an anonymous one)].
  def mapping_of(address)
    File.foreach("/proc/self/maps").each do |line|
      range, _perms, _offset, _device, _inode, name = line.split(" ", 6)
      first, last = range.split("-").map { |hex| hex.to_i(16) }
      return [first, name.to_s.strip] if address >= first && address < last
    end
    nil
  end

  # A Marshal copy, torch.rb's deep copy (kept for epochs, as the tutorial's best weights), takes its own
  # mapping instead of a hole among a step's freed memory in the heap; its memory goes back when it is
  # freed; tensors made after it are in the heap again.
  def test_a_marshal_copy_s_tensors_take_their_own_mappings
    tensor = Torch.randn(256, 256)
    copy = Marshal.load(Marshal.dump(tensor))
    assert_equal tensor.to_a, copy.to_a
    start, name = mapping_of(copy._data_ptr)
    assert_equal ["", copy._data_ptr - 64], [name, start], "the copy's data 64 bytes into a mapping of its own"
    assert_equal "[heap]", mapping_of(Torch.empty(1 << 16)._data_ptr).last
    counted = PytorchParity::TensorMemoryAccounting.counted_bytes
    TensorMemory.free(copy)
    assert_operator counted - PytorchParity::TensorMemoryAccounting.counted_bytes, :>=, 256 * 256 * 4
    assert_nil mapping_of(start)
  end

  def test_free_empties_tensors_of_every_dtype_and_keeps_their_dtype
    %i[float16 float32 float64 uint8 int64 bool].each do |dtype|
      tensor = Torch.ones(3).to(dtype)
      TensorMemory.free(tensor)
      assert freed?(tensor), dtype
      assert_equal dtype, tensor.dtype
    end
  end

  def test_view_only_keeps_the_view_and_frees_the_tensor
    tensor = Torch.arange(12).view(3, 4)
    view = TensorMemory.view_only(tensor) { |t| t.transpose(0, 1) }
    assert freed?(tensor)
    assert_equal [[0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11]], view.to_a
  end

  def test_free_input_spares_an_input_returned_as_it_is
    tensor = Torch.ones(2, 2)
    TensorMemory.free_input(tensor, tensor.add!(1))
    refute freed?(tensor)
    view = tensor.narrow(0, 0, 1)
    TensorMemory.free_input(tensor, view)
    assert freed?(tensor)
    assert_equal [[2.0, 2.0]], view.to_a
  end

  def test_compose_frees_its_intermediates_only
    image = Torch.arange(24, dtype: :uint8).view(2, 4, 3)
    doubled = Probe.new { |img| img * 2 }
    same = Probe.new { |img| img } # as RandomHorizontalFlip when it does not flip
    cropped = Probe.new { |img| img.narrow(1, 0, 2) }
    last = Probe.new { |img| img.to(:float32) }
    output = T::Compose.new([doubled, same, cropped, last]).call(image)
    refute freed?(image), "the caller's image"
    assert doubled.seen.first.equal?(image)
    assert freed?(same.seen.first), "the doubled image, once cropped"
    assert freed?(last.seen.first), "the crop, once converted"
    assert_equal (Torch.arange(24).view(2, 4, 3).narrow(1, 0, 2) * 2).to_a, output.to_a
  end

  def test_the_image_folder_frees_each_decoded_image_once_transformed
    root = File.join(tmpdir, "data")
    write_image(File.join(root, "ants", "a.png"), width: 6, height: 4)
    loaded = []
    loader = ->(path) { PytorchParity::Image::RGBLoader.load(path).tap { |image| loaded << image } }
    crop = TorchVision::Datasets::ImageFolder.new(root, loader: loader, transform: T::CenterCrop.new(2))
    sample, = crop[0]
    assert freed?(loaded.last)
    assert_equal [2, 2, 3], sample.shape
    untransformed = TorchVision::Datasets::ImageFolder.new(root, loader: loader)
    sample, = untransformed[0]
    assert sample.equal?(loaded.last)
    refute freed?(sample)
  end

  def test_the_data_loader_frees_only_fresh_samples
    kept = [[Torch.ones(2), 0], [Torch.zeros(2), 1]]
    batch, = Torch::Utils::Data::DataLoader.new(kept, batch_size: 2).first
    assert_equal [[1.0, 1.0], [0.0, 0.0]], batch.to_a
    refute kept.any? { |tensor, _| freed?(tensor) }, "a dataset that keeps its samples keeps them whole"

    fresh = kept.dup
    def fresh.fresh_samples? = true
    batch, = Torch::Utils::Data::DataLoader.new(fresh, batch_size: 2).first
    assert_equal [[1.0, 1.0], [0.0, 0.0]], batch.to_a
    assert fresh.all? { |tensor, _| freed?(tensor) }
  end
end
