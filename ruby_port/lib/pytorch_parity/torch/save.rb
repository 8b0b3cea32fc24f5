# frozen_string_literal: true

# Fix: torch.rb 0.12, Torch.save (lib/torch.rb)
# Bug: Torch.save pickles through LibTorch's TorchScript pickler, whose file calls
#   torch.jit._pickle.restore_type_tag, which Python's torch.load(weights_only=True) refuses; and it
#   builds the whole archive in memory (a std::vector, then a Ruby String of it) before writing a byte,
#   where torch.save writes each storage straight into the file
# Reproduction:
#   path = File.join(Dir.mktmpdir, "best.pth")
#   Torch.save({"weight" => Torch.ones(2)}, path)
#   File.binread(path).include?("restore_type_tag")
# Upstream gives: true
# Python gives: False
# In Python: torch.save({"weight": torch.ones(2)}, "best.pth"); b"restore_type_tag" in open("best.pth", "rb").read()

require "ffi"
require "torch"
require_relative "save/pickler"
require_relative "save/zip_stream"

module PytorchParity
  # Torch.save(obj, path_or_io) as PyTorch 1.13's torch.save writes the Python twin of obj (Hash as
  # dict, Array as list; tensors, strings, numbers, true, false, nil): a zip of data.pkl, one data/KEY
  # per storage, then version, written as it goes, one storage's memory at a time. Python's
  # torch.load(weights_only=True) and torch.rb's Torch.load read it. Anything else (a Symbol, another
  # class, a tensor not on the CPU, an archive of 4 GiB or more) goes to torch.rb's own Torch.save,
  # which takes paths only.
  module Save
    STORAGE_TYPES = {uint8: "ByteStorage", int8: "CharStorage", int16: "ShortStorage", int32: "IntStorage",
                     int64: "LongStorage", float16: "HalfStorage", bfloat16: "BFloat16Storage",
                     float32: "FloatStorage", float64: "DoubleStorage", complex64: "ComplexFloatStorage",
                     complex128: "ComplexDoubleStorage", bool: "BoolStorage"}.freeze
    FORMAT_VERSION = "3\n" # the "version" record PyTorch 1.13 writes
    # A storage as the file holds it: memory from address, its element count, and its key (its
    # order of first appearance in the pickle, as a string), given by the Pickler.
    Storage = Struct.new(:type, :address, :nbytes, :numel, :key)

    def save(obj, f)
      tensors = []
      storages = Save.collect(obj, tensors, {}.compare_by_identity) && Save.storages(tensors)
      pickle = storages && Save::Pickler.new(storages).dump(obj)
      records = pickle && storages.values.map(&:first).uniq(&:key).sort_by(&:key)
      archive = Save.archive_name(f)
      return Save.write(f, archive, pickle, records) if records && Save.fits?(archive, pickle, records)
      return super if Save.path?(f)

      raise ArgumentError, "Torch.save to a #{f.class} takes hashes and arrays of CPU tensors, strings, numbers, " \
                           "true, false and nil, in an archive under 4 GiB; save this object to a path instead"
    end

    module_function

    # A String or a Pathname, as torch.save takes a str or a pathlib.Path; an open File is an IO.
    def path?(f)
      f.is_a?(String) || (f.respond_to?(:to_path) && !f.respond_to?(:write))
    end

    # torch.save names the archive after the file, up to its last dot ("best" for runs/best.pth), or
    # "archive" when it writes to a buffer.
    def archive_name(f)
      return "archive" unless path?(f)

      name = (f.is_a?(String) ? f : f.to_path).split(%r{[/\\]}, -1).last.to_s
      name = name[0...name.rindex(".")] if name.include?(".")
      name.empty? ? "archive" : name
    end

    # Whether obj is made of what the file can hold; its tensors appended to tensors.
    def collect(obj, tensors, seen)
      case obj
      when nil, true, false, Float then true
      when Integer then obj.bit_length < 64
      when String then utf8?(obj)
      when Torch::Tensor
        tensors << obj
        obj.device.to_s == "cpu" && obj.layout == :strided && STORAGE_TYPES.key?(obj.dtype) && !obj.conj? && !obj.neg?
      when Array, Hash
        return true if seen.key?(obj)

        seen[obj] = true
        (obj.is_a?(Hash) ? obj.to_a.flatten(1) : obj).all? { |item| collect(item, tensors, seen) }
      else false
      end
    end

    def utf8?(string)
      string.encode(Encoding::UTF_8)
      true
    rescue EncodingError
      false
    end

    # {tensor => [Storage, the tensor's offset in it, in elements]}. torch.rb 0.12 tells neither a
    # tensor's storage nor its offset in it, only where its first element is: tensors whose memory
    # overlaps share a storage (two storages never overlap), which spans their memory. A whole tensor
    # is its own storage, as in torch.save; views that do not overlap are saved apart, each
    # storage as long as what the views show. nil when tensors of different dtypes overlap.
    def storages(tensors)
      plan = {}.compare_by_identity
      spans = tensors.uniq(&:object_id).filter_map do |tensor|
        if tensor.numel.zero?
          plan[tensor] = [Storage.new(STORAGE_TYPES.fetch(tensor.dtype), 0, 0, 0), 0]
          next
        end

        last = tensor.shape.zip(tensor.stride).sum { |size, stride| (size - 1) * stride }
        [tensor, tensor._data_ptr, tensor._data_ptr + ((last + 1) * tensor.element_size)]
      end
      groups = []
      spans.sort_by { |span| span[1] }.each do |span|
        if groups.last && span[1] < groups.last[:end]
          groups.last[:spans] << span
          groups.last[:end] = [groups.last[:end], span[2]].max
        else
          groups << {start: span[1], end: span[2], spans: [span]}
        end
      end
      groups.each do |group|
        tensor = group[:spans].first.first
        return nil unless group[:spans].all? { |other, _, _| other.dtype == tensor.dtype }

        nbytes = group[:end] - group[:start]
        storage = Storage.new(STORAGE_TYPES.fetch(tensor.dtype), group[:start], nbytes, nbytes / tensor.element_size)
        group[:spans].each { |other, start, _| plan[other] = [storage, (start - group[:start]) / tensor.element_size] }
      end
      plan
    end

    # Whether the archive stays within a plain zip's 4 GiB and 65,535 records (PyTorch's writer
    # then adds zip64 fields, which this one does not write).
    def fits?(archive, pickle, records)
      sizes = [["data.pkl", pickle.bytesize], *records.map { |storage| ["data/#{storage.key}", storage.nbytes] }, ["version", 2]]
      names = sizes.map { |name, _| "#{archive}/#{name}".b }
      data_end = sizes.zip(names).reduce(0) { |offset, ((_, size), name)| ZipStream.record_end(offset, name, size) }
      data_end + names.sum { |name| 46 + name.bytesize } + 98 < 0xffffffff && sizes.size < 0xffff
    end

    def write(f, archive, pickle, records)
      return File.open(f, "wb") { |io| write(io, archive, pickle, records) } if path?(f)

      zip = ZipStream.new(f, archive)
      zip.write_string("data.pkl", pickle)
      records.each { |storage| zip.write_memory("data/#{storage.key}", storage.address, storage.nbytes) }
      zip.write_string("version", FORMAT_VERSION)
      zip.finish
      f.flush if f.respond_to?(:flush)
      nil
    end
  end
end

Torch.singleton_class.prepend(PytorchParity::Save)
