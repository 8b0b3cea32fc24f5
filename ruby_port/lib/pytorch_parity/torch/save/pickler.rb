# frozen_string_literal: true

# Part of: torch/save.rb

module PytorchParity
  module Save
    # The pickle (protocol 2) Python's torch.save writes for the Python twin of a Ruby object: Hash as
    # dict, Array as list, String as str, Integer, Float, true, false, nil, and tensors as
    # torch._utils._rebuild_tensor_v2 of a storage given by persistent id. Byte for byte as CPython's
    # _pickle writes it (the same memo: every str, dict, list, global, non-empty tuple and reduced
    # object, by identity, numbers never; the same opcodes; batches of 1000), but where LibTorch's
    # unpickler, torch.rb's Torch.load, reads less than pickle writes: a dict or list of one item is
    # a batch of one (MARK ... SETITEMS, APPENDS; it knows no SETITEM nor APPEND), and an integer
    # beyond 32 bits takes 8 bytes (LONG1 of another length it refuses).
    class Pickler
      BATCHSIZE = 1000
      REBUILD_TENSOR = ["torch._utils", "_rebuild_tensor_v2"].freeze
      ORDERED_DICT = %w[collections OrderedDict].freeze

      # storages: {tensor => [Storage, its offset in elements]} (Save.storages).
      def initialize(storages)
        @storages = storages
        @memo = {}.compare_by_identity # objects, as Python's memo keys id(obj)
        @named = {} # the globals and constant strings, the same Python object each time
        @next = 0
        @keys = 0
        @out = String.new(encoding: Encoding::BINARY)
      end

      def dump(obj)
        @out << "\x80\x02".b
        save(obj)
        @out << "."
      end

      private

      def save(obj)
        case obj
        when nil then @out << "N"
        when true then @out << "\x88".b
        when false then @out << "\x89".b
        when Integer then save_int(obj)
        when Float then @out << "G" << [obj].pack("G")
        else
          return get(@memo.fetch(obj)) if @memo.key?(obj)

          case obj
          when String then save_str(obj)
          when Array then save_list(obj)
          when Hash then save_dict(obj)
          else save_tensor(obj)
          end
        end
      end

      def save_int(value)
        if value.between?(0, 0xff) then @out << "K" << value
        elsif value.between?(0, 0xffff) then @out << "M" << [value].pack("v")
        elsif value.between?(-(1 << 31), (1 << 31) - 1) then @out << "J" << [value].pack("l<")
        else
          @out << "\x8a\x08".b << [value].pack("q<")
        end
      end

      def save_str(string)
        bytes = string.encode(Encoding::UTF_8).b
        @out << "X" << [bytes.bytesize].pack("V") << bytes
        put(string)
      end

      def save_list(list)
        @out << "]"
        put(list)
        list.each_slice(BATCHSIZE) do |batch|
          @out << "("
          batch.each { |item| save(item) }
          @out << "e"
        end
      end

      # A dict of exactly BATCHSIZE * n items ends with an empty batch, as _pickle's batch_dict_exact.
      def save_dict(hash)
        @out << "}"
        put(hash)
        return if hash.empty?

        batches = hash.each_slice(BATCHSIZE).to_a
        batches << [] if (hash.size % BATCHSIZE).zero?
        batches.each do |batch|
          @out << "("
          batch.each { |item| save_items(item) }
          @out << "u"
        end
      end

      def save_items(items)
        items.each { |item| save(item) }
      end

      # _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, OrderedDict()), the
      # reduction Tensor.__reduce_ex__ gives.
      def save_tensor(tensor)
        storage, offset = @storages.fetch(tensor)
        save_global(REBUILD_TENSOR)
        @out << "("
        save_storage(storage)
        save(offset)
        save_tuple(tensor.shape)
        save_tuple(tensor.stride)
        save(tensor.requires_grad)
        save_global(ORDERED_DICT)
        @out << ")R"
        put # the hooks' OrderedDict, a new object each time
        @out << "t"
        put
        @out << "R"
        put(tensor)
      end

      # torch.save's persistent id ("storage", torch.FloatStorage, key, "cpu", numel), a new tuple each
      # time; its strings and the storage type are the same objects each time. A storage's key is the
      # count of storages met before it.
      def save_storage(storage)
        unless storage.key
          storage.key = @keys.to_s
          @keys += 1
        end
        @out << "("
        save_constant("storage")
        save_global(["torch", storage.type])
        save(storage.key)
        save_constant("cpu")
        save(storage.numel)
        @out << "t"
        put
        @out << "Q"
      end

      def save_tuple(items)
        return @out << ")" if items.empty?

        @out << "(" if items.size > 3
        items.each { |item| save(item) }
        @out << (items.size > 3 ? "t" : [0x84 + items.size].pack("C"))
        put
      end

      def save_global(name)
        return get(@named.fetch(name)) if @named.key?(name)

        @out << "c#{name[0]}\n#{name[1]}\n"
        @named[name] = put
      end

      def save_constant(string)
        return get(@named.fetch(string)) if @named.key?(string)

        bytes = string.b
        @out << "X" << [bytes.bytesize].pack("V") << bytes
        @named[string] = put
      end

      # Memoizes the object just written (BINPUT, LONG_BINPUT), by obj when it can be met again; its index.
      def put(obj = nil)
        index = @next
        @next += 1
        @memo[obj] = index unless obj.nil?
        @out << (index < 256 ? [0x71, index].pack("CC") : "r#{[index].pack('V')}")
        index
      end

      # BINGET, LONG_BINGET.
      def get(index)
        @out << (index < 256 ? [0x68, index].pack("CC") : "j#{[index].pack('V')}")
      end
    end
  end
end
