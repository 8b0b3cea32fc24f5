# frozen_string_literal: true

# pytorch_parity's image stack (image/), no fix of an upstream gem: the images of PIL that the fixes of
# torchvision-ruby work on, made and read here. This file: PIL's Image.open(path).convert("RGB"), the
# default loader of the ImageFolder fix (torchvision/datasets/image_folder.rb) and the port's
# (hymenoptera/data.rb), on TurboJPEG (turbo_jpeg.rb) and libvips (vips_tensor.rb).

require "torchvision"
require_relative "../torch/tensor_memory"
require_relative "turbo_jpeg"
require_relative "vips_tensor"

module PytorchParity
  module Image
    # The image loader of torchvision's ImageFolder, PIL's Image.open(path).convert("RGB"), on libvips:
    # a uint8 Torch tensor [H, W, 3], np.asarray(image)'s layout, whatever the file holds. Grayscale is
    # replicated, palette images are expanded, an alpha band is dropped (not composited), and CMYK is
    # converted with PIL's plain formula rather than libvips' colour-managed one (which differs by up
    # to 90 levels). torchvision-ruby's loader hands the file's own bands to the transforms. JPEGs in
    # YCbCr, RGB or grayscale are decoded by TurboJPEG (the library PIL decodes them with), everything
    # else by libvips. A file that does not decode raises Vips::Error or TurboJPEG::Error, and so does
    # one larger than PIL opens (its decompression-bomb limit), before it is decoded. A damaged JPEG is
    # decoded or refused as PIL decodes or refuses it (jpeg_pixels).
    module RGBLoader
      # PIL's Image.MAX_IMAGE_PIXELS: it warns above it, and refuses to open more than twice as many pixels.
      MAX_IMAGE_PIXELS = 1024 * 1024 * 1024 / 4 / 3
      MAX_PIXELS = 2 * MAX_IMAGE_PIXELS
      WIDE_MESSAGE = "more than 8 bits per sample (e.g. a 16-bit PNG); PIL and libvips decode such images differently " \
                     "(PIL clips, libvips scales), so both sides refuse it: convert it to 8 bits per sample"
      # libvips' JPEG loader refuses data that end before the last row (as PIL's does), never reads the
      # markers after it (nor does PIL's), and lets libjpeg's warnings pass, however many.
      TO_THE_LAST_ROW = "[access=sequential,fail-on=truncated,unlimited=true]"

      # An image of more than 8 bits per sample, which the loader refuses (WIDE_MESSAGE).
      class WideSamples < StandardError; end

      module_function

      def load(path)
        bytes = File.binread(path)
        jpeg = TurboJPEG.header(bytes)
        return jpeg_pixels(path, bytes, jpeg) if jpeg&.colorspace

        image = open(path, bytes)
        check_size(path, image.width, image.height)
        raise WideSamples unless image.format == :uchar

        rgb_pixels(image)
      end

      # A JPEG as PIL decodes it. Damaged data (libjpeg's warnings: corrupt data it decodes through) pass, as
      # PIL ignores them, and the pixels are libjpeg's, as PIL's; libjpeg's errors, and data that end before
      # the last row, refuse it. libvips decodes the damaged ones again to find the end (and CMYK's pixels).
      def jpeg_pixels(path, bytes, jpeg)
        check_size(path, jpeg.width, jpeg.height)
        pixels, damaged = TurboJPEG.decompress(bytes, jpeg)
        return pixels || rgb_pixels(open(path, bytes)) unless damaged

        begin
          VipsTensor.decode_quietly(bytes, TO_THE_LAST_ROW) do |image|
            next rgb_pixels(image) unless pixels

            TensorMemory.free(VipsTensor.pixels(image))
            pixels
          end
        rescue Vips::Error => e # its last line is libjpeg's error; those before it, warnings
          raise TurboJPEG::Error, e.message.lines.last.to_s.strip.delete_prefix("VipsJpeg: ")
        end
      end

      # PIL's decompression-bomb check, which it makes when it opens an image.
      def check_size(path, width, height)
        pixels = width * height
        if pixels > MAX_PIXELS
          raise Vips::Error, "Image size (#{pixels} pixels) exceeds limit of #{MAX_PIXELS} pixels, " \
                             "could be decompression bomb DOS attack."
        end
        if pixels > MAX_IMAGE_PIXELS
          warn "warning: #{display(path)}: Image size (#{pixels} pixels) exceeds limit of #{MAX_IMAGE_PIXELS} " \
               "pixels, could be decompression bomb DOS attack."
        end
      end

      # The image's pixels as RGB: views where PIL's convert("RGB") only copies (gray replicated, alpha
      # dropped), Pillow's formula for CMYK, libvips' conversion for anything else.
      def rgb_pixels(image)
        return VipsTensor.pixels(rgb(image)) unless image.format == :uchar

        case [image.interpretation, image.bands]
        when [:srgb, 3] then VipsTensor.pixels(image)
        when [:srgb, 4] then TensorMemory.view_only(VipsTensor.pixels(image)) { |rgba| rgba.narrow(2, 0, 3) }
        when [:"b-w", 1], [:"b-w", 2]
          TensorMemory.view_only(VipsTensor.pixels(image)) { |gray| gray.narrow(2, 0, 1).expand(image.height, image.width, 3) }
        when [:cmyk, 4] then cmyk_to_rgb(VipsTensor.pixels(image))
        else VipsTensor.pixels(rgb(image))
        end
      end

      # The file decoded lazily, top to bottom. From its bytes when libvips has a loader for them in
      # memory (one read, and no file handle left open until the image is garbage collected), else
      # from the file.
      def open(path, bytes)
        VipsTensor.decode(bytes) || Vips::Image.new_from_file(path, access: :sequential, fail_on: :warning)
      end

      # path as Python prints it: bytes that are not UTF-8 as \xNN escapes.
      def display(path)
        path.to_s.dup.force_encoding(Encoding::UTF_8).scrub { |bytes| bytes.unpack("C*").map { |b| format("\\x%02x", b) }.join }
      end

      # 8-bit sRGB, three bands.
      def rgb(image)
        image = image.colourspace(:srgb) unless image.interpretation == :srgb && image.format == :uchar
        image = image.extract_band(0, n: 3) if image.bands > 3
        image = image.cast(:uchar) unless image.format == :uchar
        image
      end

      # Pillow's cmyk2rgb on a uint8 tensor [H, W, 4]: with nk = 255 - K, each of R, G, B is
      # nk - MULDIV255(C, nk), where MULDIV255 is ((p >> 8) + p) >> 8 with p = C * nk + 128. Both p and
      # (p >> 8) + p stay below 2**16, so each >> 8 is the int32's second byte (x86 is little-endian),
      # copied out of a view: LibTorch's shift is a slow loop. On planes, and the result is the
      # [H, W, 3] view of its planes.
      def cmyk_to_rgb(cmyk)
        bytes = TensorMemory.contiguous_copy(cmyk.permute(2, 0, 1))
        planes = bytes.to(:int32)
        nk = planes.narrow(0, 3, 1).neg!.add!(255)
        product = planes.narrow(0, 0, 3).mul!(nk).add!(128)
        high = second_byte(product)
        product.add!(high)
        TensorMemory.free(high)
        high = second_byte(product)
        TensorMemory.free(bytes)
        rgb = nk.sub(high).to(:uint8)
        TensorMemory.free(high, planes)
        TensorMemory.view_only(rgb) { |p| p.permute(1, 2, 0) }
      end

      def second_byte(int32)
        int32.view(:uint8).view(*int32.shape, 4).select(-1, 1).contiguous
      end
    end
  end
end
