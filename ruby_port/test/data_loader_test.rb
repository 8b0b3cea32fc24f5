# frozen_string_literal: true

require_relative "test_helper"
require_relative "draws"
require_relative "../lib/pytorch_parity/torch/utils/data/data_loader"

# Torch::Utils::Data::DataLoader with pytorch_parity, in this process (num_workers 0): PyTorch 1.13's
# arguments, samplers, collation and random numbers. The same loaders against PyTorch's own, bit for
# bit: parity/test_data_loader.py.
class DataLoaderTest < Minitest::Test
  Data = Torch::Utils::Data

  # One draw of the global generator as PyTorch seeds a sampler or the workers.
  def draw(generator = nil)
    PytorchParity.random_int64(generator)
  end

  def indices(loader)
    loader.map { |_samples, index| index.to_a }
  end

  def test_shuffle_draws_the_base_seed_then_a_generator_of_its_own_from_the_global_one
    Torch.manual_seed(3)
    _base_seed = draw
    generator = Torch::Generator.new.manual_seed(draw)
    expected = Torch.randperm(10, generator: generator).to_a

    Torch.manual_seed(3)
    loader = Data::DataLoader.new(Draws.new(10), batch_size: 3, shuffle: true)
    batches = indices(loader)
    assert_equal expected.each_slice(3).to_a, batches, "the order, in batches of 3 and a last of 1"
    # the samples' own draws follow the two int64 draws of the pass
    Torch.manual_seed(3)
    2.times { draw }
    first_sample = Torch.rand(3)
    Torch.manual_seed(3)
    assert Torch.equal(first_sample, Data::DataLoader.new(Draws.new(10), batch_size: 3, shuffle: true).first[0][0])
    refute_equal batches, indices(loader), "every pass shuffles again"
  end

  def test_a_pass_takes_two_int64_draws_and_the_samples_draws_from_the_global_generator
    Torch.manual_seed(5)
    2.times { draw }
    7.times { Torch.rand(3) }
    expected = Torch.rand(2)

    Torch.manual_seed(5)
    Data::DataLoader.new(Draws.new(7), batch_size: 2, shuffle: true).each { |_samples, _index| nil }
    assert Torch.equal(expected, Torch.rand(2)), "the global generator after one pass"
  end

  def test_with_a_generator_the_global_one_gives_only_the_samples_draws
    generator = Torch::Generator.new.manual_seed(11)
    _base_seed = draw(generator)
    expected = Torch.randperm(6, generator: generator).to_a
    Torch.randperm(6, generator: generator) # the second, trimmed permutation
    next_pass = (draw(generator) && Torch.randperm(6, generator: generator).to_a)

    Torch.manual_seed(0)
    6.times { Torch.rand(3) }
    global_after = Torch.rand(2)

    Torch.manual_seed(0)
    loader = Data::DataLoader.new(Draws.new(6), batch_size: 4, shuffle: true, generator: Torch::Generator.new.manual_seed(11))
    assert_equal expected.each_slice(4).to_a, indices(loader)
    assert Torch.equal(global_after, Torch.rand(2))
    assert_equal next_pass.each_slice(4).to_a, indices(loader)
  end

  def test_without_shuffle_the_order_is_the_datasets_and_the_base_seed_is_still_drawn
    Torch.manual_seed(2)
    draw
    expected = Torch.rand(3)
    Torch.manual_seed(2)
    loader = Data::DataLoader.new(Draws.new(5), batch_size: 2)
    samples, index = loader.first
    assert_equal [0, 1], index.to_a
    assert Torch.equal(expected, samples[0])
    assert_equal [[0, 1], [2, 3], [4]], indices(loader)
    assert_equal 3, loader.size
  end

  def test_drop_last_batch_size_nil_and_a_batch_sampler
    assert_equal [[0, 1], [2, 3]], indices(Data::DataLoader.new(Draws.new(5), batch_size: 2, drop_last: true))
    assert_equal 2, Data::DataLoader.new(Draws.new(5), batch_size: 2, drop_last: true).size
    unbatched = Data::DataLoader.new((10...13).to_a, batch_size: nil).to_a
    assert_equal [10, 11, 12], unbatched, "without batching, samples are converted, not collated"
    loader = Data::DataLoader.new((0...6).to_a, batch_sampler: [[5, 0], [3]])
    assert_equal [[5, 0], [3]], loader.map(&:to_a)
    assert_equal 2, loader.size
  end

  def test_random_sampler_with_replacement_and_more_samples_than_the_data
    generator = Torch::Generator.new.manual_seed(4)
    expected = Torch.randint(5, [32], dtype: :int64, generator: generator).to_a +
               Torch.randint(5, [8], dtype: :int64, generator: generator).to_a
    sampler = Data::RandomSampler.new((0...5).to_a, replacement: true, num_samples: 40,
                                                    generator: Torch::Generator.new.manual_seed(4))
    assert_equal expected, sampler.to_a
    assert_equal 40, sampler.size

    generator = Torch::Generator.new.manual_seed(4)
    whole = Torch.randperm(5, generator: generator).to_a + Torch.randperm(5, generator: generator).to_a.first(2)
    assert_equal whole, Data::RandomSampler.new((0...5).to_a, num_samples: 7, generator: Torch::Generator.new.manual_seed(4)).to_a
  end

  Point = Struct.new(:x, :label)

  def test_default_collate_as_pytorchs
    batch = Data::DataLoader.new([[Torch.ones(2), 1, 0.5, "a"], [Torch.zeros(2), 2, 1.5, "b"]], batch_size: 2).first
    assert_equal [[1.0, 1.0], [0.0, 0.0]], batch[0].to_a
    assert_equal [:int64, [1, 2]], [batch[1].dtype, batch[1].to_a]
    assert_equal [:float64, [0.5, 1.5]], [batch[2].dtype, batch[2].to_a]
    assert_equal %w[a b], batch[3]
    hashes = Data::DataLoader.new([{"x" => 1, "y" => [true]}, {"x" => 2, "y" => [false]}], batch_size: 2).first
    assert_equal [1, 2], hashes["x"].to_a
    assert_equal [[true, false]], hashes["y"].map(&:to_a)
    point = Data::DataLoader.new([Point.new(Torch.tensor([1]), 0), Point.new(Torch.tensor([2]), 1)], batch_size: 2).first
    assert_equal [[[1], [2]], [0, 1]], [point.x.to_a, point.label.to_a]
    error = assert_raises(RuntimeError) { Data::DataLoader.new([[1, 2], [3]], batch_size: 2).first }
    assert_equal "each element in list of batch should be of equal size", error.message
    error = assert_raises(TypeError) { Data::DataLoader.new([Object.new, Object.new], batch_size: 2).first }
    assert_match(/\Adefault_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found Object\z/, error.message)
  end

  def test_a_collate_fn_and_the_samples_left_alone
    samples = [Torch.ones(2), Torch.zeros(2)]
    seen = nil
    Data::DataLoader.new(samples, batch_size: 2, collate_fn: ->(batch) { seen = batch }).first
    assert(seen.zip(samples).all? { |given, sample| given.equal?(sample) })
    assert_equal [2, 2], samples.map(&:numel), "a dataset that does not say its samples are fresh keeps them"
  end

  # PyTorch's checks of DataLoader's and the samplers' arguments, in its words.
  def test_bad_arguments
    {
      {num_workers: -1} => "num_workers option should be non-negative; use num_workers=0 to disable multiprocessing.",
      {num_workers: 1.5} => "'float' object cannot be interpreted as an integer",
      {num_workers: "2"} => "'<' not supported between instances of 'str' and 'int'",
      {num_workers: nil} => "'<' not supported between instances of 'NoneType' and 'int'",
      {timeout: -1} => "timeout option should be non-negative",
      {prefetch_factor: 3} => "prefetch_factor option could only be specified in multiprocessing.let num_workers > 0 " \
                              "to enable multiprocessing.",
      {persistent_workers: true} => "persistent_workers option needs num_workers > 0",
      {shuffle: true, sampler: [0]} => "sampler option is mutually exclusive with shuffle",
      {batch_sampler: [[0]], batch_size: 2} => "batch_sampler option is mutually exclusive with batch_size, shuffle, " \
                                               "sampler, and drop_last",
      {batch_size: nil, drop_last: true} => "batch_size=None option disables auto-batching and is mutually exclusive " \
                                            "with drop_last",
      {batch_size: 0} => "batch_size should be a positive integer value, but got batch_size=0",
      {drop_last: 1} => "drop_last should be a boolean value, but got drop_last=1"
    }.each do |options, message|
      error = assert_raises(ArgumentError, options.inspect) { Data::DataLoader.new((0...5).to_a, **options) }
      assert_equal message, error.message, options.inspect
    end
    error = assert_raises(TypeError) { Data::RandomSampler.new((0...3).to_a, replacement: 1) }
    assert_equal "replacement should be a boolean value, but got replacement=1", error.message
    error = assert_raises(ArgumentError) { Data::RandomSampler.new([]) }
    assert_equal "num_samples should be a positive integer value, but got num_samples=0", error.message
  end

  def test_loading_the_fix_twice_changes_nothing
    first_batch = lambda do
      Torch.manual_seed(0)
      Data::DataLoader.new((0...6).to_a, batch_size: 6, shuffle: true).first.to_a
    end
    before = first_batch.call
    load File.expand_path("../lib/pytorch_parity/torch/utils/data/data_loader.rb", __dir__)
    assert_equal 1, Data::DataLoader.ancestors.count(PytorchParity::DataLoader)
    assert_equal before, first_batch.call
  end
end
