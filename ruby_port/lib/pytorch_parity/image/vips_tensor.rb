# frozen_string_literal: true

# pytorch_parity's image stack (image/), no fix of an upstream gem: the images of PIL that the fixes of
# torchvision-ruby work on, made and read here. This file: libvips' images to and from uint8 Torch tensors
# [H, W, bands], for the loader (rgb_loader.rb) and for the transforms given libvips images
# (torchvision/transforms/functional.rb).

require "ffi"
require "torchvision"

module PytorchParity
  module Image
    # libvips between a file's bytes and a uint8 Torch tensor [height, width, bands] (the layout of
    # np.asarray(pil_image)), through a few libvips C functions called directly. ruby-vips' generic
    # operation call costs about 0.15 ms of Ruby per call, and its write_to_memory runs libvips' thread
    # pool and copies twice (into a buffer libvips allocates, then into a Ruby String): on a 400x400
    # JPEG together more than the decoding itself.
    module VipsTensor
      extend FFI::Library
      ffi_lib FFI.library_name("vips", 42)
      attach_function :vips_image_new_from_buffer, [:pointer, :size_t, :string, :varargs], :pointer
      attach_function :vips_image_new_from_memory, [:pointer, :size_t, :int, :int, :int, :int], :pointer
      attach_function :vips_region_new, [:pointer], :pointer
      attach_function :vips_region_image, [:pointer, :pointer], :int
      attach_function :vips_region_prepare_to, [:pointer, :pointer, :pointer, :int, :int], :int

      UCHAR = GObject::GValue.enum_from_nick(Vips::BAND_FORMAT_TYPE, :uchar)
      # Pixels per vips_region_prepare_to call, in strips of whole rows, top to bottom (as a sequential
      # loader wants them). libvips gives each operation of the pipeline a buffer the size of the
      # request: strips of about 100 kB stay below glibc's mmap threshold and are reused warm, where
      # a whole image costs fresh pages (and a page fault per 4 kB) at every stage: 20% of the decode.
      STRIP_PIXELS = 1 << 15

      module_function

      # The image in bytes, decoded lazily top to bottom as the pixels are asked for (PIL's
      # Image.open), a truncated file failing then; nil when libvips cannot open such bytes in memory
      # (Vips::Image.new_from_file may: it has loaders that buffers have not, and says what is wrong).
      # libvips reads the bytes where they are, so the image keeps a reference to them.
      def decode(bytes, options = "[access=sequential,fail-on=warning]")
        image = vips_image_new_from_buffer(bytes, bytes.bytesize, options, :pointer, nil)
        return Vips::Image.new(image).tap { |wrapped| wrapped.references << bytes } unless image.null?

        Vips.vips_error_clear
        nil
      end

      # libvips reports a JPEG's warnings, and an error in a row, on stderr (GLib's log), where PIL says nothing.
      SILENT = FFI::Function.new(:void, [:string, :int, :string, :pointer]) { |*| }

      # Yields the image in bytes as decode does (with options), with libvips' warnings silenced, and
      # closes it when the block returns (when libvips reports the decoder's warnings). The pixels are
      # computed in this thread (pixels), so the log handler, a Ruby block, runs only in this thread.
      def decode_quietly(bytes, options)
        handler = GLib.g_log_set_handler(Vips::LOG_DOMAIN, GLib::LOG_LEVEL_WARNING, SILENT, nil)
        image = vips_image_new_from_buffer(bytes, bytes.bytesize, options, :pointer, nil)
        raise Vips::Error if image.null?

        image = Vips::Image.new(image)
        yield image
      ensure
        image.to_ptr.free if image.is_a?(Vips::Image)
        Vips.vips_error_clear
        GLib.g_log_remove_handler(Vips::LOG_DOMAIN, handler)
      end

      # The pixels of image (a Vips::Image of band format :uchar), computed in this thread straight into
      # the tensor's memory (vips_region_prepare_to, no thread pool, no copy).
      def pixels(image)
        raise ArgumentError, "expected an 8-bit image, got band format #{image.format}" unless image.format == :uchar

        width, height, bands = image.width, image.height, image.bands
        tensor = Torch.empty(height, width, bands, dtype: :uint8)
        memory = vips_image_new_from_memory(FFI::Pointer.new(:uint8, tensor._data_ptr), tensor.numel, width, height, bands, UCHAR)
        raise Vips::Error if memory.null?

        source, target = vips_region_new(image), vips_region_new(memory)
        begin
          fill(source, target, width, height)
        ensure
          [source, target, memory].each { |object| GObject.g_object_unref(object) unless object.null? }
        end
        tensor
      end

      def fill(source, target, width, height)
        raise Vips::Error if source.null? || target.null?

        rows = [STRIP_PIXELS / width, 1].max
        rect = FFI::MemoryPointer.new(:int, 4)
        (0...height).step(rows) do |top|
          rect.put_array_of_int(0, [0, top, width, [rows, height - top].min])
          raise Vips::Error if vips_region_image(target, rect) != 0
          raise Vips::Error if vips_region_prepare_to(source, target, rect, 0, top) != 0
        end
      end
    end
  end
end
