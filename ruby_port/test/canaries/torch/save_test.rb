# frozen_string_literal: true

require_relative "../canary"
require "stringio"

module Hymenoptera
  class SaveCanaryTest < CanaryTest
    canary "torch/save.rb", now_does: "write a .pth that Python's torch.load(weights_only=True) reads"

    # Everything the file holds comes back through torch.rb's own Torch.load.
    def test_torch_load_reads_back_what_was_saved
      Torch.manual_seed(0)
      model = Torch::NN::Sequential.new(Torch::NN::Conv2d.new(3, 4, 3), Torch::NN::BatchNorm2d.new(4))
      base = Torch.arange(12, dtype: :float64).reshape(3, 4)
      saved = model.state_dict.merge("nested" => {"list" => [1, -7, 300, 1 << 40, 2.5, "é", nil, true, false, base.t]},
                                     "base" => base, "row" => base[1], "empty" => Torch.empty(0, 2),
                                     "bool" => Torch.tensor([true, false]), 3 => Torch.tensor(5, dtype: :int32))
      path = File.join(tmpdir, "best.pth")
      Torch.save(saved, path)
      assert_same_values saved, Torch.load(path)
    end

    # A state dict's keys, shapes, dtypes and bytes, each tensor its own storage (one record each),
    # the BatchNorm's num_batches_tracked an int64 scalar.
    def test_a_state_dict_has_one_record_per_tensor
      state = Torch::NN::BatchNorm2d.new(3).state_dict
      path = File.join(tmpdir, "run", "best.pth")
      FileUtils.mkdir_p(File.dirname(path))
      Torch.save(state, path)
      assert_equal ["best/data.pkl", *(0...state.size).map { |key| "best/data/#{key}" }, "best/version"], record_names(path)
      assert_equal :int64, Torch.load(path)["num_batches_tracked"].dtype
    end

    # Tensors whose memory overlaps are saved as one storage (torch.load gives them back sharing it;
    # LibTorch's loader, torch.rb's Torch.load, reads a storage once per tensor).
    def test_views_of_one_tensor_share_its_storage
      base = Torch.arange(6).reshape(2, 3)
      path = File.join(tmpdir, "views.pth")
      Torch.save({"base" => base, "transposed" => base.t, "again" => base}, path)
      assert_equal 1, record_names(path).count { |name| name.include?("/data/") }
      assert_equal base.t.to_a, Torch.load(path)["transposed"].to_a
    end

    # To an IO, the archive is named "archive", as torch.save names it in a buffer.
    def test_an_io_gets_the_bytes_of_a_path_named_archive
      state = Torch::NN::Linear.new(2, 2).state_dict
      io = StringIO.new(String.new(encoding: Encoding::BINARY))
      Torch.save(state, io)
      path = File.join(tmpdir, "archive.pth")
      Torch.save(state, path)
      assert_equal File.binread(path), io.string
    end

    # Written as it goes: no String the size of the file is made on the way (torch.rb's Torch.save
    # copies LibTorch's whole archive into one).
    def test_saving_makes_no_string_the_size_of_the_file
      state = {"weight" => Torch.ones(1 << 22)}
      path = File.join(tmpdir, "big.pth")
      GC.disable
      before = GC.stat(:malloc_increase_bytes)
      Torch.save(state, path)
      counted = GC.stat(:malloc_increase_bytes) - before
      GC.enable
      assert_operator counted, :<, File.size(path) / 4, "Torch.save allocated #{counted} bytes of Ruby memory " \
                                                          "for a file of #{File.size(path)}"
    end

    # What the file cannot hold goes to torch.rb's Torch.save, which refuses a Symbol as it did; an IO,
    # which torch.rb cannot write to, is refused in one line.
    def test_what_the_format_cannot_hold_goes_to_upstream
      error = assert_raises(Torch::Error) { Torch.save({key: Torch.ones(1)}, File.join(tmpdir, "symbol.pth")) }
      assert_match(/Unknown type: Symbol/, error.message)
      error = assert_raises(ArgumentError) { Torch.save({key: 1}, StringIO.new) }
      assert_match(/save this object to a path instead/, error.message)
    end

    private

    def assert_same_values(expected, actual, where = "")
      case expected
      when Torch::Tensor
        assert_kind_of Torch::Tensor, actual, where
        assert_equal [expected.dtype, expected.shape, expected.requires_grad], [actual.dtype, actual.shape, actual.requires_grad], where
        assert Torch.equal(expected.detach, actual.detach), "#{where}: other values"
      when Hash
        assert_equal expected.keys, actual.keys, where
        expected.each { |key, value| assert_same_values(value, actual[key], "#{where}[#{key.inspect}]") }
      when Array
        assert_equal expected.size, actual.size, where
        expected.zip(actual).each_with_index { |(value, other), i| assert_same_values(value, other, "#{where}[#{i}]") }
      else
        expected.nil? ? assert_nil(actual, where) : assert_equal(expected, actual, where)
      end
    end

    # The record names in the zip's central directory.
    def record_names(path)
      bytes = File.binread(path)
      directory = bytes.byteslice(-22, 22).unpack("VvvvvVVv")[6]
      names = []
      offset = directory
      while bytes.byteslice(offset, 4) == "PK\x01\x02".b
        name_size, extra_size, comment_size = bytes.byteslice(offset + 28, 6).unpack("vvv")
        names << bytes.byteslice(offset + 46, name_size).force_encoding(Encoding::UTF_8)
        offset += 46 + name_size + extra_size + comment_size
      end
      names
    end
  end
end
