# frozen_string_literal: true

# Part of: torch/load.rb

require "ffi"

module PytorchParity
  module Load
    # The zip archive torch.save writes (and Save::ZipStream), read from its central directory as LibTorch's
    # PyTorchStreamReader (miniz) reads it: the records are found by name under the archive's folder (the
    # first record's), each record's data after its local header, no CRC checked (LibTorch's miniz checks
    # none). Only what PyTorch writes is taken: stored records, no comment, no zip64 sizes, a zip64 end
    # record that agrees with the plain one; anything else, a damaged directory included, is Unrecognised,
    # for torch.rb's own reader to read or refuse.
    class ZipReader
      END_RECORD = 0x06054b50
      ZIP64_END_RECORD = 0x06064b50
      ZIP64_LOCATOR = 0x07064b50
      ENTRY = 0x02014b50
      LOCAL_HEADER = 0x04034b50
      UNSUPPORTED = 0x0001 | 0x0020 | 0x0040 | 0x2000 # encrypted, patched, strongly encrypted, masked directory
      FOLDER = 0x10 # the DOS attribute
      UNKNOWN = [0xffff, 0xffffffff].freeze # a zip64 field stands in for these

      # libc's pread: a record's bytes go straight into a tensor's memory, no Ruby String between.
      module LibC
        extend FFI::Library
        ffi_lib FFI::Library::LIBC
        attach_function :pread, [:int, :pointer, :size_t, :off_t], :ssize_t, blocking: true
      end

      attr_reader :archive

      # file: an open File, read with pread only.
      def initialize(file)
        @file = file
        @size = file.size
        @records = {}
        @names = {} # each name without regard to case => the name
        read_directory
      end

      # Whether the archive has the record NAME (under its folder).
      def record?(name)
        !find(name).nil?
      end

      # The record's size in bytes.
      def size(name)
        entry(name)[:size]
      end

      def read_string(name)
        start, size = data(name)
        pread(size, start)
      end

      # Reads the first size bytes of the record into memory at address.
      def read_into(name, address, size)
        start, = data(name)
        done = 0
        while done < size
          count = LibC.pread(@file.fileno, FFI::Pointer.new(:uint8, address + done), size - done, start + done)
          if count.negative?
            next if FFI.errno == Errno::EINTR::Errno

            raise SystemCallError.new("pread", FFI.errno)
          end
          raise Unrecognised, "record #{name} ends early: the file changed" if count.zero?

          done += count
        end
      end

      private

      def read_directory
        raise Unrecognised, "no zip end record" if @size < 22

        tail = pread(22, @size - 22)
        signature, disk, directory_disk, entries_here, entries, directory_size, directory, comment = tail.unpack("VvvvvVVv")
        unless signature == END_RECORD && comment.zero? && disk.zero? && directory_disk.zero? && entries_here == entries &&
               entries.positive? && ([entries, directory_size, directory] & UNKNOWN).empty?
          raise Unrecognised, "not the end record PyTorch writes"
        end

        directory_end = zip64_end(@size - 22, entries, directory_size, directory)
        raise Unrecognised, "the central directory lies past its end" if directory + directory_size > directory_end

        read_entries(pread(directory_size, directory), entries)
      end

      # Where the zip64 end record starts (miniz reads its counts rather than the plain record's when its
      # locator is there: they must agree), or end_record when there is none.
      def zip64_end(end_record, entries, directory_size, directory)
        return end_record if end_record < 20

        signature, disk, offset, disks = pread(20, end_record - 20).unpack("VVQ<V")
        return end_record unless signature == ZIP64_LOCATOR
        raise Unrecognised, "not the zip64 locator PyTorch writes" unless disk.zero? && disks == 1 && offset + 56 <= end_record - 20

        fields = pread(56, offset).unpack("VQ<vvVVQ<Q<Q<Q<")
        unless fields[0] == ZIP64_END_RECORD && fields[1] == 44 && fields[4].zero? && fields[5].zero? &&
               fields[6..9] == [entries, entries, directory_size, directory]
          raise Unrecognised, "the zip64 end record differs from the end record"
        end

        offset
      end

      def read_entries(bytes, count)
        at = 0
        count.times do
          raise Unrecognised, "the central directory ends early" if at + 46 > bytes.bytesize

          signature, _, _, flags, method, _, _, _, stored, size, name_size, extra_size, comment_size, disk, _, attributes, local =
            bytes.unpack("VvvvvvvVVVvvvvvVV", offset: at)
          name = bytes.byteslice(at + 46, name_size)
          at += 46 + name_size + extra_size + comment_size
          unless signature == ENTRY && (flags & UNSUPPORTED).zero? && method.zero? && stored == size && disk.zero? &&
                 ([size, local] & UNKNOWN).empty? && at <= bytes.bytesize && local + 30 + size <= @size
            raise Unrecognised, "a central directory entry PyTorch does not write"
          end
          # miniz finds a name without regard to case: two names that differ only so are ambiguous
          raise Unrecognised, "two records named #{name}" if @names.key?(name.downcase)

          @names[name.downcase] = name
          @archive ||= name[0...(name.index("/") || raise(Unrecognised, "the first record is in no folder"))]
          @records[name] = {size: size, local: local, folder: name.end_with?("/") || (attributes & FOLDER).positive?}
        end
        raise Unrecognised, "the central directory is longer than its entries" unless at == bytes.bytesize
      end

      # The record of that name, nil when there is none; Unrecognised when only a name that differs in case is
      # there (miniz would take it).
      def find(name)
        wanted = "#{@archive}/#{name}".b
        found = @names[wanted.downcase] or return nil
        raise Unrecognised, "record #{found} stands for #{wanted}" unless found == wanted

        @records.fetch(found)
      end

      # size bytes from offset, all of them (the file may have changed since its size was taken).
      def pread(size, offset)
        bytes = size.zero? ? +"" : @file.pread(size, offset)
        raise Unrecognised, "the file ends early: it changed while read" unless bytes.bytesize == size

        bytes
      rescue EOFError
        raise Unrecognised, "the file ends early: it changed while read"
      end

      def entry(name)
        find(name) or raise Unrecognised, "no record #{name}"
      end

      # [where the record's data starts, its size]: after its local header, whose name and extra field
      # may differ in length from the central directory's.
      def data(name)
        record = entry(name)
        # miniz takes a folder's data to be empty and leaves the memory it gave for it as it was
        raise "record #{@archive}/#{name} is marked as a folder (a damaged file)" if record[:folder] && record[:size].positive?

        signature, name_size, extra_size = pread(30, record[:local]).unpack("Vx22vv")
        start = record[:local] + 30 + name_size + extra_size
        raise Unrecognised, "record #{name} has no local header" unless signature == LOCAL_HEADER
        raise Unrecognised, "record #{name} runs past the end of the file" if start + record[:size] > @size

        [start, record[:size]]
      end
    end
  end
end
