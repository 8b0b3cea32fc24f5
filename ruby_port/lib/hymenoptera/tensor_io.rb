# frozen_string_literal: true

require "openssl"
require "json"
require_relative "atomic"
require_relative "errors"

module Hymenoptera
  # Tensor bundles: a JSON index beside a raw little-endian blob (format: fixtures/README.md). An index
  # reads without LibTorch (the replay checks the fixtures' indexes before LibTorch loads); the tensors are
  # torch.rb's, loaded with the port.
  module TensorIO
    FORMAT = "hymenoptera-bundle/1"
    DIGESTS_FORMAT = "hymenoptera-digests/1" # an index without its blob (write_digests)
    # Numo's class of each dtype, by name: Numo, a gem of the bundle, is required where tensors are read, so that an
    # index reads before bin/replay and bin/preprocess set the bundle up (CLI.load_port).
    NUMO_CLASSES = {"float32" => :SFloat, "float64" => :DFloat, "int64" => :Int64, "uint8" => :UInt8}.freeze
    DTYPE_NAMES = {float32: "float32", float64: "float64", int64: "int64", uint8: "uint8"}.freeze

    class BundleError < UserError; end

    module_function

    def bundle_paths(stem)
      ["#{stem}.json", "#{stem}.bin"]
    end

    # Writes a Hash name => tensor (in insertion order) as STEM.bin and STEM.json (the index last), one
    # tensor's bytes in memory at a time (a VGG's bundles are hundreds of MB).
    def write_bundle(stem, tensors, meta: {})
      index_path, blob_path = bundle_paths(stem)
      entries = []
      Atomic.atomic_path(blob_path) do |tmp| # a dtype refused midway leaves no file (the temporary one goes)
        File.open(tmp, "wb") do |file|
          offset = 0
          tensors.each do |name, tensor|
            dtype = stored_dtype(name, tensor)
            nbytes, sha256 = write_tensor(file, tensor)
            entries << {name: name, dtype: dtype, shape: tensor.shape, offset: offset, nbytes: nbytes, sha256: sha256}
            offset += nbytes
          end
        end
      end
      index = {format: FORMAT, tensors: entries, meta: meta}
      Atomic.write_text(index_path, JSON.pretty_generate(index) + "\n")
    end

    # The name a bundle stores tensor's dtype under; tensors of any other dtype cannot be stored.
    def stored_dtype(name, tensor)
      DTYPE_NAMES[tensor.dtype] or raise BundleError, "#{name}: dtype #{tensor.dtype} cannot be stored in a bundle"
    end

    # Writes STEM.json alone: each tensor's name, dtype, shape, nbytes and sha256 (as write_bundle records them),
    # hashed in its own memory, and no blob. Equal tensors are proven equal by their digests without writing their
    # bytes (the zoo: a VGG's results are 1.1 GB a side); read_digests reads it, read_bundle refuses it.
    def write_digests(stem, tensors, meta: {})
      entries = tensors.map do |name, tensor|
        dtype = stored_dtype(name, tensor)
        {name: name, dtype: dtype, shape: tensor.shape, nbytes: tensor.numel * tensor.element_size, sha256: sha256(tensor)}
      end
      Atomic.write_text(bundle_paths(stem).first, JSON.pretty_generate({format: DIGESTS_FORMAT, tensors: entries, meta: meta}) + "\n")
    end

    # Writes tensor's raw bytes (little-endian, row-major) to file from its own memory, a chunk in a Ruby
    # String at a time (a whole VGG weight as one String was 411 MB more); [bytes, sha256]. Tensors exist
    # only once the port, and pytorch_parity with it, is loaded.
    def write_tensor(file, tensor)
      digest = OpenSSL::Digest.new("SHA256")
      nbytes = each_chunk_of(tensor) do |chunk|
        digest.update(chunk)
        file.write(chunk)
      end
      [nbytes, digest.hexdigest]
    end

    # The sha256 of tensor's bytes, as write_tensor writes them, without writing them.
    def sha256(tensor)
      digest = OpenSSL::Digest.new("SHA256")
      each_chunk_of(tensor) { |chunk| digest.update(chunk) }
      digest.hexdigest
    end

    # Yields tensor's raw bytes (little-endian, row-major) from its own memory, a chunk in a Ruby String at a
    # time; returns their count.
    def each_chunk_of(tensor, &block)
      flat = tensor.detach.contiguous
      nbytes = flat.numel * flat.element_size
      PytorchParity::TensorMemory.each_chunk(flat._data_ptr, nbytes, &block)
      nbytes
    end

    def read_index(stem, formats: [FORMAT])
      index_path, = bundle_paths(stem)
      index = JSON.parse(File.read(index_path))
      unless formats.include?(index["format"])
        raise BundleError, "#{index_path}: format is #{index["format"].inspect}, expected #{formats.map(&:inspect).join(" or ")}"
      end

      index
    rescue Errno::ENOENT
      raise BundleError, "#{index_path}: bundle index not found"
    rescue JSON::ParserError => e
      raise BundleError, "#{index_path}: not valid JSON (#{e.message.lines.first.strip})"
    end

    # The index of a bundle, or of the digests write_digests wrote in its place: each tensor's sha256 either way.
    def read_digests(stem)
      read_index(stem, formats: [FORMAT, DIGESTS_FORMAT])
    end

    # Reads a bundle into a Hash name => tensor (in stored order), checking sizes and sha256, one tensor's
    # bytes at a time. With meta: true returns [tensors, meta].
    def read_bundle(stem, meta: false)
      index = read_index(stem)
      _, blob_path = bundle_paths(stem)
      tensors = {}
      begin
        File.open(blob_path, "rb") do |file|
          index["tensors"].each { |entry| tensors[entry["name"]] = read_entry(file, entry, blob_path) }
        end
      rescue Errno::ENOENT
        raise BundleError, "#{blob_path}: bundle data not found"
      end
      meta ? [tensors, index["meta"]] : tensors
    end

    # One entry's tensor, its bytes read from the file straight into the tensor's memory a chunk at a time and
    # hashed as they come: a copy of them in a String, then in Numo's array, then in a tensor cost a page fault
    # per page each (a VGG's 553 MB of weights: 9 CPU-s). An entry whose size is not its shape's goes through a
    # String as before, so that what is wrong with it is said in the same words (Numo's, torch.rb's).
    def read_entry(file, entry, blob_path)
      tensor = empty_like_entry(entry)
      return read_copied(file, entry, blob_path) if tensor.nil?

      nbytes, offset = entry["nbytes"], entry["offset"]
      raise entry_error(blob_path, entry, "is truncated") if offset + nbytes > file.size

      digest, address, chunk = OpenSSL::Digest.new("SHA256"), tensor._data_ptr, +""
      (0...nbytes).step(READ_CHUNK) do |start|
        file.pread([READ_CHUNK, nbytes - start].min, offset + start, chunk)
        digest.update(chunk)
        FFI::Pointer.new(:uint8, address + start).put_bytes(0, chunk)
      end
      raise entry_error(blob_path, entry, "does not match its sha256") if digest.hexdigest != entry["sha256"]

      tensor
    end
    READ_CHUNK = 1 << 20

    # An uninitialised tensor of the entry's dtype and shape, or nil if its nbytes are not theirs.
    def empty_like_entry(entry)
      dtype, shape = DTYPE_NAMES.key(entry["dtype"]), entry["shape"]
      return nil unless dtype && shape.is_a?(Array) && shape.all? { |side| side.is_a?(Integer) && side >= 0 }

      tensor = Torch.empty(shape, dtype: dtype)
      tensor if entry["nbytes"] == tensor.numel * tensor.element_size
    end

    def read_copied(file, entry, blob_path)
      data = read_at(file, entry["offset"], entry["nbytes"])
      raise entry_error(blob_path, entry, "is truncated") if data.bytesize != entry["nbytes"]
      raise entry_error(blob_path, entry, "does not match its sha256") if OpenSSL::Digest::SHA256.hexdigest(data) != entry["sha256"]

      to_tensor(data, entry["dtype"], entry["shape"])
    end

    def entry_error(blob_path, entry, what)
      BundleError.new("#{blob_path}: #{entry["name"]} #{what}")
    end

    # nbytes from offset, fewer at the end of the file.
    def read_at(file, offset, nbytes)
      return +"" if nbytes.zero?

      file.pread(nbytes, offset)
    rescue EOFError
      +""
    end

    def to_tensor(data, dtype, shape)
      require "numo/narray"
      klass = Numo.const_get(NUMO_CLASSES.fetch(dtype) { raise BundleError, "unknown dtype #{dtype.inspect}" })
      count = shape.reduce(1, :*)
      array = klass.from_binary(data, [count])
      Torch.from_numo(array).reshape(shape).clone
    end
  end
end
