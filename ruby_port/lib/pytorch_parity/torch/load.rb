# frozen_string_literal: true

# Fix: torch.rb 0.12, Torch.load (lib/torch.rb)
# Bug: Torch.load reads the whole file into one Ruby String, which its C++ _load copies into a
#   std::string, then byte by byte into a std::vector it never reserves, before LibTorch copies each
#   record once more into its tensor: about 1 s for ResNet-18's 45 MB checkpoint, where Python's
#   torch.load takes 0.16 s
# Reproduction:
#   require "objspace"
#   path = File.join(Dir.mktmpdir, "w.pth")
#   Torch.save({"w" => Torch.ones(1 << 20)}, path)
#   GC.disable
#   before = ObjectSpace.memsize_of_all(String)
#   Torch.load(path)
#   grown = ObjectSpace.memsize_of_all(String) - before
#   GC.enable
#   grown >= File.size(path)
# Upstream gives: true
# Python gives: False
# In Python: torch.save({"w": torch.ones(1 << 20)}, "w.pth"); import os, tracemalloc; tracemalloc.start(); torch.load("w.pth"); grown = tracemalloc.get_traced_memory()[1]; tracemalloc.stop(); grown >= os.path.getsize("w.pth")

require "torch"
require_relative "save"
require_relative "load/zip_reader"
require_relative "load/unpickler"

