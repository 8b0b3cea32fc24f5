# frozen_string_literal: true

require_relative "test_helper"

# Decoding ahead on a second thread (DecodeAhead) must not change a single number: the same batches,
# bit for bit, in the same order, with the global generator left in the same state; and a file that
# does not decode fails at its turn. The loader without it is the one the parity suite proves
# against Python's, sample by sample (parity/test_free_running.py, which runs one thread per side).
class DataLoaderTest < Minitest::Test
  include Hymenoptera::TestSupport

  def folder_of(count, broken: nil)
    root = File.join(tmpdir, "train")
    count.times do |k|
      write_image(File.join(root, k.even? ? "ants" : "bees", format("%03d.jpg", k)), width: 30 + 7 * k, height: 50 - k)
    end
    File.write(File.join(root, "bees", "099.jpg"), "not a jpeg") if broken
    data = Hymenoptera::Data
    Hymenoptera::ImageFolder.new(root, transform: data.data_transforms["train"], loader: data.method(:rgb_loader))
  end

  def batches(dataset, decode_ahead:, seed: 3)
    loader = Hymenoptera::Data.make_dataloader(dataset, 4, seed)
    loader.instance_variable_set(:@decode_ahead, decode_ahead)
    Torch.manual_seed(11)
    yielded = loader.map { |inputs, labels| [inputs, labels] }
    [yielded, Torch.rand(3)]
  end

  def test_decoding_ahead_gives_the_same_batches_bit_for_bit
    dataset = folder_of(10)
    (one, after_one), (ahead, after_ahead) = batches(dataset, decode_ahead: false), batches(dataset, decode_ahead: true)
    assert_equal one.size, ahead.size
    one.zip(ahead).each do |(inputs, labels), (inputs_ahead, labels_ahead)|
      assert Torch.equal(inputs, inputs_ahead), "a batch's inputs differ when decoded ahead"
      assert Torch.equal(labels, labels_ahead), "a batch's labels differ when decoded ahead"
    end
    assert Torch.equal(after_one, after_ahead), "the global generator ends in another state when decoding ahead"
  end

  def test_a_file_that_does_not_decode_fails_at_its_turn_and_leaves_no_thread
    dataset = folder_of(6, broken: true)
    threads = Thread.list.size
    errors = [false, true].map do |decode_ahead|
      assert_raises(Hymenoptera::UserError) { batches(dataset, decode_ahead: decode_ahead) }.message
    end
    assert_equal errors[0], errors[1]
    assert_match(/099\.jpg: not a readable image/, errors[1])
    assert_equal threads, Thread.list.size, "the decoding thread outlived its loader"
  end

  def test_a_loop_left_early_stops_the_decoding_thread
    dataset = folder_of(10)
    threads = Thread.list.size
    loader = Hymenoptera::DataLoader.new(dataset, batch_size: 2, decode_ahead: true)
    loader.each { break }
    assert_equal threads, Thread.list.size, "the decoding thread outlived a loop left early"
  end
end
