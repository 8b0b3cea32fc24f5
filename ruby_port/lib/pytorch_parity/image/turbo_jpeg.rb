# frozen_string_literal: true

# pytorch_parity's image stack (image/), no fix of an upstream gem: the images of PIL that the fixes of
# torchvision-ruby work on, made and read here. This file: JPEGs decoded by the libjpeg-turbo PIL decodes
# them with, PIL's pixels bit for bit, for the loader (rgb_loader.rb).

require "ffi"
require "torchvision"

module PytorchParity
  module Image
    # JPEG files decoded by libjpeg-turbo's TurboJPEG API (Debian's libturbojpeg0), straight into a
    # uint8 Torch tensor [height, width, 3]. PIL decodes JPEGs with the same libjpeg-turbo (Debian's
    # libjpeg62-turbo, built from the same source), with the same defaults (accurate integer DCT, fancy
    # upsampling): the pixels are PIL's, bit for bit. libvips decodes them too, but its per-image
    # pipeline costs about 1 ms more than the decoding itself, more than the rest of the train
    # transforms. Only what PIL's convert("RGB") would not change goes this way: JPEGs that libjpeg
    # reads as YCbCr, RGB or grayscale; CMYK and YCCK ones are decoded here only to see whether PIL
    # would, and left to libvips (RGBLoader).
    module TurboJPEG
      extend FFI::Library
      ffi_lib FFI.library_name("turbojpeg", 0)
      attach_function :tjInitDecompress, [], :pointer
      attach_function :tjDestroy, [:pointer], :int
      attach_function :tjDecompressHeader3, [:pointer, :buffer_in, :ulong, :pointer, :pointer, :pointer, :pointer], :int
      attach_function :tjDecompress2, [:pointer, :buffer_in, :ulong, :pointer, :int, :int, :int, :int, :int], :int
      attach_function :tjGetErrorStr2, [:pointer], :string
      attach_function :tjGetErrorCode, [:pointer], :int

      # turbojpeg.h: enum TJCS (libjpeg's jpeg_color_space), enum TJPF, TJFLAG_STOPONWARNING, TJERR_WARNING.
      COLORSPACES = {0 => :rgb, 1 => :ycbcr, 2 => :gray, 3 => :cmyk, 4 => :ycck}.freeze
      PIXEL_FORMATS = {rgb: 0, gray: 6, cmyk: 11}.freeze
      STOP_ON_WARNING = 1 << 13
      WARNING = 0
      SIGNATURE = "\xFF\xD8\xFF".b

      # A JPEG that TurboJPEG cannot decode; its message is libjpeg's.
      class Error < StandardError; end

      # A JPEG's header: its size and libjpeg's colour space, read without decoding.
      Header = Struct.new(:width, :height, :colorspace) do
        def rgb? = %i[rgb ycbcr].include?(colorspace)

        def gray? = colorspace == :gray

        def pixel_format
          if rgb? then :rgb
          elsif gray? then :gray
          else :cmyk
          end
        end
      end

      module_function

      # bytes' header, or nil when they are not a JPEG that TurboJPEG reads.
      def header(bytes)
        return nil unless bytes.start_with?(SIGNATURE)

        fields = FFI::MemoryPointer.new(:int, 4)
        status = tjDecompressHeader3(handle, bytes, bytes.bytesize, fields, fields + 4, fields + 8, fields + 12)
        unless status.zero?
          discard_handle
          return nil
        end

        width, height, _subsampling, colorspace = fields.read_array_of_int(4)
        Header.new(width, height, COLORSPACES[colorspace]) if width.positive? && height.positive?
      end

      # A JPEG decoded as PIL's decoder decodes it: [pixels, damaged]. The pixels are uint8
      # [height, width, 3] when the header is rgb? or gray? (grayscale replicated into three bands, as
      # convert("RGB") does: a view), else nil (CMYK and YCCK: decoded, then dropped). libjpeg's errors
      # raise Error, as they make PIL refuse the file; its warnings pass, as PIL ignores them (corrupt data
      # libjpeg decodes through, as it does for PIL: damaged is then true). PIL also refuses data that end
      # before the last row, which libjpeg here fills in with a warning: RGBLoader checks a damaged file for that.
      def decompress(bytes, header)
        format = header.pixel_format
        tensor = Torch.empty(header.height, header.width, {rgb: 3, gray: 1, cmyk: 4}.fetch(format), dtype: :uint8)
        first_message, warned = decode_into(tensor, bytes, header, STOP_ON_WARNING)
        damaged = !first_message.nil?
        if damaged
          # TurboJPEG keeps the message of libjpeg's first warning, unless an error comes later and replaces
          # it: decoded to the end, the same message means warnings alone.
          raise Error, first_message unless warned

          message, = decode_into(tensor, bytes, header, 0)
          raise Error, message unless message == first_message
        end
        return [nil, damaged] if format == :cmyk
        return [tensor, damaged] unless format == :gray

        [TensorMemory.view_only(tensor) { |gray| gray.expand(header.height, header.width, 3) }, damaged]
      end

      # Decodes bytes into tensor: nil, or TurboJPEG's message and whether libjpeg had warned.
      def decode_into(tensor, bytes, header, flags)
        status = tjDecompress2(handle, bytes, bytes.bytesize, FFI::Pointer.new(:uint8, tensor._data_ptr),
                               header.width, 0, header.height, PIXEL_FORMATS.fetch(header.pixel_format), flags)
        return nil if status.zero?

        failure = [tjGetErrorStr2(handle), tjGetErrorCode(handle) == WARNING]
        discard_handle
        failure
      end

      # A decompressor per thread (a TurboJPEG handle is not thread-safe), destroyed with its thread.
      def handle
        Thread.current[:hymenoptera_turbojpeg] ||= FFI::AutoPointer.new(tjInitDecompress, method(:tjDestroy))
      end

      # Drops this thread's decompressor after a failure: libjpeg-turbo 2.1 leaves it in a state where the
      # next header reads as 0 x 0 pixels.
      def discard_handle
        Thread.current[:hymenoptera_turbojpeg]&.free
        Thread.current[:hymenoptera_turbojpeg] = nil
      end
    end
  end
end
