# frozen_string_literal: true

require "ffi"

module PytorchParity
  module Record
    # A value as the run stores it: dtype (PyTorch's name: "float32", "uint8", ...), shape, the bytes in
    # row-major order, and form ("tensor", "image", "array").
    Bytes = Struct.new(:dtype, :shape, :bytes, :form)

    # A contiguous tensor's bytes, written to the run's file from the tensor's own memory: a String of them
    # (_data_str) was two copies, its own and Rice's, of every tensor recorded (a tutorial run's 340 MB, each
    # page of each a fault: 0.55 CPU-s). Stands where Bytes holds a String: bytesize, empty?, and write_to(file).
    TensorData = Struct.new(:tensor) do
      def bytesize
        tensor.numel * tensor.element_size
      end

      def empty?
        bytesize.zero?
      end

      # Writes every byte to file (opened for writing, unbuffered: the writer's syswrite) with write(2).
      def write_to(file)
        address, size, written = tensor._data_ptr, bytesize, 0
        while written < size
          count = LibC.write(file.fileno, FFI::Pointer.new(:uint8, address + written), size - written)
          raise SystemCallError.new("write to #{file.path}", FFI.errno) if count.negative?

          written += count
        end
        written
      end
    end

    # write(2), for TensorData.
    module LibC
      extend FFI::Library
      ffi_lib FFI::Library::LIBC
      attach_function :write, [:int, :pointer, :size_t], :ssize_t
    end

    # What the recorder makes of the values it sees: tensors as they are, libvips images as uint8
    # [height, width, bands] (np.asarray(pil_image)'s layout, with one band kept as a last axis of 1),
    # Numo arrays; containers (Array, Hash) flattened to NAME.0, NAME.key; numbers and strings kept as
    # JSON values. The Python twin is in parity/record.py.
    module Values
      VIPS_DTYPES = {uchar: "uint8", char: "int8", short: "int16", int: "int32", float: "float32", double: "float64"}.freeze
      NUMO_DTYPES = {
        "Numo::UInt8" => "uint8", "Numo::Int8" => "int8", "Numo::Int16" => "int16", "Numo::Int32" => "int32",
        "Numo::Int64" => "int64", "Numo::SFloat" => "float32", "Numo::DFloat" => "float64"
      }.freeze

      module_function

      # The value's Bytes, or nil when it is not an array of numbers.
      def bytes_of(value)
        if value.is_a?(Torch::Tensor)
          tensor_bytes(value)
        elsif defined?(Vips::Image) && value.is_a?(Vips::Image)
          image_bytes(value)
        elsif defined?(Numo::NArray) && value.is_a?(Numo::NArray)
          numo_bytes(value)
        end
      end

      def tensor_bytes(tensor)
        tensor = tensor.detach
        tensor = tensor.cpu unless tensor.device.to_s == "cpu"
        tensor = tensor.contiguous
        Bytes.new(tensor.dtype.to_s, tensor.shape, TensorData.new(tensor), "tensor")
      end

      def image_bytes(image)
        image = image.cast(image.format == :ushort ? :int : :double) unless VIPS_DTYPES.key?(image.format)
        Bytes.new(VIPS_DTYPES.fetch(image.format), [image.height, image.width, image.bands], image.write_to_memory, "image")
      end

      def numo_bytes(array)
        array = Numo::UInt8.cast(array) if array.is_a?(Numo::Bit)
        dtype = NUMO_DTYPES[array.class.name]
        array, dtype = Numo::DFloat.cast(array), "float64" if dtype.nil?
        Bytes.new(dtype, array.shape, array.to_binary, "array")
      end

      # [arrays, values]: name => Bytes for every array in value, name => number/string/bool/nil for the rest.
      def flatten(value, name, arrays = {}, values = {})
        case value
        when ::Array
          value.each_with_index { |item, index| flatten(item, "#{name}.#{index}", arrays, values) }
        when Hash
          value.each { |key, item| flatten(item, "#{name}.#{key}", arrays, values) }
        when Numeric, String, Symbol, true, false, nil
          values[name] = value.is_a?(Symbol) ? value.to_s : value
        else
          bytes = bytes_of(value)
          if bytes
            arrays[name] = bytes
          else
            values[name] = "#{value.class.name} (not recorded)"
          end
        end
        [arrays, values]
      end
    end
  end
end
