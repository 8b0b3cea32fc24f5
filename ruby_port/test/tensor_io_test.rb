# frozen_string_literal: true

require_relative "test_helper"

class TensorIOTest < Minitest::Test
  include Hymenoptera::TestSupport
  TensorIO = Hymenoptera::TensorIO

  def stem
    File.join(tmpdir, "bundle")
  end

  def test_round_trip_keeps_order_dtypes_shapes_and_values
    tensors = {
      "z.float32" => Torch.tensor([[1.5, -2.25], [3.0, 1e-30]], dtype: :float32),
      "a.float64" => Torch.tensor([Math::PI], dtype: :float64),
      "m.int64" => Torch.tensor([-(2**62), 7], dtype: :int64),
      "b.uint8" => Torch.tensor([0, 255], dtype: :uint8),
      "num_batches_tracked" => Torch.tensor(12, dtype: :int64)
    }
    TensorIO.write_bundle(stem, tensors, meta: {"note" => "x"})
    read, meta = TensorIO.read_bundle(stem, meta: true)

    assert_equal tensors.keys, read.keys
    assert_equal({"note" => "x"}, meta)
    tensors.each do |name, tensor|
      assert_equal tensor.dtype, read[name].dtype, name
      assert_equal tensor.shape, read[name].shape, name
      assert Torch.equal(tensor, read[name]), name
    end
    assert_equal [], read["num_batches_tracked"].shape
    assert_equal 12, read["num_batches_tracked"].item
  end

  def test_the_blob_is_little_endian_row_major
    TensorIO.write_bundle(stem, {"t" => Torch.tensor([[1, 2], [3, 4]], dtype: :int64)})
    assert_equal [1, 2, 3, 4].pack("q<*"), File.binread("#{stem}.bin")
    entry = JSON.parse(File.read("#{stem}.json"))["tensors"][0]
    assert_equal({"name" => "t", "dtype" => "int64", "shape" => [2, 2], "offset" => 0, "nbytes" => 32},
                 entry.slice("name", "dtype", "shape", "offset", "nbytes"))
  end

  def test_a_changed_byte_fails_the_sha256_check
    TensorIO.write_bundle(stem, {"t" => Torch.ones(4)})
    blob = File.binread("#{stem}.bin")
    blob.setbyte(0, blob.getbyte(0) ^ 1)
    File.binwrite("#{stem}.bin", blob)
    error = assert_raises(TensorIO::BundleError) { TensorIO.read_bundle(stem) }
    assert_match(/t does not match its sha256/, error.message)
  end

  def test_a_tensor_of_several_read_chunks_comes_back_whole_and_is_checked_to_its_last_byte
    tensors = {"head" => Torch.tensor([7], dtype: :uint8), "big" => Torch.arange((5 << 20) / 8 + 3).to(:float64)}
    TensorIO.write_bundle(stem, tensors)
    assert Torch.equal(tensors["big"], TensorIO.read_bundle(stem)["big"])
    blob = File.binread("#{stem}.bin")
    blob.setbyte(blob.bytesize - 1, blob.getbyte(blob.bytesize - 1) ^ 1)
    File.binwrite("#{stem}.bin", blob)
    assert_match(/big does not match its sha256/, assert_raises(TensorIO::BundleError) { TensorIO.read_bundle(stem) }.message)
  end

  def test_sha256_is_the_digest_write_bundle_records
    tensors = {"view" => Torch.arange(12).to(:float32).view(3, 4).t, "big" => Torch.arange((3 << 20) / 8).to(:float64)}
    TensorIO.write_bundle(stem, tensors)
    recorded = TensorIO.read_index(stem)["tensors"].to_h { |entry| [entry["name"], entry["sha256"]] }
    assert_equal recorded, tensors.transform_values { |tensor| TensorIO.sha256(tensor) }
  end

  def test_digests_are_the_index_write_bundle_records_without_its_blob
    tensors = {"view" => Torch.arange(12).to(:float32).view(3, 4).t, "count" => Torch.tensor(12, dtype: :int64),
               "b" => Torch.tensor([0, 255], dtype: :uint8)}
    TensorIO.write_bundle(stem, tensors, meta: {"epoch" => 1})
    TensorIO.write_digests("#{stem}-digests", tensors, meta: {"epoch" => 1})
    bundle, digests = TensorIO.read_digests(stem), TensorIO.read_digests("#{stem}-digests")
    assert_equal(bundle["tensors"].map { |entry| entry.except("offset") }, digests["tensors"])
    assert_equal({"epoch" => 1}, digests["meta"])
    refute File.exist?("#{stem}-digests.bin")
    error = assert_raises(TensorIO::BundleError) { TensorIO.read_bundle("#{stem}-digests") }
    assert_match(/format is "hymenoptera-digests\/1", expected "hymenoptera-bundle\/1"/, error.message)
  end

  def test_a_truncated_or_missing_blob_is_reported
    TensorIO.write_bundle(stem, {"t" => Torch.ones(4)})
    File.binwrite("#{stem}.bin", File.binread("#{stem}.bin")[0, 5])
    assert_match(/t is truncated/, assert_raises(TensorIO::BundleError) { TensorIO.read_bundle(stem) }.message)
    File.delete("#{stem}.bin")
    assert_match(/bundle data not found/, assert_raises(TensorIO::BundleError) { TensorIO.read_bundle(stem) }.message)
    assert_match(/bundle index not found/, assert_raises(TensorIO::BundleError) { TensorIO.read_bundle("#{stem}-none") }.message)
  end
end
