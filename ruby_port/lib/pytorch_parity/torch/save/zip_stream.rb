# frozen_string_literal: true

# Part of: torch/save.rb

require "zlib"
require_relative "../tensor_memory"

module PytorchParity
  module Save
    # The zip archive PyTorch's PyTorchStreamWriter writes (caffe2/serialize/inline_container.cc), written
    # as it goes: each record stored uncompressed under "ARCHIVE/", its data 64-byte aligned by a local
    # extra field "FB" of "Z"s, its CRC and sizes in a data descriptor after it (so nothing is written
    # twice and nothing is sought back to; an empty record has none, as in PyTorch's); then the central
    # directory, a zip64 end record, its locator and the end record. Dates, times, versions and
    # attributes are 0, as PyTorch leaves them.
    class ZipStream
      ALIGNMENT = 64
      UTF8 = 0x0800 # a flag: names in UTF-8
      DESCRIPTOR = 0x0008 # a flag: the CRC and sizes follow the data

      # The offset just past a record of name and size bytes written at offset: what plan checks.
      def self.record_end(offset, name, size)
        data = offset + 30 + name.bytesize + 4
        data + (-data % ALIGNMENT) + size + (size.zero? ? 0 : 16)
      end

      def initialize(io, archive)
        @io = io
        @prefix = "#{archive}/".b
        @offset = 0
        @records = []
      end

      def write_string(name, bytes)
        record(name, bytes.bytesize) do
          write(bytes)
          Zlib.crc32(bytes)
        end
      end

      # The size bytes at address, in chunks: one chunk of them in a Ruby String at a time.
      def write_memory(name, address, size)
        record(name, size) do
          crc = 0
          TensorMemory.each_chunk(address, size) do |chunk|
            write(chunk)
            crc = Zlib.crc32(chunk, crc)
          end
          crc
        end
      end

      def finish
        directory = @offset
        @records.each do |name, crc, size, offset|
          write([0x02014b50, 0, 0, flags(size), 0, 0, 0, crc, size, size, name.bytesize, 0, 0, 0, 0, 0, offset]
                  .pack("VvvvvvvVVVvvvvvVV") + name)
        end
        size = @offset - directory
        zip64_end = @offset
        count = @records.size
        write([0x06064b50, 44, 0x031e, 45, 0, 0, count, count, size, directory].pack("VQ<vvVVQ<Q<Q<Q<"))
        write([0x07064b50, 0, zip64_end, 1].pack("VVQ<V"))
        write([0x06054b50, 0, 0, count, count, size, directory, 0].pack("VvvvvVVv"))
      end

      private

      def record(name, size)
        name = @prefix + name.b
        offset = @offset
        start = offset + 30 + name.bytesize + 4
        padding = -start % ALIGNMENT
        write([0x04034b50, 0, flags(size), 0, 0, 0, 0, 0, 0, name.bytesize, 4 + padding].pack("VvvvvvVVVvv") + name +
              ["FB", padding].pack("a2v") + ("Z" * padding))
        crc = yield
        write([0x08074b50, crc, size, size].pack("VVVV")) unless size.zero?
        @records << [name, crc, size, offset]
      end

      def flags(size)
        size.zero? ? UTF8 : UTF8 | DESCRIPTOR
      end

      def write(bytes)
        @io.write(bytes)
        @offset += bytes.bytesize
      end
    end
  end
end
