# frozen_string_literal: true

# Part of: torch/utils/data/data_loader_workers.rb

require_relative "../../../bundle"
require "ffi"
require "socket"
require "tmpdir"
require "torch"
require_relative "../../tensor_memory"

module PytorchParity
  # What passes between the DataLoader and one worker process: PyTorch's index_queue (indices to the
  # worker) and worker_result_queue (batches back) in one socket pair of SOCK_SEQPACKET (a message is
  # read whole or not at all; the other side's exit reads as the end). A batch's tensors travel as
  # torch.multiprocessing's file-descriptor strategy has them: the worker writes each tensor's raw bytes
  # into an anonymous in-memory file (memfd) and sends the descriptors with the message; the DataLoader
  # maps each file as its tensor's memory (Torch.from_file), as PyTorch's DataLoader maps a worker's
  # shared memory. So the worker never waits for the DataLoader to take a batch, the socket carries only
  # the batch's structure (Marshal), and the DataLoader writes nothing: memory it wrote would be shared
  # with the workers it has just forked, each page copied at its first write. A batch of more tensors
  # than one message may carry descriptors, or of a dtype Torch.from_file does not take, travels in one
  # file and is read from it.
  class WorkerChannel
    INLINE_LIMIT = 32 * 1024 # a message's Marshal in the socket itself, at most
    RECEIVE_LIMIT = INLINE_LIMIT + 64
    MAX_FILES = 64 # tensors sent as files of their own in one message, at most (Linux allows 253)

    # Where a tensor was in a message: its bytes in the message's file at offset, or in file number
    # index of the message's own files.
    TensorSlot = Struct.new(:dtype, :shape, :offset, :requires_grad, :index)

    module LibC
      extend FFI::Library
      ffi_lib FFI::Library::LIBC
      attach_function :pread, [:int, :pointer, :size_t, :off_t], :ssize_t
      attach_function :pwrite, [:int, :pointer, :size_t, :off_t], :ssize_t
      begin
        attach_function :memfd_create, [:string, :uint], :int
      rescue FFI::NotFoundError
        nil # an unlinked temporary file instead (anonymous_file)
      end
      MFD_CLOEXEC = 1
    end

    # [the DataLoader's end, the worker's end]
    def self.pair
      UNIXSocket.pair(:SEQPACKET).map { |socket| new(socket) }
    end

    attr_reader :socket

    def initialize(socket)
      @socket = socket
    end

    def to_io
      @socket
    end

    def close
      @socket.close unless @socket.closed?
    end

    def closed?
      @socket.closed?
    end

    # Sends object (any Marshal-able structure of arrays, hashes, structs, numbers, strings and
    # tensors); raises Errno::EPIPE or Errno::ECONNRESET once the other side has gone. Returns the
    # bytes of the tensors sent.
    def put(object)
      tensors = []
      size = [0]
      skeleton = Marshal.dump(reduce(object, tensors, size))
      if tensors.empty? && skeleton.bytesize <= INLINE_LIMIT
        @socket.sendmsg("I#{skeleton}")
        return 0
      end
      return put_files(skeleton, tensors, size[0]) if skeleton.bytesize <= INLINE_LIMIT && tensors.size <= MAX_FILES

      file = anonymous_file
      begin
        write_fully(file.fileno, FFI::MemoryPointer.from_string(skeleton), skeleton.bytesize, 0)
        tensors.each { |tensor, slot| write_tensor(file.fileno, tensor, slot.offset + skeleton.bytesize) }
        @socket.sendmsg("F#{[skeleton.bytesize].pack('Q<')}", 0, nil, Socket::AncillaryData.unix_rights(file))
      ensure
        file.close
      end
      size[0]
    end

    # The next object sent, waiting for it; nil once the other side has closed its end or exited.
    def get
      data, _address, _flags, *controls = @socket.recvmsg(RECEIVE_LIMIT, 0, nil, scm_rights: true)
      return nil if data.nil? || data.empty?

      case data[0]
      when "I" then Marshal.load(data.byteslice(1..))
      when "T" then map_files(Marshal.load(data.byteslice(1..)), controls.first.unix_rights)
      when "F" then read_file(controls.first.unix_rights.first, data.byteslice(1, 8).unpack1("Q<"))
      else raise IOError, "DataLoader worker channel: a message of unknown kind #{data[0].inspect}"
      end
    rescue Errno::ECONNRESET
      nil
    end

    private

    # object with each tensor replaced by its TensorSlot; tensors collects [contiguous tensor, slot].
    def reduce(object, tensors, offset)
      case object
      when Torch::Tensor
        tensor = object.detach.contiguous
        slot = TensorSlot.new(tensor.dtype, tensor.shape, offset[0], object.requires_grad, tensors.size)
        offset[0] += tensor.numel * tensor.element_size
        tensors << [tensor, slot]
        slot
      when Array then object.map { |item| reduce(item, tensors, offset) }
      when Hash then object.transform_values { |item| reduce(item, tensors, offset) }
      when Struct then object.class.new(*object.to_a.map { |item| reduce(item, tensors, offset) })
      else object
      end
    end

    # object with each TensorSlot replaced by the tensor that tensor_at(slot) makes (requiring grad as
    # the tensor sent did).
    def rebuild(object, &tensor_at)
      case object
      when TensorSlot then tensor_at.call(object).tap { |tensor| tensor.requires_grad!(true) if object.requires_grad }
      when Array then object.map { |item| rebuild(item, &tensor_at) }
      when Hash then object.transform_values { |item| rebuild(item, &tensor_at) }
      when Struct then object.class.new(*object.to_a.map { |item| rebuild(item, &tensor_at) })
      else object
      end
    end

    # Each tensor in a file of its own, their descriptors with the skeleton.
    def put_files(skeleton, tensors, bytes)
      files = []
      tensors.each do |tensor, _slot|
        files << anonymous_file
        write_tensor(files.last.fileno, tensor, 0)
      end
      @socket.sendmsg("T#{skeleton}", 0, nil, Socket::AncillaryData.unix_rights(*files))
      bytes
    ensure
      files.each(&:close)
    end

    def map_files(skeleton, files)
      rebuild(skeleton) { |slot| map_tensor(files[slot.index], slot) }
    ensure
      files&.each(&:close)
    end

    # The tensor whose memory is file's (mapped, shared), or read from it when Torch.from_file cannot.
    def map_tensor(file, slot)
      numel = slot.shape.inject(1, :*)
      tensor = begin
        TensorMemory.count_mapped(Torch.from_file("/proc/self/fd/#{file.fileno}", true, numel, dtype: slot.dtype).reshape(slot.shape)) if numel.positive?
      rescue ArgumentError # a dtype it does not take (float16)
        nil
      end
      tensor || read_tensor(file, slot, 0)
    end

    def read_file(file, skeleton_size)
      buffer = FFI::MemoryPointer.new(:uint8, [skeleton_size, 1].max)
      read_fully(file.fileno, buffer, skeleton_size, 0)
      rebuild(Marshal.load(buffer.read_bytes(skeleton_size))) { |slot| read_tensor(file, slot, skeleton_size + slot.offset) }
    ensure
      file&.close
    end

    def write_tensor(fd, tensor, offset)
      size = tensor.numel * tensor.element_size
      write_fully(fd, FFI::Pointer.new(:uint8, tensor._data_ptr), size, offset) if size.positive?
    end

    def read_tensor(file, slot, offset)
      tensor = begin
        Torch.empty(slot.shape, dtype: slot.dtype)
      rescue ArgumentError # torch.rb's empty takes no float16: converted to it instead
        Torch.empty(slot.shape).to(slot.dtype)
      end
      size = tensor.numel * tensor.element_size
      read_fully(file.fileno, FFI::Pointer.new(:uint8, tensor._data_ptr), size, offset) if size.positive?
      tensor
    end

    def write_fully(fd, pointer, size, offset)
      transfer(size, "writing a batch for the DataLoader") do |done|
        LibC.pwrite(fd, pointer + done, size - done, offset + done)
      end
    end

    def read_fully(fd, pointer, size, offset)
      transfer(size, "reading a batch from a DataLoader worker") do |done|
        count = LibC.pread(fd, pointer + done, size - done, offset + done)
        raise EOFError, "a DataLoader worker's batch is shorter than its description" if count.zero?

        count
      end
    end

    # Until size bytes are done: the block, given the bytes done so far, moves more and returns how many
    # (again after EINTR; another error is raised, its words saying what was doing it).
    def transfer(size, doing)
      done = 0
      while done < size
        count = yield done
        raise SystemCallError.new(doing, FFI.errno) if count.negative? && FFI.errno != Errno::EINTR::Errno

        done += count if count.positive?
      end
    end

    # A file in memory that has no name and is gone once its last descriptor is closed.
    def anonymous_file
      if LibC.respond_to?(:memfd_create)
        fd = LibC.memfd_create("pytorch_parity-batch", LibC::MFD_CLOEXEC)
        return IO.for_fd(fd, autoclose: true) unless fd.negative?
      end
      path = File.join(Dir.tmpdir, "pytorch_parity-batch-#{Process.pid}-#{rand(1 << 64)}")
      File.open(path, File::RDWR | File::CREAT | File::EXCL, 0o600).tap { File.unlink(path) }
    end
  end
end
