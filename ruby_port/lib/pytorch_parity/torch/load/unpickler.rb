# frozen_string_literal: true

# Part of: torch/load.rb

require_relative "../save"

module PytorchParity
  module Load
    # data.pkl as LibTorch's unpickler (torch/csrc/jit/serialization/unpickler.cpp, which torch.rb's
    # Torch.load runs) reads it, restricted to what torch.save writes for dicts, lists, strings, numbers,
    # true, false, nil and tensors: protocol 2; the opcodes below; three globals, never called: the tensors'
    # torch._utils._rebuild_tensor_v2, the storage types of Save::STORAGE_TYPES, and collections.OrderedDict,
    # which LibTorch makes None (the empty hooks of a tensor). Every other opcode or global, and whatever
    # LibTorch would refuse, is Unrecognised: nothing in the file is ever run. The result is a tree of
    # nodes that Load turns into Ruby objects as torch.rb's to_ruby does.
    class Unpickler
      Tuple = Struct.new(:items)
      List = Struct.new(:items)
      Dict = Struct.new(:hash) # keys as Ruby values, in insertion order, as c10::Dict keeps them
      StorageType = Struct.new(:dtype)
      # A persistent id: the record data/KEY, numel elements of dtype.
      Storage = Struct.new(:dtype, :key, :numel)
      # _rebuild_tensor_v2's arguments, sizes and strides as Integer arrays.
      Tensor = Struct.new(:storage, :offset, :size, :stride, :requires_grad)
      REBUILD_TENSOR = Object.new.freeze
      ORDERED_DICT = Object.new.freeze
      EMPTY_TUPLE = Tuple.new([].freeze).freeze
      GLOBALS = {
        "torch._utils\n_rebuild_tensor_v2" => REBUILD_TENSOR,
        "collections\nOrderedDict" => ORDERED_DICT,
        **Save::STORAGE_TYPES.to_h { |dtype, name| ["torch\n#{name}", StorageType.new(dtype).freeze] }
      }.freeze

      attr_reader :storages

      def initialize(bytes)
        @bytes = bytes
        @at = 0
        @stack = []
        @marks = []
        @memo = {}
        @storages = {} # key => Storage
      end

      # The root node.
      def load
        raise Unrecognised, "not pickle protocol 2" unless read(2) == "\x80\x02".b

        loop do
          opcode = read(1)
          break if opcode == "."

          step(opcode)
        end
        raise Unrecognised, "the pickle leaves #{@stack.size} objects" unless @stack.size == 1

        @stack.first
      end

      private

      # rubocop:disable Metrics/CyclomaticComplexity
      def step(opcode)
        case opcode
        when "(" then @marks << @stack.size
        when "]" then @stack << List.new([])
        when "}" then @stack << Dict.new({})
        when ")" then @stack << EMPTY_TUPLE
        when "N" then @stack << nil
        when "\x88".b then @stack << true
        when "\x89".b then @stack << false
        when "K" then @stack << read(1).unpack1("C")
        when "M" then @stack << read(2).unpack1("v")
        when "J" then @stack << read(4).unpack1("l<")
        when "\x8a".b
          raise Unrecognised, "a LONG1 of other than 8 bytes" unless read(1) == "\x08".b # LibTorch's only

          @stack << read(8).unpack1("q<")
        when "G" then @stack << read(8).unpack1("G")
        when "X" then @stack << read(read(4).unpack1("V")).force_encoding(Encoding::UTF_8).freeze
        when "t" then @stack << Tuple.new(pop_mark.freeze)
        when "\x85".b, "\x86".b, "\x87".b then @stack << Tuple.new(pop(opcode.ord - 0x84).freeze)
        when "e" then appends
        when "u" then setitems
        when "q" then @memo[read(1).unpack1("C")] = top
        when "r" then @memo[read(4).unpack1("V")] = top
        when "h" then @stack << @memo.fetch(read(1).unpack1("C")) { raise Unrecognised, "a memo never put" }
        when "j" then @stack << @memo.fetch(read(4).unpack1("V")) { raise Unrecognised, "a memo never put" }
        when "c" then @stack << GLOBALS.fetch("#{line}\n#{line}") { raise Unrecognised, "a global torch.save does not write" }
        when "R" then reduce
        when "Q" then @stack << storage(*pop(1))
        else raise Unrecognised, "opcode #{opcode.inspect}"
        end
      end
      # rubocop:enable Metrics/CyclomaticComplexity

      def read(count)
        bytes = @bytes.byteslice(@at, count)
        raise Unrecognised, "the pickle ends early" unless bytes && bytes.bytesize == count

        @at += count
        bytes
      end

      # Up to the next newline (a GLOBAL's module and name).
      def line
        stop = @bytes.index("\n", @at) or raise Unrecognised, "the pickle ends early"
        read(stop - @at).tap { @at += 1 }
      end

      def top
        raise Unrecognised, "a memo of nothing" if @stack.empty?

        @stack.last
      end

      def pop(count)
        raise Unrecognised, "the stack runs out" if @stack.size < count

        @stack.pop(count)
      end

      # What lies above the last mark, removed with it.
      def pop_mark
        start = @marks.pop or raise Unrecognised, "no mark"
        raise Unrecognised, "a mark past the stack" if start > @stack.size

        @stack.slice!(start..)
      end

      def container(kind)
        start = @marks.last or raise Unrecognised, "no mark"
        raise Unrecognised, "no #{kind.name} below the mark" unless start.positive? && start <= @stack.size && @stack[start - 1].is_a?(kind)

        @stack[start - 1]
      end

      def appends
        container(List).items.concat(pop_mark)
      end

      # c10::Dict's insert_or_assign: a key met again keeps its place and takes the new value.
      def setitems
        dict = container(Dict)
        items = pop_mark
        raise Unrecognised, "a key without a value" if items.size.odd?

        items.each_slice(2) { |key, value| dict.hash[dict_key(key)] = value }
      end

      # What LibTorch can hash and to_ruby gives back alike: a NaN is equal to nothing, so two NaN keys
      # would stay apart in c10::Dict but not in a Hash of the Floats to_ruby makes of them.
      def dict_key(key)
        case key
        when String, Integer, true, false then key
        when Float
          raise Unrecognised, "a NaN key" if key.nan?

          key
        else raise Unrecognised, "a key LibTorch does not hash or torch.rb does not read"
        end
      end

      def reduce
        callable, args = pop(2)
        if callable.equal?(ORDERED_DICT) && args.equal?(EMPTY_TUPLE)
          @stack << nil
        elsif callable.equal?(REBUILD_TENSOR) && args.is_a?(Tuple)
          @stack << tensor(*args.items)
        else
          raise Unrecognised, "a call torch.save does not write"
        end
      end

      # _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks).
      def tensor(storage = nil, offset = nil, size = nil, stride = nil, requires_grad = nil, hooks = :none, *rest)
        unless storage.is_a?(Storage) && offset.is_a?(Integer) && int_tuple?(size) && int_tuple?(stride) &&
               size.items.size == stride.items.size && [true, false].include?(requires_grad) && hooks.nil? && rest.empty?
          raise Unrecognised, "a tensor torch.save does not write"
        end

        Tensor.new(storage, offset, size.items, stride.items, requires_grad)
      end

      def int_tuple?(value)
        value.is_a?(Tuple) && value.items.all?(Integer)
      end

      # ("storage", the storage type, key, "cpu", numel): one Storage per key, as torch.load keeps one.
      def storage(id)
        type, key, location, numel = id.items[1..] if id.is_a?(Tuple) && id.items.size == 5 && id.items[0] == "storage"
        unless type.is_a?(StorageType) && key.is_a?(String) && location == "cpu" && numel.is_a?(Integer) && !numel.negative?
          raise Unrecognised, "a persistent id torch.save does not write"
        end

        storage = @storages[key] ||= Storage.new(type.dtype, key, numel)
        raise Unrecognised, "storage #{key} met with two types or sizes" unless storage.dtype == type.dtype && storage.numel == numel

        storage
      end
    end
  end
end
