# frozen_string_literal: true

module Hymenoptera
  # A libvips image's pixels as a uint8 Torch tensor [height, width, bands] (the layout of
  # np.asarray(pil_image)), computed in the calling thread straight into the tensor's memory:
  # libvips evaluates the image (decoding the file, for a loaded one) into a region attached to the
  # tensor (vips_region_prepare_to). ruby-vips' write_to_memory instead runs libvips' thread pool and
  # copies twice, into a buffer libvips allocates and then into a Ruby String; for a 400x400 JPEG
  # that overhead is larger than the decoding itself.
  module VipsTensor
    extend FFI::Library
    ffi_lib FFI.library_name("vips", 42)
    attach_function :vips_region_image, [:pointer, :pointer], :int
    attach_function :vips_region_prepare_to, [:pointer, :pointer, :pointer, :int, :int], :int

    # Rows per vips_region_prepare_to call: bounds the buffers libvips allocates for the operations
    # in between (colour conversions) on a very large image; requests go top to bottom, so a
    # sequential loader is fine.
    STRIP_PIXELS = 1 << 22

    module_function

    # image: a Vips::Image of band format :uchar.
    def pixels(image)
      raise ArgumentError, "expected an 8-bit image, got band format #{image.format}" unless image.format == :uchar

      width, height, bands = image.width, image.height, image.bands
      tensor = Torch.empty(height, width, bands, dtype: :uint8)
      memory = Vips::Image.new_from_memory(FFI::Pointer.new(:uint8, tensor._data_ptr).slice(0, tensor.numel),
                                           width, height, bands, :uchar)
      source, target = Vips::Region.new(image), Vips::Region.new(memory)
      rows = [STRIP_PIXELS / width, 1].max
      rect = FFI::MemoryPointer.new(:int, 4)
      (0...height).step(rows) do |top|
        rect.put_array_of_int(0, [0, top, width, [rows, height - top].min])
        raise Vips::Error if vips_region_image(target, rect) != 0
        raise Vips::Error if vips_region_prepare_to(source, target, rect, 0, top) != 0
      end
      tensor
    end
  end
end