module PytorchParity
  # Torch.load(path) reads the zip torch.save writes (Python's, or Save's) itself: its central directory,
  # data.pkl through a restricted unpickler that runs nothing from the file, and each storage from the
  # file straight into its tensor's memory, once per storage (views of one storage share it, as Python's
  # torch.load gives them). What it gives is what torch.rb's Torch.load gives: the same Hash, Array,
  # String, Integer, Float, true, false and nil, the same keys in the same order, tensors of the same
  # dtype, size, stride, values and requires_grad. Whatever it does not recognise (an IO, a legacy or
  # TorchScript file, another global or opcode, a tuple, a dict or list of one item, which LibTorch's
  # unpickler refuses, a damaged archive) goes to torch.rb's Torch.load, which reads or refuses it as
  # before. A tensor that reaches past its storage raises (LibTorch would show memory past it).
  module Load
    # Raised inside the reader for what it leaves to torch.rb.
    class Unrecognised < StandardError; end
    MAX_FORMAT_VERSION = 3 # the "version" record PyTorch 1.13 writes, and older ones

    def load(f)
      Load.read(f) { super }
    end

    module_function

    # The object in the file at path, or what the block gives when the reader leaves it to torch.rb.
    def read(path, &upstream)
      return yield unless Save.path?(path) && File.file?(path)

      File.open(path, "rb") do |file|
        zip = ZipReader.new(file)
        check_version(zip)
        unpickler = Unpickler.new(zip.read_string("data.pkl"))
        root = unpickler.load
        # LibTorch reads every storage as the pickle names it, reached or not
        unpickler.storages.each_value { |storage| zip.size("data/#{storage.key}") if storage.numel.positive? }
        Reader.new(zip, path).to_ruby(root)
      end
    rescue Unrecognised
      upstream.call
    end

    # LibTorch reads .data/version, else version, as a number it supports.
    def check_version(zip)
      version = zip.read_string(zip.record?(".data/version") ? ".data/version" : "version")
      return if version.match?(/\A[1-9]\d*\n?\z/) && Integer(version.chomp, 10) <= MAX_FORMAT_VERSION

      raise Unrecognised, "format version #{version.inspect}"
    end

    # The unpickler's nodes as torch.rb's to_ruby makes them of LibTorch's IValues: a new Hash, Array or
    # String each time one is met; a tensor met twice (pickled once, then from the memo) the same tensor.
    class Reader
      def initialize(zip, path)
        @zip = zip
        @path = path
        @storages = {} # key => its 1-D tensor
        @tensors = {}.compare_by_identity
        @open = {}.compare_by_identity # the containers being converted: one met inside itself recurses forever in to_ruby
      end

      def to_ruby(node)
        case node
        when nil, true, false, Integer, Float then node
        when String then node.dup
        when Unpickler::List then inside(node) { node.items.map { |item| to_ruby(item) } }
        when Unpickler::Dict
          inside(node) { node.hash.each_with_object({}) { |(key, value), hash| hash[to_ruby(key)] = to_ruby(value) } }
        when Unpickler::Tensor then @tensors[node] ||= tensor(node)
        else raise Unrecognised, "a #{node.class} where torch.rb's to_ruby refuses it or gives a number"
        end
      end

      private

      def inside(node)
        raise Unrecognised, "a container inside itself" if @open.key?(node)

        @open[node] = true
        yield.tap { @open.delete(node) }
      end

      def tensor(node)
        dtype = node.storage.dtype
        if node.requires_grad && !%i[float16 bfloat16 float32 float64 complex64 complex128].include?(dtype)
          raise Unrecognised, "an integer tensor that requires grad"
        end

        view = strided(node)
        tensor = Torch.empty(0).to(dtype)
        tensor.set_data(view) # a tensor of its own on the storage, not a view, as LibTorch's set_
        tensor.requires_grad!(true) if node.requires_grad
        tensor
      end

      # The storage's memory from offset with size and stride. torch.rb has no set_ of a storage and its
      # as_strided refuses its SymInt arguments, so the view is made of narrow, then one unfold per
      # dimension of positive stride (each takes a dimension of that stride off the window left), expand for
      # the dimensions of stride 0, and permute; a tensor with a dimension of 0 only needs its strides.
      def strided(node)
        size, stride, offset = node.size, node.stride, node.offset
        raise Unrecognised, "a negative size, stride or offset" if (size + stride + [offset]).any?(&:negative?)

        shown = size.map { |n| [n, 1].max }
        span = 1 + shown.zip(stride).sum { |n, s| (n - 1) * s }
        storage = storage(node.storage)
        if offset + span > storage.numel
          storage, offset = empty_source(node.storage.dtype, span) if size.include?(0)
          if offset + span > storage.numel
            raise "#{@path}: a tensor of size #{size} and stride #{stride} from element #{offset} reaches past its " \
                  "storage of #{storage.numel} (a damaged file)"
          end
        end
        view = storage.narrow(0, offset, span)
        order = (0...size.size).select { |d| stride[d].positive? }
        order.each { |d| view = view.unfold(-1, view.shape[-1] - ((shown[d] - 1) * stride[d]), stride[d]) }
        view = view.select(-1, 0)
        zeros = (0...size.size).reject { |d| stride[d].positive? }
        zeros.each { view = view.unsqueeze(-1) }
        order += zeros
        view = view.expand(*order.map { |d| shown[d] }) unless zeros.empty?
        view = view.permute(*order.each_index.sort_by { |i| order[i] }) if order.size > 1
        size.each_with_index { |n, d| view = view.narrow(d, 0, 0) if n.zero? }
        raise Unrecognised, "no view of size #{size} and stride #{stride}" unless view.shape == size && view.stride == stride

        view
      end

      # [memory, offset] for an empty tensor whose strides reach past its storage (torch.save keeps none
      # for a tensor of no elements): the size and stride are all it shows.
      def empty_source(dtype, span)
        raise Unrecognised, "an empty tensor of strides too long" if span > (1 << 20)

        [Torch.empty(0).to(dtype).resize!([span]), 0]
      end

      # The storage's tensor, read from data/KEY into its memory the first time.
      def storage(storage)
        @storages[storage.key] ||= begin
          tensor = Torch.empty(0).to(storage.dtype)
          nbytes = storage.numel * tensor.element_size
          record = "data/#{storage.key}"
          if nbytes.positive? && @zip.size(record) < nbytes
            raise "#{@path}: record #{record} holds #{@zip.size(record)} bytes, its storage #{nbytes} (a damaged file)"
          end
          tensor.resize!([storage.numel])
          @zip.read_into(record, tensor._data_ptr, nbytes) if nbytes.positive?
          tensor
        end
      end
    end
  end
end

Torch.singleton_class.prepend(PytorchParity::Load)
